"""Markdown tables of an evaluation (pasteable into the README)."""

from __future__ import annotations

import math
from typing import Any

CATEGORY_TITLES = {
    "indirect_injection": "injection in tool results / retrieved content",
    "jailbreak": "direct jailbreak prompts",
    "direct_injection": "direct prompt injection",
}
LOSO = "leave-one-source-out"
GROUP = "group split (in-source)"
DEV = "development (grouped folds of the training side)"
COLUMNS = {LOSO: ("LOSO", "LOSO"), GROUP: ("group-split", "group"), DEV: ("dev-fold", "dev")}  # header, short


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _protocols(rows: list[dict[str, Any]]) -> list[str]:
    """The protocols present, in the order of ``COLUMNS`` (LOSO and group split when there are none)."""
    present = {r["protocol"] for r in rows}
    return [p for p in COLUMNS if p in present] or [LOSO, GROUP]


def category_table(rows: list[dict[str, Any]]) -> str:
    by = {(r["protocol"], r["category"], r["detector"]): r for r in rows}
    protocols = _protocols(rows)
    head = ["attack category", "detector"]
    for proto in protocols:
        name, short = COLUMNS[proto]
        head += [f"{name} recall @1% FPR", f"{short} @0.1% FPR", f"{short} at shipped threshold (FPR)"]
    head.append(f"attacks / benign ({'; '.join(COLUMNS[p][1] for p in protocols)})")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(r: dict[str, Any] | None) -> list[str]:
        if r is None:
            return ["–"] * 3
        return [_pct(r["recall_at_1pct"]), _pct(r["recall_at_0_1pct"]),
                f"{_pct(r['recall_at_threshold'])} ({_pct(r['fpr_at_threshold'])})"]

    for cat in CATEGORY_TITLES:
        for det in ("heuristics", "classifier", "combined"):
            found = [by.get((p, cat, det)) for p in protocols]
            if not any(found):
                continue
            sizes = "; ".join(f"{r['n_pos']}/{r['n_neg']}" if r else "–" for r in found)
            lines.append(f"| {CATEGORY_TITLES[cat]} | {det} | " + " | ".join(c for r in found for c in cells(r)) + f" | {sizes} |")
    return "\n".join(lines)


def source_table(rows: list[dict[str, Any]]) -> str:
    by = {(r["protocol"], r["source"], r["placement"], r["class"]): r for r in rows}
    protocols = _protocols(rows)
    keys = sorted({k[1:] for k in by}, key=lambda k: (k[2] != "attack", k[1], k[0]))
    head = ["source", "placement", "class"]
    for proto in protocols:
        short = COLUMNS[proto][1]
        head += [f"n ({short}{' test' if proto == GROUP else ''})", f"{short} heuristics", f"{short} classifier", f"{short} combined"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for src, placement, cls in keys:
        cells = [src, placement, cls + (" (recall)" if cls == "attack" else " (FPR)")]
        for proto in protocols:
            r = by.get((proto, src, placement, cls))
            cells += [str(r["n"]), _pct(r["heuristics"]), _pct(r["classifier"]), _pct(r["combined"])] if r else ["–"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    model = results.get("model", {})
    speed = results.get("speed", {})
    parts = [
        f"### Prompt-injection / jailbreak detection on the public corpora ({results.get('date', '')})",
        "",
        f"Model `{model.get('file', '?')}` (sha256 `{str(model.get('sha256', ''))[:12]}…`, "
        f"{model.get('bytes', 0) / 1e6:.2f} MB), thresholds: direct {model.get('thresholds', {}).get('direct', math.nan):.3f}, "
        f"indirect {model.get('thresholds', {}).get('indirect', math.nan):.3f}. Heuristics: {results.get('heuristics', '?')}.",
        "",
        "- **LOSO** (leave-one-source-out): each corpus scored by a model trained without it and without its "
        "near-duplicates in other corpora; recall at a fixed FPR is measured against the benign test side of the "
        "other corpora plus the held-out corpus's own benign sessions, scored by the same model.",
        "- **group split** (in-source): the shipped model, trained on the training groups of every corpus; measured "
        "on held-out groups (AgentDojo: user tasks *and* injection goals held out; jailbreaks: goals held out).",
        "- **dev-fold** (with `--dev` only): grouped folds inside the training side, each scored by heads trained "
        "on the other folds without any shared group or near-duplicate — where changes are chosen; the test side "
        "is not scored.",
        "- *at shipped threshold*: recall when flagging at the calibrated threshold (LOSO: each fold's own "
        "calibrated threshold), with the false-positive rate that threshold actually produced. "
        "*combined* = flagged by the heuristics or the classifier: every heuristic finding counts as flagged, "
        "and the classifier's threshold is swept for the fixed-FPR columns.",
        "- Units are events (a user turn, a tool result, a retrieved document); near-duplicates count once.",
        "",
        category_table(results.get("category", [])),
        "",
        "Per corpus, share flagged at the shipped operating point (attacks: recall; benign: false-positive rate):",
        "",
        source_table(results.get("sources", [])),
    ]
    if speed:
        parts += ["", "Classifier speed (batched `score`, this machine): " + ", ".join(
            f"{k}: {v['texts_per_s']:.0f} texts/s at {v['mean_chars']:.0f} chars" for k, v in speed.items())]
    return "\n".join(parts) + "\n"
