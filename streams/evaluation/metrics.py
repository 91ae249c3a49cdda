"""Detection metrics on scores: recall at a fixed false-positive rate, and at a given threshold.

Conventions: a higher score means more suspicious. ``recall_at_fpr`` picks the strictest cut that keeps
the false-positive rate at or below the target on the benign scores given (flagged = score > cut, so
ties with a benign score are never flagged: the result is never flattered by ties). ``at_threshold``
is how a shipped threshold is applied: flagged = score ≥ threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np


@dataclass(frozen=True, slots=True)
class Operating:
    recall: float
    fpr: float
    threshold: float
    n_pos: int
    n_neg: int


def cut_at_fpr(negatives: Sequence[float] | np.ndarray, fpr: float) -> float:
    """The smallest cut c with #(neg > c) ≤ floor(fpr · n); -inf when there are no negatives."""
    neg = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    if neg.size == 0:
        return -math.inf
    k = int(math.floor(fpr * neg.size + 1e-9))
    if k >= neg.size:
        return -math.inf
    return float(neg[k])


def recall_at_fpr(positives: Sequence[float] | np.ndarray, negatives: Sequence[float] | np.ndarray,
                  fpr: float) -> Operating:
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    cut = cut_at_fpr(neg, fpr)
    recall = float(np.mean(pos > cut)) if pos.size else math.nan
    actual = float(np.mean(neg > cut)) if neg.size else math.nan
    return Operating(recall, actual, cut, int(pos.size), int(neg.size))


def at_threshold(positives: Sequence[float] | np.ndarray, negatives: Sequence[float] | np.ndarray,
                 threshold: float) -> Operating:
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    recall = float(np.mean(pos >= threshold)) if pos.size else math.nan
    fpr = float(np.mean(neg >= threshold)) if neg.size else math.nan
    return Operating(recall, fpr, float(threshold), int(pos.size), int(neg.size))


def threshold_for_fpr(negatives: Sequence[float] | np.ndarray, fpr: float) -> float:
    """A threshold (flagged = score ≥ t) whose false-positive rate on ``negatives`` is at most ``fpr``."""
    cut = cut_at_fpr(negatives, fpr)
    return float(np.nextafter(cut, math.inf)) if math.isfinite(cut) else 0.0


def flag_rate(scores: Sequence[float] | np.ndarray, thresholds: Sequence[float] | np.ndarray | float) -> float:
    """Share of items at or above their threshold (one threshold, or one per item)."""
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean(s >= np.asarray(thresholds, dtype=np.float64))) if s.size else math.nan
