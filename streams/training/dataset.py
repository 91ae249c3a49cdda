"""Training rows for the classifier heads: windows, compositions and sample weights.

A *unit* is one text at one placement with its label (an event of a converted corpus, see
``streams.evaluation.protocol``). Training needs three things the evaluation does not:

- **windows**: the classifier scores a long text on overlapping windows (``detectors.classifier``).
  A long benign text contributes its windows (up to ``MAX_BENIGN_WINDOWS``); a long attack carrier
  contributes the window centred on its payload when the payload is known, else its first windows —
  a window that holds no attack must not be taught as one.
- **compositions** (indirect head only): a payload (a jailbreak or injection text, or a known injected
  instruction) inserted into a benign tool output or document at a line or sentence boundary. They
  teach "an instruction sits inside data", independent of any one dataset's carrier template.
- **weights**: each (source, label) contributes in proportion to the square root of its size, so a
  large corpus (hh-rlhf, InjecAgent) does not drown the small ones; the two classes weigh the same.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.classifier import FeatureSpec, segments, windows

MAX_BENIGN_WINDOWS = 12
MAX_ATTACK_WINDOWS = 3
MAX_PAYLOAD_CHARS = 1200  # longer attack texts are not used as payloads of compositions


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "replace")).digest()[:8], "big")


def training_windows(text: str, payload: str | None, label: int, spec: FeatureSpec, head: str) -> list[str]:
    """The pieces a unit is trained on (see the module docstring)."""
    ws = windows(text, spec, head)
    if len(ws) == 1:
        return ws
    if label == 0:
        if len(ws) <= MAX_BENIGN_WINDOWS:
            return ws
        step = len(ws) / MAX_BENIGN_WINDOWS
        return [ws[int(i * step)] for i in range(MAX_BENIGN_WINDOWS)]
    pos = text.find(payload) if payload else -1
    if pos < 0:
        return ws[:MAX_ATTACK_WINDOWS]
    out = []
    if len(text) > spec.window:
        length = min(len(payload or ""), spec.window)
        start = max(0, min(pos - (spec.window - length) // 2, len(text) - spec.window))
        out.append(text[start:start + spec.window])
    else:
        out.append(text)
    if head in spec.segment_heads:
        segs = segments(payload or "", spec)
        out.extend(segs[:MAX_ATTACK_WINDOWS] if len(segs) > 1 else [(payload or "")[: spec.window]])
    return out


def insert(carrier: str, payload: str, salt: str) -> str:
    """``payload`` inserted into ``carrier`` at a line (or sentence) boundary chosen by ``salt``."""
    multiline = carrier.count("\n") >= 2
    units = carrier.split("\n") if multiline else re.split(r"(?<=[.!?])\s+", carrier)
    pos = _h(salt) % (len(units) + 1)
    joiner = "\n" if multiline else " "
    return joiner.join(units[:pos] + [payload] + units[pos:])


@dataclass(frozen=True, slots=True)
class Composition:
    payload_unit: int
    carrier_unit: int
    text: str
    payload: str


def compositions(payloads: Sequence[tuple[int, str]], carriers: Sequence[tuple[int, str]], n: int,
                 salt: str = "compose-1") -> list[Composition]:
    """Up to ``n`` deterministic (payload, carrier) pairs, each payload used about evenly."""
    payloads = [(i, p) for i, p in payloads if 0 < len(p) <= MAX_PAYLOAD_CHARS]
    if not payloads or not carriers:
        return []
    out = []
    order = sorted(range(len(payloads)), key=lambda k: _h(f"{salt}:p:{payloads[k][1]}"))
    for j in range(n):
        pi, ptext = payloads[order[j % len(order)]]
        ci, ctext = carriers[_h(f"{salt}:c:{j}:{ptext}") % len(carriers)]
        out.append(Composition(pi, ci, insert(ctext, ptext, f"{salt}:{j}"), ptext))
    return out


def balanced_weights(groups: Sequence[str], labels: Sequence[int]) -> np.ndarray:
    """Weight 1/sqrt(size of the row's (group, label)), then both classes rescaled to the same total."""
    keys = [f"{g}\x00{y}" for g, y in zip(groups, labels)]
    sizes = Counter(keys)
    w = np.array([1.0 / np.sqrt(sizes[k]) for k in keys], dtype=np.float64)
    y = np.asarray(labels)
    for cls in (0, 1):
        mask = y == cls
        if mask.any():
            w[mask] *= (len(y) / 2.0) / w[mask].sum()
    return w
