"""The behavioural layer in a process of its own, beside the worker's ingest loop.

Sessions, baselines and drift were half of the worker's main thread: with them in line, one Python
thread did everything and the second core sat idle. Here a child process owns the behavioural state
(``streams.state.BehaviorStore``: the pipeline and the offsets it covers) and the worker's main
thread only ships it each batch — the raw bytes of the valid events, already validated, plus the
injection score the content detectors gave each one — and collects the findings one batch later,
while it works on the next batch. The child also writes the state snapshots, so the ~20 MB pickle
no longer stalls ingestion.

Protocol: pickled ``(op, payload)`` requests over one pipe, answered strictly in order, one answer
per request (``("ok", value)`` or ``("error", text)``). The child is spawned early and imports while
the worker starts; its first request is ``init`` (where the state is saved, the changelog snapshot,
events it must skip), answered with the state it restored. It exits when the pipe closes, so a worker killed with SIGKILL leaves no child behind; a
child that dies is restarted by the worker (``streams.agents.batch_consumer``).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger("aiwatch.behavior")

START_TIMEOUT_S = 180.0
DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
LONG_NUMBER = b"0" * 19  # a 19+ digit run: where orjson and pydantic's JSON parser may read a number differently
FAILPOINT_EXIT = 70  # exit code of the fault injection (``Settings.behavior_failpoint``)


@dataclass(frozen=True)
class Item:
    """One valid event for the behavioural layer: its bytes, where it came from, its injection score."""

    raw: bytes
    topic: str
    partition: int
    offset: int
    injection_score: float


# -- child side ----------------------------------------------------------------------------------------


def serve(conn: Connection, marker: Any = None) -> None:
    """The child's main loop (the target of the spawned process). It imports what it needs first, then
    waits for ``("init", (path, save_seconds, changelog_blob, skip, failpoint, partition_by))``: the worker spawns it before its
    own start-up work, so the two start in parallel. ``marker`` (shared memory: busy, partition,
    offset) always says which event the layer is feeding, so the worker knows it if the process dies."""
    from streams.state import BehaviorStore

    logging.basicConfig(level=os.environ.get("AIWATCH_WORKER_LOG_LEVEL", "WARNING"))
    try:
        op, (path, save_seconds, changelog_blob, skip, failpoint, partition_by) = conn.recv()
    except (EOFError, OSError):
        return  # the worker stopped before it needed the layer
    if op != "init":
        conn.send(("error", f"expected init, got {op!r}"))
        return
    store = BehaviorStore.open(Path(path), save_seconds=save_seconds,
                               changelog=(lambda: changelog_blob) if changelog_blob else None,
                               partition_by=partition_by)
    conn.send(("ok", {"source": store.source, "generation": store.generation,
                      "restored_from": dict(store.restored_from), "stats": store.pipeline.stats()}))
    saver = Saver(store)
    handlers: dict[str, Callable[[Any], Any]] = {
        "batch": lambda items: _batch(store, items, marker, skip, failpoint),
        "save": lambda args: saver.save(*args),
        "snapshot": lambda ts: store.pipeline.snapshot(ts),
    }
    while True:
        try:
            op, payload = conn.recv()
        except (EOFError, OSError):
            saver.reap(wait=True)
            return  # the worker is gone
        if op == "stop":  # the worker saved the state just before
            saver.reap(wait=True)
            conn.send(("ok", None))
            return
        try:
            answer: tuple[str, Any] = ("ok", handlers[op](payload))
        except Exception as exc:  # noqa: BLE001 - reported to the worker, which decides
            log.exception("behavioural process: %s failed", op)
            answer = ("error", f"{op}: {type(exc).__name__}: {exc}")
        conn.send(answer)


def _batch(store: Any, items: Sequence[Item], marker: Any = None, skip: frozenset[tuple[str, int, int]] = frozenset(),
           failpoint: bytes = b"") -> dict[str, Any]:
    """Feed each event the state has not seen, except those in ``skip`` (events the process died on);
    findings by position in ``items``.

    The bytes were accepted by the worker's strict parse (``schemas.parse``: orjson, then validation);
    on such bytes pydantic's own JSON parser builds the same Event (tested) in ~⅔ of the time — except
    integers beyond 64 bits, which orjson reads as floats: bytes with a run of 19+ digits take the
    worker's own path, so the layer sees what ``aiwatch replay`` sees. (NaN, Infinity and overflowing
    exponents, which the two parsers also read differently, never get here: orjson refuses them.)"""
    from schemas.event import Event
    from schemas.parse import parse_event

    found: list[tuple[int, list[Any]]] = []
    errors = skipped = 0
    pipeline = store.pipeline
    for i, item in enumerate(items):
        if store.wants(item.topic, item.partition, item.offset):
            if marker is not None:
                marker[1], marker[2], marker[0] = item.partition, item.offset, 1
            if skip and (item.topic, item.partition, item.offset) in skip:
                skipped += 1
                store.advance(item.topic, item.partition, item.offset)
                continue
            try:
                raw = item.raw
                if failpoint and failpoint in raw:
                    os._exit(FAILPOINT_EXIT)  # fault injection (tests): a hard crash on this event
                strict = LONG_NUMBER in raw.translate(DIGITS_AS_ZERO)  # ~1.5 µs; a regex took ~11
                event = parse_event(raw, max_bytes=len(raw)) if strict else Event.model_validate_json(raw)
                findings = pipeline.process(event, signals={"injection_score": item.injection_score})
            except Exception:  # noqa: BLE001 - one bad event must not stop the layer; counted by the worker
                errors += 1
                log.exception("behavioural layer failed on %s/%s/%s", item.topic, item.partition, item.offset)
                findings = []
            if findings:
                found.append((i, findings))
        store.advance(item.topic, item.partition, item.offset)
    if marker is not None:
        marker[0] = 0
    return {"findings": found, "errors": errors, "skipped": skipped, "stats": pipeline.stats()}


class Saver:
    """State saves in the child: in a forked copy when only the local file is wanted (the layer goes on
    at once), in line when the worker needs the bytes (changelog) or it is the last save (stop)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.pid: int | None = None  # a forked copy still writing

    def save(self, force: bool, want_blob: bool) -> dict[str, Any]:
        store = self.store
        if force or want_blob:
            self.reap(wait=True)
            blob = store.maybe_save(force=force)
        else:
            blob = None
            if store.due() and self.reap(wait=False):
                self.pid = store.save_in_background()
        return {"saved": blob is not None, "generation": store.generation, "blob": blob if want_blob else None}

    def reap(self, wait: bool) -> bool:
        """Whether no forked copy is writing any more (waiting for it with ``wait``)."""
        if self.pid is None:
            return True
        pid, status = os.waitpid(self.pid, 0 if wait else os.WNOHANG)
        if pid == 0:
            return False
        if os.waitstatus_to_exitcode(status) != 0:
            log.error("behavioural state: a background save failed (exit %s); the next save retries",
                      os.waitstatus_to_exitcode(status))
        self.pid = None
        return True


# -- worker side ---------------------------------------------------------------------------------------


class BehaviorProcessError(RuntimeError):
    """The behavioural process failed or exited. The worker restarts it from its saved state, and stops
    rather than run without it once restarts keep failing (``Settings.behavior_restarts``)."""


class BehaviorProcess:
    """The worker's handle on the child: requests go out at once, answers come back as futures, in order."""

    def __init__(self, path: Path | None = None, save_seconds: float = 30.0,
                 changelog_blob: bytes | None = None, skip: Iterable[tuple[str, int, int]] = (),
                 failpoint: str = "", partition_by: Sequence[str] = ()) -> None:
        """Spawn the child; with ``path``, also restore the state there and wait until it is ready
        (otherwise ``init`` does that later, once the child has had time to import)."""
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded, event-looped parent
        self._conn, child = ctx.Pipe(duplex=True)
        self._marker = ctx.RawArray("q", 3)  # busy, partition, offset of the event being fed
        self._proc = ctx.Process(target=serve, args=(child, self._marker), name="aiwatch-behavior", daemon=True)
        self._proc.start()
        child.close()
        self.source = "not started"
        self.generation = 0
        self.restored_from: dict[tuple[str, int], int] = {}
        self.stats: Mapping[str, int] = {}
        self._receiver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiwatch-behavior-rx")
        if path is not None:
            self.init(path, save_seconds, changelog_blob, skip, failpoint, partition_by)

    def init(self, path: Path, save_seconds: float = 30.0, changelog_blob: bytes | None = None,
             skip: Iterable[tuple[str, int, int]] = (), failpoint: str = "",
             partition_by: Sequence[str] = ()) -> None:
        """Restore the state saved at ``path`` (else from ``changelog_blob``, else new) and wait for it.
        ``skip``: (topic, partition, offset) of events the layer must not be fed (it died on them);
        ``failpoint``: fault injection (tests), the child exits hard on an event holding this text;
        ``partition_by``: how baselines split each app (``Settings.baseline_partition_by``)."""
        try:
            self._conn.send(("init", (str(path), save_seconds, changelog_blob, frozenset(skip), failpoint.encode(),
                                      tuple(partition_by))))
        except (OSError, ValueError) as exc:
            raise BehaviorProcessError(f"behavioural process is gone ({self._exit()}): {exc}") from None
        if not self._conn.poll(START_TIMEOUT_S):
            self._proc.kill()
            raise BehaviorProcessError(f"behavioural process did not start in {START_TIMEOUT_S:.0f}s")
        ready = self._answer()
        self.source = ready["source"]
        self.generation = ready["generation"]
        self.restored_from = ready["restored_from"]
        self.stats = ready["stats"]

    def dying_at(self) -> tuple[int, int] | None:
        """(partition, offset) of the event the child was feeding, if it was feeding one: after it died,
        the event it died on (or during)."""
        busy, partition, offset = self._marker[:]
        return (int(partition), int(offset)) if busy else None

    @classmethod
    def open(cls, settings: Any, spawned: "BehaviorProcess | None" = None,
             skip: Iterable[tuple[str, int, int]] = ()) -> "BehaviorProcess":
        """The layer's process for ``settings`` (``schemas.settings.Settings``), with the state saved
        locally, else the newest snapshot on the changelog topic. ``spawned``: a child started earlier
        (``BehaviorProcess()``), which has been importing in the meantime."""
        from streams import changelog

        path = settings.home / "worker" / f"behavior-{settings.app_id}.pkl"
        blob = None if path.exists() else asyncio.run(changelog.fetch(settings))
        process = spawned if spawned is not None else cls()
        process.init(path, save_seconds=settings.state_save_seconds, changelog_blob=blob, skip=skip,
                     failpoint=settings.behavior_failpoint, partition_by=settings.baseline_partition_by)
        print(f"behavioural state: {process.source} (generation {process.generation}; process {process.pid})",
              file=sys.stderr)
        return process

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def request(self, op: str, payload: Any = None) -> asyncio.Future:
        """Send now; the future resolves with the answer (one receiver thread keeps answers in order)."""
        try:
            self._conn.send((op, payload))
        except (OSError, ValueError) as exc:
            raise BehaviorProcessError(f"behavioural process is gone ({self._exit()}): {exc}") from None
        return asyncio.get_running_loop().run_in_executor(self._receiver, self._answer)

    def submit(self, items: Sequence[Item]) -> asyncio.Future:
        """One batch to the layer; the future resolves with ``{"findings": [(index, [Finding])], "errors": n}``."""
        future = self.request("batch", list(items))
        future.add_done_callback(self._keep_stats)
        return future

    def _keep_stats(self, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.stats = future.result()["stats"]

    async def save(self, force: bool = False, want_blob: bool = False) -> dict[str, Any]:
        answer = await self.request("save", (force, want_blob))
        self.generation = answer["generation"]
        return answer

    async def snapshot(self, ts: datetime) -> list[dict[str, Any]]:
        return await self.request("snapshot", ts)

    async def stop(self, timeout: float = 60.0) -> None:
        """End the child (after the worker's last ``save(force=True)``)."""
        try:
            if self._proc.is_alive():
                await asyncio.wait_for(self.request("stop"), timeout)
        except (BehaviorProcessError, asyncio.TimeoutError) as exc:
            log.error("behavioural process did not stop cleanly (%s)", exc)
        finally:
            self.close()

    def close(self) -> None:
        """Release the child (killed if it still runs) and the pipe."""
        if self.source == "not started":
            self._conn.close()  # the child waits for init: the end of the pipe ends it
        self._proc.join(5 if self._proc.is_alive() else 0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._receiver.shutdown(wait=False)
        self._conn.close()

    def _answer(self) -> Any:
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(1)
            raise BehaviorProcessError(f"behavioural process is gone ({self._exit()})") from None
        if status != "ok":
            raise BehaviorProcessError(value)
        return value

    def _exit(self) -> str:
        code = self._proc.exitcode
        return "still running" if code is None else f"exit code {code}"

