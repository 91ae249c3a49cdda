"""Group splits: a case goes to one side with all of its groups (user task, injection goal, …).

A case's first group is its *primary* group (the AgentDojo user task, the BIPIA context, the jailbreak
goal); the others are *held-out* groups (injection goal, attack category). Each group is hashed
(salted sha256) into [0, 1). A primary group below ``test`` is a test group, below ``test + calib`` a
calibration group, otherwise a training group; a held-out group is a test group below ``test`` and
otherwise goes with the primary group. A case is on the test side when all its groups are test groups
and dropped when only some are — so an injection goal seen in test is never trained on, and a user task
in test never appears in training with another goal — and otherwise on its primary group's side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SIDES = ("train", "calib", "test", "dropped")


def bucket(group: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}\x00{group}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def side(groups: Sequence[str], *, test: float = 0.3, calib: float = 0.2, salt: str = "aiwatch-split-1") -> str:
    if not groups:
        raise ValueError("a case needs at least one group to be split")
    buckets = [bucket(g, salt) for g in groups]
    in_test = [u < test for u in buckets]
    if all(in_test):
        return "test"
    if any(in_test):
        return "dropped"
    return "calib" if buckets[0] < test + calib else "train"
