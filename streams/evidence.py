"""Tamper-evident evidence: a hash chain over the stored events, its verification and export bundles.

Compliance needs to show that the record of what an AI did was not edited afterwards (DESIGN §4; the
EU AI Act asks for logs kept at least six months). The worker commits each batch it stores:

- every event row carries ``row_sha256``: the sha256 of its canonical content (``canonical``: ids,
  time, app, session, identity, model, the texts as stored — i.e. after redaction —, tool call and
  result, documents, labels, token counts);
- the rows a batch inserts share one chain block (``evidence_block``); the block holds their count and a
  multiset digest (sum of the row hashes mod 2^256: order-free, so it can be recomputed in one pass
  over the table), and ``hash = sha256(chain, seq, created_at, events, digest, prev_hash)``;
- the block row is written *before* its events (a crash in between leaves an empty block, reported as
  such, and the replayed batch goes into a new block).

``verify`` recomputes all of it: each row's hash from its columns, each block's digest from its rows,
each block's hash and its link to the previous one. Editing a text, deleting or adding a row, editing or
deleting a block all show up, by block. A chain's hashes can be recomputed by whoever can rewrite the
whole table, which is why ``export`` writes a bundle whose manifest holds the chain heads: keep it (or
just the heads) somewhere the monitor cannot write, and later verifications prove nothing changed since.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from streams.db import sql_string

MOD = 1 << 256
GENESIS = "genesis"
CANONICAL_COLUMNS = (
    "event_id", "ts", "kind", "app", "env", "tenant", "agent", "session_id", "user_id", "on_behalf_of",
    "service_account", "model_provider", "model_name", "model_endpoint", "content_role", "content_text",
    "tool_name", "tool_call_id", "tool_arguments", "tool_status", "tool_error", "tool_destination",
    "retrieval_source", "retrieval_documents", "input_tokens", "output_tokens", "labels",
)
BLOCK_COLUMNS = ("block_id", "chain_id", "seq", "created_at", "events", "digest", "prev_hash", "hash")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)


def _micros(value: Any) -> int:
    """Event time as integer microseconds since the epoch, from a datetime or an ISO string (the forms
    a row has when written and when read back directly or through the worker's /sql); naive = UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (value - (_EPOCH if value.tzinfo is not None else _EPOCH_NAIVE)) // _MICRO


_TS = CANONICAL_COLUMNS.index("ts")
_LABELS_AT = CANONICAL_COLUMNS.index("labels")
_COUNT_AT = tuple(CANONICAL_COLUMNS.index(c) for c in ("input_tokens", "output_tokens"))
_TEXT_AT = tuple(i for i in range(len(CANONICAL_COLUMNS)) if i not in (_TS, _LABELS_AT, *_COUNT_AT))


def canonical(values: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash is taken over: ``CANONICAL_COLUMNS`` in order, normalised so that the
    value written and the value read back give the same bytes."""
    get = values.get
    return canonical_values([get(name) for name in CANONICAL_COLUMNS])


def canonical_values(values: Sequence[Any]) -> bytes:
    """``canonical`` of the values of ``CANONICAL_COLUMNS``, in that order (the writer's fast path:
    text columns are strings as written and as read back, so only time, labels and odd types are touched)."""
    out = list(values)
    out[_TS] = _micros(out[_TS])
    labels = out[_LABELS_AT]
    out[_LABELS_AT] = sorted((str(k), str(x)) for k, x in labels.items()) if labels else []
    for i in _TEXT_AT:
        v = out[i]
        if type(v) is not str:
            out[i] = "" if v is None else str(v)
    for i in _COUNT_AT:
        v = out[i]
        if v is not None and type(v) is not int:
            out[i] = int(v)
    return orjson.dumps(out)


def row_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(values)).hexdigest()


def digest_of(hashes: Iterable[str]) -> tuple[str, int]:
    """(multiset digest, count) of row hashes: order-free and computable incrementally."""
    total = 0
    n = 0
    for h in hashes:
        total = (total + int(h, 16)) % MOD
        n += 1
    return f"{total:064x}", n


def block_hash(chain_id: str, seq: int, created_at: Any, events: int, digest: str, prev_hash: str) -> str:
    line = f"{chain_id}\x1f{seq}\x1f{_micros(created_at)}\x1f{events}\x1f{digest}\x1f{prev_hash}"
    return hashlib.sha256(line.encode()).hexdigest()


@dataclass
class EvidenceChain:
    """The writer side: one chain per worker process run; ``block`` seals the rows of one insert."""

    prev_hash: str = GENESIS
    chain_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}")
    seq: int = 0

    def block(self, row_hashes: Sequence[str], now: datetime | None = None) -> dict[str, Any]:
        created = now or datetime.now(timezone.utc)
        digest, n = digest_of(row_hashes)
        self.seq += 1
        h = block_hash(self.chain_id, self.seq, created, n, digest, self.prev_hash)
        row = {"block_id": f"{self.chain_id}:{self.seq}", "chain_id": self.chain_id, "seq": self.seq,
               "created_at": created, "events": n, "digest": digest, "prev_hash": self.prev_hash, "hash": h}
        self.prev_hash = h
        return row


# -- verification -----------------------------------------------------------------------------------


@dataclass
class Report:
    """What ``verify`` found; ``ok`` when nothing points at tampering."""

    blocks: int = 0
    chains: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"FAILED ({len(self.problems)} problem(s))"
        lines = [f"evidence: {verdict} — {self.rows} event rows in {self.blocks} blocks of {self.chains} chain(s)"]
        lines += [f"  problem: {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  … and {len(self.problems) - 50} more")
        lines += [f"  note: {n}" for n in self.notes[:20]]
        return "\n".join(lines)


def check_chains(blocks: Iterable[Mapping[str, Any]], report: Report) -> dict[str, Mapping[str, Any]]:
    """Links and hashes of every chain; returns the blocks by id."""
    by_chain: dict[str, list[Mapping[str, Any]]] = {}
    by_id: dict[str, Mapping[str, Any]] = {}
    for b in blocks:
        by_chain.setdefault(str(b["chain_id"]), []).append(b)
        by_id[str(b["block_id"])] = b
    hashes = {str(b["hash"]) for b in by_id.values()}
    report.blocks += len(by_id)
    report.chains += len(by_chain)
    for chain_id, chain in by_chain.items():
        chain.sort(key=lambda b: int(b["seq"]))
        expected_prev = None
        for i, b in enumerate(chain):
            seq = int(b["seq"])
            if seq != i + 1:
                report.problems.append(f"chain {chain_id}: block {i + 1} missing (next present is {seq})")
                expected_prev = None
            recomputed = block_hash(chain_id, seq, b["created_at"], int(b["events"]), str(b["digest"]), str(b["prev_hash"]))
            if recomputed != b["hash"]:
                report.problems.append(f"block {b['block_id']}: its hash does not match its content (block edited)")
            if expected_prev is not None and b["prev_hash"] != expected_prev:
                report.problems.append(f"block {b['block_id']}: does not link to the block before it")
            if i == 0 and b["prev_hash"] != GENESIS and b["prev_hash"] not in hashes:
                report.notes.append(f"chain {chain_id} starts after a block that is no longer stored "
                                    f"(expired by retention, or deleted)")
            expected_prev = b["hash"]
    return by_id


def check_rows(rows: Iterable[Mapping[str, Any]], blocks: Mapping[str, Mapping[str, Any]], report: Report,
               withheld: Mapping[str, Sequence[str]] | None = None) -> None:
    """Each row's hash against its columns, and each block's digest against its rows (plus, in a
    bundle exported for one app, the hashes of the rows of other apps that were withheld)."""
    sums: dict[str, int] = {}
    counts: dict[str, int] = {}
    for row in rows:
        report.rows += 1
        block = str(row.get("evidence_block") or "")
        recomputed = row_hash(row)
        if recomputed != row.get("row_sha256"):
            report.problems.append(f"event {row.get('event_id')}: content does not match its hash (row edited)")
        if not block:
            report.notes.append(f"event {row.get('event_id')} was stored before the evidence chain existed")
            continue
        sums[block] = (sums.get(block, 0) + int(recomputed, 16)) % MOD
        counts[block] = counts.get(block, 0) + 1
    for block_id, hashes in (withheld or {}).items():
        for h in hashes:
            sums[block_id] = (sums.get(block_id, 0) + int(h, 16)) % MOD
            counts[block_id] = counts.get(block_id, 0) + 1
    for block_id in sums.keys() - blocks.keys():
        report.problems.append(f"{counts[block_id]} event(s) claim block {block_id}, which is not in the chain")
    for block_id, b in blocks.items():
        n = counts.get(block_id, 0)
        if n == 0 and int(b["events"]) > 0:
            report.notes.append(f"block {block_id}: none of its {b['events']} events are stored (a crash between "
                                f"the block and its insert; the batch was stored again in a later block) — or all deleted")
            continue
        if n != int(b["events"]) or f"{sums.get(block_id, 0):064x}" != b["digest"]:
            report.problems.append(f"block {block_id}: holds {n} of {b['events']} events or their content differs "
                                   f"(rows deleted, added or edited)")


# -- reading the store ------------------------------------------------------------------------------

Query = Callable[[str], dict]
PAGE = 5_000


def _pages(query: Query, select: str, table: str, key: tuple[str, str], where: str = "") -> Iterator[dict[str, Any]]:
    """All rows of ``table`` in keyset pages (the worker's /sql answers at most 10,000 rows a query)."""
    last: tuple[str, str] | None = None
    while True:
        conds = [c for c in (where, f"({key[0]}, {key[1]}) > ({sql_string(last[0])}, {sql_string(last[1])})" if last else "") if c]
        sql = (f"SELECT {select} FROM {table} {'WHERE ' + ' AND '.join(conds) if conds else ''} "
               f"ORDER BY {key[0]}, {key[1]} LIMIT {PAGE}")
        result = query(sql)
        if "error" in result:
            raise RuntimeError(result["error"])
        rows = [dict(zip(result["columns"], r)) for r in result["rows"]]
        yield from rows
        if len(rows) < PAGE:
            return
        last = (str(rows[-1][key[0]]), str(rows[-1][key[1]]))


def _block_pages(query: Query) -> Iterator[dict[str, Any]]:
    sel = ", ".join(c if c != "created_at" else "toString(created_at) AS created_at" for c in BLOCK_COLUMNS)
    yield from _pages(query, sel, "evidence_chain", ("block_id", "chain_id"))


def read_rows(query: Query, where: str = "") -> Iterator[dict[str, Any]]:
    sel = ", ".join(CANONICAL_COLUMNS + ("row_sha256", "evidence_block"))
    yield from _pages(query, sel, "events FINAL", ("evidence_block", "event_id"), where)


def verify_store(query: Query, progress: Callable[[Iterable], Iterable] = lambda it: it,
                 since: str | None = None) -> Report:
    """Every chain's links and hashes, then the rows of every block — or, with ``since`` (ISO 8601), of
    the blocks stored since then (the links are still checked over whole chains)."""
    report = Report()
    blocks = check_chains(_block_pages(query), report)
    where = ""
    if since is not None:
        lo = _micros(since)
        blocks = {k: b for k, b in blocks.items() if _micros(b["created_at"]) >= lo}
        where = (f"evidence_block IN (SELECT block_id FROM evidence_chain "
                 f"WHERE created_at >= fromUnixTimestamp64Micro({lo}))")
    check_rows(progress(read_rows(query, where)), blocks, report)
    return report


# -- export bundles ---------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def export_bundle(query: Query, out: Path, app: str | None = None, since: str | None = None,
                  until: str | None = None, progress: Callable[[Iterable], Iterable] = lambda it: it) -> dict[str, Any]:
    """Write ``events.jsonl`` (the rows of the chosen blocks, of ``app`` only when given), ``blocks.jsonl``
    (every block of the chains involved, so links can be checked), ``withheld.json`` (per block, the row
    hashes of other apps' events: they prove the block without disclosing them) and ``manifest.json``
    (filters, counts, chain heads, sha256 of each file). ``since``/``until`` select blocks by the time they
    were stored (ISO 8601)."""
    out.mkdir(parents=True, exist_ok=True)
    all_blocks = list(_block_pages(query))
    lo = _micros(since) if since else None
    hi = _micros(until) if until else None
    chosen = {b["block_id"] for b in all_blocks
              if (lo is None or _micros(b["created_at"]) >= lo) and (hi is None or _micros(b["created_at"]) < hi)}
    chains = {b["chain_id"] for b in all_blocks if b["block_id"] in chosen}
    blocks = sorted((b for b in all_blocks if b["chain_id"] in chains), key=lambda b: (b["chain_id"], int(b["seq"])))
    withheld: dict[str, list[str]] = {}
    n_rows = 0
    with (out / "events.jsonl").open("wb") as fh:
        for row in progress(read_rows(query)):
            block = row.get("evidence_block")
            if block not in chosen:
                continue
            if app is not None and row.get("app") != app:
                withheld.setdefault(block, []).append(row["row_sha256"])
                continue
            fh.write(orjson.dumps(_jsonable(row)) + b"\n")
            n_rows += 1
    with (out / "blocks.jsonl").open("wb") as fh:
        for b in blocks:
            fh.write(orjson.dumps(_jsonable(b)) + b"\n")
    (out / "withheld.json").write_text(json.dumps(withheld, sort_keys=True), encoding="utf-8")
    heads = {}
    for b in blocks:
        heads[b["chain_id"]] = {"seq": int(b["seq"]), "hash": b["hash"]}
    files = {name: _sha256_file(out / name) for name in ("events.jsonl", "blocks.jsonl", "withheld.json")}
    manifest = {
        "format": "aiwatch.evidence-bundle/1", "generated_at": datetime.now(timezone.utc).isoformat(),
        "filters": {"app": app, "since": since, "until": until},
        "counts": {"events": n_rows, "blocks_selected": len(chosen), "blocks": len(blocks),
                   "withheld_events": sum(len(v) for v in withheld.values())},
        "selected_blocks": sorted(chosen), "chain_heads": heads, "files": files,
        "canonical_columns": list(CANONICAL_COLUMNS),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def verify_bundle(path: Path) -> Report:
    """Verify an export bundle offline: file hashes against the manifest, chain links and hashes, every
    exported row against its hash, and every selected block's digest from its rows and withheld hashes."""
    report = Report()
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    for name, sha in manifest["files"].items():
        if _sha256_file(path / name) != sha:
            report.problems.append(f"{name}: does not match the manifest (file edited)")
    blocks = [orjson.loads(line) for line in (path / "blocks.jsonl").read_bytes().splitlines() if line.strip()]
    by_id = check_chains(blocks, report)
    for chain_id, head in manifest["chain_heads"].items():
        last = max((b for b in blocks if b["chain_id"] == chain_id), key=lambda b: int(b["seq"]), default=None)
        if last is None or last["hash"] != head["hash"]:
            report.problems.append(f"chain {chain_id}: head differs from the manifest")
    selected = {b: by_id[b] for b in manifest["selected_blocks"] if b in by_id}
    rows = (orjson.loads(line) for line in (path / "events.jsonl").read_bytes().splitlines() if line.strip())
    withheld = json.loads((path / "withheld.json").read_text(encoding="utf-8"))
    check_rows(rows, selected, report, withheld)
    return report
