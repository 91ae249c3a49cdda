"""The measurement protocol shared by training and evaluation.

1. Corpora → cases → Event v1 sessions (``corpora``, ``events``); labels stay beside the events.
2. *Units*: every event the classifier scores (a user turn: ``direct``; a tool result or a retrieved
   document: ``indirect``) that is either an attack carrier or part of a benign session. Events of attack
   sessions that carry nothing (the user task of an AgentDojo run) are left out of both classes.
3. Near-duplicate clusters over all unit texts (``dedup``), across sources.
4. Sides (``split``): groups hashed to train / calib / test; eval-only sources (deepset: its copy is
   licensed for internal evaluation only) are always test. A train or calib unit with a near-duplicate
   on the test side is dropped, and so is a calib unit with one on the train side.
5. Two protocols:
   - **group split** (in-source): heads trained on train, thresholds calibrated on calib benign,
     measured on test. This is the shipped model.
   - **leave-one-source-out**: for each source, heads trained on the train side of all *other*
     sources minus anything near-duplicate to the held-out one, calibrated on their calib side, and
     measured on every unit of the held-out source. Scores of all folds are pooled.
6. Metrics per attack category, on units deduplicated by cluster: recall at 1% and 0.1% FPR against
   the benign units of the same placement, and recall at the calibrated threshold with the FPR it
   actually produces — for the heuristics (``detectors.scan.ContentScanner`` findings of category
   prompt_injection / jailbreak), the classifier, and both combined (flagged by either: every heuristic
   finding, plus the classifier at a swept threshold).
"""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from detectors.classifier import FeatureSpec, Head, InjectionClassifier, clean_text, hashed_counts, windows
from streams.evaluation import metrics
from streams.evaluation.corpora import Case, load_cases
from streams.evaluation.dedup import clusters as near_dup_clusters
from streams.evaluation.events import EventLabel, case_events, event_text
from streams.evaluation.split import bucket as split_bucket
from streams.evaluation.split import side as split_side
from streams.training import dataset as tds
from streams.training.fit import DEFAULT_C, fit_head, with_threshold

EVAL_ONLY = frozenset({"deepset"})  # internal-evaluation-only licence: never trained on
# Auxiliary units train and calibrate, and are never reported: answers of AUX_SOURCES (instructional prose
# that does not address an AI; benign training rows of the indirect head) and the clean
# tool outputs of attack sessions (the positives' carriers without the injection). The reported benign
# pools are benign sessions only.
AUX_SOURCES = ("hh_rlhf", "self_instruct")
# Benign task requests that, hidden inside a tool output or a document, are an injection (BIPIA's threat
# model): payloads of compositions for the indirect head, never positives of the direct head.
TASK_PAYLOAD_SOURCES = frozenset({"self_instruct"})
CATEGORY_PLACEMENT = {"jailbreak": "direct", "direct_injection": "direct", "indirect_injection": "indirect"}
DETECTORS = ("heuristics", "classifier", "combined")
DEV = "development (grouped folds of the training side)"
HEURISTIC_CATEGORIES = frozenset({"prompt_injection", "jailbreak"})
N_COMPOSITIONS = 6000
DEFAULT_TARGET_FPR = 0.005  # calibration target, averaged over the calib benign sources (see calibrate_head)
FULL_WEIGHT_UNITS = 100  # calib units from which a benign source weighs as much as any other


@dataclass(frozen=True)
class Settings:
    spec: FeatureSpec = FeatureSpec()
    C: float = DEFAULT_C
    target_fpr: float = DEFAULT_TARGET_FPR
    test: float = 0.3
    calib: float = 0.2
    salt: str = "aiwatch-split-1"

    def to_json(self) -> dict[str, Any]:
        split = {"test": self.test, "calib": self.calib, "salt": self.salt}
        return {"C": self.C, "target_fpr": self.target_fpr, "split": split}


@dataclass
class Dataset:
    """Everything measured, as parallel arrays over units (see the module docstring)."""

    cases: list[Case]
    events: list[dict[str, Any]]
    labels: list[EventLabel]
    text: list[str]
    placement: np.ndarray
    label: np.ndarray  # 1 attack carrier, 0 benign
    category: np.ndarray  # attack category of a carrier, "" for benign
    source: np.ndarray
    subset: np.ndarray
    event: np.ndarray  # index into events, -1 for auxiliary units
    aux: np.ndarray  # auxiliary: a benign answer used as a document (never evaluated)
    side: np.ndarray
    cluster: np.ndarray
    payload: list[str | None]
    win_ptr: np.ndarray  # inference windows of unit i: win_ids[win_ptr[i]:win_ptr[i+1]]
    win_ids: np.ndarray
    train_wins: list[list[int]]
    comps: list[tds.Composition]
    comp_wins: list[list[int]]
    counts: sp.csr_matrix  # hashed counts of every distinct window
    spec: FeatureSpec
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.text)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare(root: Path, settings: Settings = Settings(), sources: Iterable[str] | None = None,
            log: Callable[[str], None] = _log) -> Dataset:
    t0 = time.perf_counter()
    cases = load_cases(Path(root), sources)
    events: list[dict[str, Any]] = []
    labels: list[EventLabel] = []
    rows: dict[str, list[Any]] = defaultdict(list)
    for ci, case in enumerate(cases):
        evs, labs = case_events(case, ci)
        aux = case.source in AUX_SOURCES and case.attack is None
        for ev, lab in zip(evs, labs):
            ei = len(events)
            events.append(ev)
            labels.append(lab)
            if lab.placement is not None and (lab.attack is not None or case.attack is None):
                kind = (lab.placement, 1 if lab.attack else 0, lab.attack or "", False)
            elif aux and lab.kind == "completion":
                kind = ("indirect", 0, "", True)
            elif lab.placement == "indirect" and case.attack is not None:
                kind = ("indirect", 0, "", True)  # a clean tool output of an attack run: in-domain benign
            else:
                continue
            text = clean_text(event_text(ev))
            if not text.strip():
                continue
            rows["text"].append(text)
            rows["placement"].append(kind[0])
            rows["label"].append(kind[1])
            rows["category"].append(kind[2])
            rows["aux"].append(kind[3])
            rows["source"].append(case.source)
            rows["subset"].append(case.subset)
            rows["event"].append(-1 if kind[3] else ei)
            rows["case"].append(ci)
            rows["payload"].append(clean_text(lab.payload) if lab.payload else None)
    t1 = time.perf_counter()
    log(f"corpora: {len(cases)} sessions, {len(events)} events, {len(rows['text'])} scored units ({t1 - t0:.1f}s)")
    text = rows["text"]
    cluster = near_dup_clusters(text, scopes=rows["source"])
    t2 = time.perf_counter()
    log(f"near-duplicate clusters: {len(set(cluster.tolist()))} of {len(text)} texts ({t2 - t1:.1f}s)")
    side = np.array(["test" if cases[c].source in EVAL_ONLY else
                     split_side(cases[c].groups, test=settings.test, calib=settings.calib, salt=settings.salt)
                     for c in rows["case"]], dtype=object)
    side = _drop_leaks(side, cluster)
    # windows: inference windows of every unit, training windows, compositions — each distinct text once
    spec = settings.spec
    index: dict[str, int] = {}
    wtexts: list[str] = []

    def wid(w: str) -> int:
        j = index.get(w)
        if j is None:
            j = index[w] = len(wtexts)
            wtexts.append(w)
        return j

    ptr, ids, train_wins = [0], [], []
    for t, p, y, pl in zip(text, rows["payload"], rows["label"], rows["placement"]):
        ids.extend(wid(w) for w in windows(t, spec, pl))
        ptr.append(len(ids))
        train_wins.append([wid(w) for w in tds.training_windows(t, p, y, spec, pl)])
    label = np.array(rows["label"])
    placement = np.array(rows["placement"], dtype=object)
    aux = np.array(rows["aux"])
    source = np.array(rows["source"], dtype=object)
    payload_pool = [(i, rows["payload"][i] or text[i]) for i in range(len(text))
                    if (label[i] == 1 and source[i] not in EVAL_ONLY and (placement[i] == "direct" or rows["payload"][i]))
                    or (source[i] in TASK_PAYLOAD_SOURCES and placement[i] == "direct" and not aux[i])]
    # carriers: real tool outputs and documents (prose answers as carriers taught "a polite request in an
    # email is an injection" — a false positive on ordinary mail — and gained little recall)
    carrier_pool = [(i, text[i]) for i in range(len(text)) if label[i] == 0 and placement[i] == "indirect" and not aux[i]]
    comps = tds.compositions(payload_pool, carrier_pool, N_COMPOSITIONS)
    comp_wins = [[wid(w) for w in tds.training_windows(c.text, c.payload, 1, spec, "indirect")] for c in comps]
    t3 = time.perf_counter()
    counts = _vectorize(wtexts, spec)
    t4 = time.perf_counter()
    log(f"features: {len(wtexts)} distinct windows, {counts.nnz} non-zeros ({t4 - t3:.1f}s)")
    return Dataset(cases, events, labels, text, placement, label, np.array(rows["category"], dtype=object), source,
                   np.array(rows["subset"], dtype=object), np.array(rows["event"]), aux, side, cluster, rows["payload"],
                   np.array(ptr), np.array(ids, dtype=np.intp), train_wins, comps, comp_wins, counts, spec,
                   {"load": t1 - t0, "dedup": t2 - t1, "vectorize": t4 - t3})


def _drop_leaks(side: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    side = side.copy()
    test_clusters = set(cluster[side == "test"].tolist())
    leak = np.array([s in ("train", "calib") and c in test_clusters for s, c in zip(side, cluster)])
    side[leak] = "dropped"
    train_clusters = set(cluster[side == "train"].tolist())
    leak = np.array([s == "calib" and c in train_clusters for s, c in zip(side, cluster)])
    side[leak] = "dropped"
    return side


def _vectorize(texts: Sequence[str], spec: FeatureSpec, batch: int = 2000) -> sp.csr_matrix:
    parts = [hashed_counts(texts[i:i + batch], spec) for i in range(0, len(texts), batch)]
    return sp.vstack(parts, format="csr") if parts else hashed_counts([], spec)


# -- training and scoring on the precomputed features -----------------------------------------------

def unit_scores(ds: Dataset, head: Head, units: np.ndarray) -> np.ndarray:
    """Classifier score per unit: the maximum over its inference windows (as ``InjectionClassifier.score``)."""
    units = np.asarray(units, dtype=np.intp)
    if units.size == 0:
        return np.zeros(0)
    spans = [ds.win_ids[ds.win_ptr[u]:ds.win_ptr[u + 1]] for u in units]
    wins = np.concatenate(spans)
    owner = np.repeat(np.arange(units.size), [len(s) for s in spans])
    scores = head.window_scores(ds.counts[wins], ds.spec)
    best = np.zeros(units.size)
    np.maximum.at(best, owner, scores)
    return best


def fit_heads(ds: Dataset, train: np.ndarray, calib: np.ndarray, settings: Settings,
              heads: Sequence[str] = ("direct", "indirect")) -> dict[str, Head]:
    """Heads trained on the units in ``train`` (bool mask), calibrated on the benign units in ``calib``."""
    out = {}
    for name in heads:
        wins: list[int] = []
        ys: list[int] = []
        groups: list[str] = []
        for u in np.flatnonzero(train & (ds.placement == name)):
            for w in ds.train_wins[u]:
                wins.append(w)
                ys.append(int(ds.label[u]))
                groups.append(str(ds.source[u]) + (":aux" if ds.aux[u] else ""))
        if name == "indirect":
            for c, cw in zip(ds.comps, ds.comp_wins):
                if train[c.payload_unit] and train[c.carrier_unit]:
                    wins.extend(cw)
                    ys.extend([1] * len(cw))
                    groups.extend(["composed"] * len(cw))
            for u in np.flatnonzero(train & (ds.placement == "direct") & (ds.label == 1)):
                for w in ds.train_wins[u]:
                    wins.append(w)
                    ys.append(1)
                    groups.append(f"{ds.source[u]}:as-document")
        y = np.array(ys)
        head = fit_head(name, ds.counts[np.array(wins, dtype=np.intp)], y, tds.balanced_weights(groups, y.tolist()),
                        ds.spec, settings.C)
        out[name] = calibrate_head(ds, head, calib & (ds.placement == name) & (ds.label == 0), settings.target_fpr)
    return out


def calibrate_head(ds: Dataset, head: Head, benign: np.ndarray, target_fpr: float) -> Head:
    """Threshold at which the false-positive rate *averaged over benign sources* (each source weighing
    the same once it has enough units, see ``macro_threshold``) is at most ``target_fpr`` on the calib
    benign units — so one big, easy source (hh-rlhf) cannot hide a small, hard one (NotInject). Answers
    of AUX_SOURCES train the indirect head but are not tool outputs, and do not set its threshold."""
    units = np.flatnonzero(benign & ~(ds.aux & np.isin(ds.source, AUX_SOURCES)))
    scores = unit_scores(ds, head, units)
    return with_threshold(head, macro_threshold(scores, ds.source[units], target_fpr))


def macro_threshold(scores: np.ndarray, groups: np.ndarray, target_fpr: float) -> float:
    """Smallest threshold t (flagged = score ≥ t) whose weighted false-positive rate is ≤ target_fpr,
    where each group weighs the same once it has FULL_WEIGHT_UNITS units (a smaller group weighs in
    proportion to its size: a handful of units cannot pin the threshold on their own)."""
    if scores.size == 0:
        return 0.5
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    weight = 1.0 / np.maximum(sizes, FULL_WEIGHT_UNITS)[inverse]  # a source weighs at most one
    weight /= weight.sum()
    order = np.argsort(-scores, kind="stable")
    mass = np.cumsum(weight[order])
    s = scores[order]
    # flagged set for threshold s[k] is every score >= s[k]: take the last index of each tie block
    last = np.r_[s[1:] != s[:-1], True]
    ok = (mass <= target_fpr + 1e-12) & last
    if not ok.any():
        return float(np.nextafter(s[0], np.inf))
    k = np.flatnonzero(ok)[-1]  # flag exactly the first k + 1 scores: everything above s[k + 1]
    return float(np.nextafter(s[k + 1], np.inf)) if k + 1 < s.size else 0.0


def group_split_masks(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    trainable = np.array([s not in EVAL_ONLY for s in ds.source])
    return (ds.side == "train") & trainable, (ds.side == "calib") & trainable


def train_shipped(ds: Dataset, settings: Settings, version: str, meta: dict[str, Any]) -> InjectionClassifier:
    train, calib = group_split_masks(ds)
    return InjectionClassifier(ds.spec, fit_heads(ds, train, calib, settings), version, meta)


# -- heuristics -------------------------------------------------------------------------------------

def heuristic_scores(ds: Dataset) -> tuple[np.ndarray, np.ndarray, str]:
    """Per unit: the best score of a prompt_injection / jailbreak finding of ``ContentScanner`` on the
    unit's event, and whether there was one. Zeros (and a note) when the scanner is not available."""
    score = np.zeros(len(ds))
    flag = np.zeros(len(ds), dtype=bool)
    try:
        from detectors.scan import ContentScanner
        from schemas.event import Event
    except Exception as exc:  # noqa: BLE001 - the heuristics are another engineer's work in progress
        return score, flag, f"heuristics unavailable ({type(exc).__name__}: {exc})"
    scanner = ContentScanner()
    for u in np.flatnonzero(ds.event >= 0):
        findings = scanner.scan(Event.model_validate(ds.events[ds.event[u]]))
        best = [f.score for f in findings if str(f.category) in HEURISTIC_CATEGORIES]
        if best:
            score[u] = max(best)
            flag[u] = True
    return score, flag, f"detectors.scan.ContentScanner ({scanner.pattern_count} patterns)"


# -- evaluation -------------------------------------------------------------------------------------

@dataclass
class Fold:
    """Scores of one trained model on what it is judged on.

    ``units``/``clf``/``threshold``: the units it is measured on (its held-out source, or the test side),
    with the classifier score and the threshold of the head that scored each. ``reference``: benign
    units of the same protocol it did not train on, scored by the same heads — the negatives its
    recall at a fixed false-positive rate is computed against (its own held-out units included).
    """

    name: str
    units: np.ndarray
    clf: np.ndarray
    threshold: np.ndarray
    reference: np.ndarray
    reference_clf: np.ndarray
    reference_threshold: np.ndarray


@dataclass
class Scored:
    protocol: str
    folds: list[Fold]


def _score_fold(ds: Dataset, name: str, heads: dict[str, Head], units: np.ndarray, reference: np.ndarray) -> Fold:
    def run(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        clf = np.zeros(idx.size)
        thr = np.full(idx.size, math.inf)
        for pl, head in heads.items():
            sel = ds.placement[idx] == pl
            clf[sel] = unit_scores(ds, head, idx[sel])
            thr[sel] = head.threshold
        return clf, thr

    units = units[np.isin(ds.placement[units], list(heads))]
    reference = reference[np.isin(ds.placement[reference], list(heads))]
    clf, thr = run(units)
    rclf, rthr = run(reference)
    return Fold(name, units, clf, thr, reference, rclf, rthr)


def score_group_split(ds: Dataset, model: InjectionClassifier) -> Scored:
    test = np.flatnonzero((ds.side == "test") & ~ds.aux)
    benign = test[ds.label[test] == 0]
    return Scored("group split (in-source)", [_score_fold(ds, "test side", dict(model.heads), test, benign)])


def score_loso(ds: Dataset, settings: Settings, log: Callable[[str], None] = _log,
               base: dict[str, Head] | None = None) -> Scored:
    """Leave-one-source-out: each source scored by heads that never saw it nor its near-duplicates,
    against the benign test side of the other sources (and its own benign units) scored by the same heads."""
    train0, calib0 = group_split_masks(ds)
    other_benign_test = (ds.side == "test") & (ds.label == 0) & ~ds.aux
    folds = []
    for src in sorted(set(ds.source[~ds.aux].tolist())):
        t = time.perf_counter()
        held = (ds.source == src) & ~ds.aux
        touched = set(ds.cluster[held].tolist())
        clean = (ds.source != src) & np.array([c not in touched for c in ds.cluster])
        heads_needed = sorted(set(ds.placement[held].tolist()))
        if src in EVAL_ONLY and base is not None:
            heads = {h: base[h] for h in heads_needed}  # never trained on: the group-split heads already hold it out
        else:
            try:
                heads = fit_heads(ds, train0 & clean, calib0 & clean, settings, heads_needed)
            except ValueError as exc:  # too little left to train on (tiny corpora subsets)
                log(f"leave-one-source-out: {src} skipped: {exc}")
                continue
        units = np.flatnonzero(held)
        reference = np.flatnonzero((other_benign_test & clean) | (held & (ds.label == 0)))
        folds.append(_score_fold(ds, src, heads, units, reference))
        log(f"leave-one-source-out: {src} held out, heads {', '.join(heads_needed)} ({time.perf_counter() - t:.1f}s)")
    return Scored("leave-one-source-out", folds)


DEV_FOLDS = 4
DEV_SALT = "aiwatch-dev-cv-1"


def dev_folds(ds: Dataset, k: int = DEV_FOLDS, salt: str = DEV_SALT) -> tuple[np.ndarray, np.ndarray]:
    """Grouped folds of the training and calibration sides, for choosing changes without the test side.

    Each group hashes to one of ``k`` folds. Returns ``(fold, touched)``: ``fold[u]`` is the fold of a unit
    whose groups all hash to it (-1 otherwise, and for test-side units), ``touched[u]`` the bitmask of the
    folds its groups hash to — a unit trains for fold *j* only when none of its groups is in *j* (the rule
    of the test split, applied inside the training side)."""
    fold = np.full(len(ds), -1)
    touched = np.zeros(len(ds), dtype=np.int64)
    train, calib = group_split_masks(ds)
    for u in np.flatnonzero(train | calib):
        groups = ds.labels[ds.event[u]].groups if ds.event[u] >= 0 else (f"aux:{ds.text[u][:200]}",)
        folds = {min(k - 1, int(split_bucket(g, salt) * k)) for g in groups}
        touched[u] = sum(1 << f for f in folds)
        if len(folds) == 1:
            fold[u] = folds.pop()
    return fold, touched


def score_dev(ds: Dataset, settings: Settings, k: int = DEV_FOLDS, log: Callable[[str], None] = _log) -> Scored:
    """The development protocol: ``k``-fold grouped cross-validation inside the training side. Each fold
    is scored by heads trained (and calibrated) on the other folds' units that share no group and no
    near-duplicate cluster with it; the folds are pooled into one set of scores, so recall at a fixed
    FPR is read against every fold's benign units. The test side is never scored: changes are chosen
    here and measured on the test side once (``score_group_split``)."""
    train0, calib0 = group_split_masks(ds)
    fold, touched = dev_folds(ds, k)
    units, clf, thr = [], [], []
    for j in range(k):
        t = time.perf_counter()
        held = (fold == j) & ~ds.aux
        if not held.any():
            continue
        clean = (touched > 0) & ((touched >> j) & 1 == 0) & ~np.isin(ds.cluster, np.unique(ds.cluster[fold == j]))
        try:
            heads = fit_heads(ds, train0 & clean, calib0 & clean, settings)
        except ValueError as exc:  # too little left to train on (tiny corpora subsets)
            log(f"development folds: fold {j} skipped: {exc}")
            continue
        f = _score_fold(ds, f"fold {j}", heads, np.flatnonzero(held), np.zeros(0, dtype=np.intp))
        units.append(f.units)
        clf.append(f.clf)
        thr.append(f.threshold)
        log(f"development folds: fold {j} of {k} ({time.perf_counter() - t:.1f}s)")
    if not units:
        return Scored(DEV, [])
    u, c, t = np.concatenate(units), np.concatenate(clf), np.concatenate(thr)
    benign = ds.label[u] == 0
    return Scored(DEV, [Fold("pooled folds", u, c, t, u[benign], c[benign], t[benign])])


def _dedup(units: np.ndarray, ds: Dataset) -> np.ndarray:
    """Positions (into ``units``) of the first unit of each near-duplicate cluster, per class: an attack
    carrier and the clean text it was made from can share a cluster and both count."""
    seen: set[tuple[int, int]] = set()
    keep = []
    for k, u in enumerate(units):
        key = (int(ds.label[u]), int(ds.cluster[u]))
        if key not in seen:
            seen.add(key)
            keep.append(k)
    return np.array(keep, dtype=np.intp)


def detector_scores(name: str, units: np.ndarray, clf: np.ndarray, threshold: np.ndarray,
                    heur: np.ndarray, heur_flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, flagged at the shipped operating point) of one detector on ``units``."""
    if name == "heuristics":
        return heur[units], heur_flag[units]
    if name == "classifier":
        return clf, clf >= threshold
    # The heuristics raise a finding whatever the classifier says, so the combined detector's curve is
    # "every heuristic finding, plus the classifier above a swept threshold": a flagged unit ranks above
    # any classifier score. (The maximum of the two scores would rank a heuristic finding of 0.6 below
    # benign classifier scores of 0.9 — a curve of no detector that is deployed.)
    return np.where(heur_flag[units], 1.0 + heur[units], clf), (clf >= threshold) | heur_flag[units]


def category_results(ds: Dataset, scored: Scored, heur: np.ndarray, heur_flag: np.ndarray) -> list[dict[str, Any]]:
    """Per attack category and detector: recall at 1% / 0.1% FPR (per fold, pooled over folds by
    positives), recall at the shipped operating point and the FPR it produces (mean over folds,
    weighted by their positives). Units are deduplicated by near-duplicate cluster within each fold."""
    out = []
    for category, placement in CATEGORY_PLACEMENT.items():
        for det in DETECTORS:
            acc = defaultdict(float)
            for f in scored.folds:
                p = f.units[(ds.label[f.units] == 1) & (ds.category[f.units] == category)]
                if p.size == 0:
                    continue
                pk = _dedup(f.units, ds)
                pk = pk[(ds.label[f.units[pk]] == 1) & (ds.category[f.units[pk]] == category)]
                nk = _dedup(f.reference, ds)
                nk = nk[ds.placement[f.reference[nk]] == placement]
                ps, pf = detector_scores(det, f.units[pk], f.clf[pk], f.threshold[pk], heur, heur_flag)
                ns, nf = detector_scores(det, f.reference[nk], f.reference_clf[nk], f.reference_threshold[nk], heur, heur_flag)
                n = pk.size
                acc["n_pos"] += n
                acc["n_neg"] += nk.size * n
                acc["folds"] += 1
                acc["tp1"] += metrics.recall_at_fpr(ps, ns, 0.01).recall * n
                acc["tp01"] += metrics.recall_at_fpr(ps, ns, 0.001).recall * n
                acc["tpt"] += float(pf.mean()) * n
                acc["fpt"] += (float(nf.mean()) if nf.size else math.nan) * n
            if not acc["n_pos"]:
                continue
            n = acc["n_pos"]
            out.append({
                "protocol": scored.protocol, "category": category, "placement": placement, "detector": det,
                "folds": int(acc["folds"]), "n_pos": int(n), "n_neg": int(round(acc["n_neg"] / n)),
                "recall_at_1pct": acc["tp1"] / n, "recall_at_0_1pct": acc["tp01"] / n,
                "recall_at_threshold": acc["tpt"] / n, "fpr_at_threshold": acc["fpt"] / n,
            })
    return out


def source_results(ds: Dataset, scored: Scored, heur: np.ndarray, heur_flag: np.ndarray) -> list[dict[str, Any]]:
    """Per source, placement and class: the share flagged at the shipped operating point (for a benign
    source under leave-one-source-out: the FPR of a threshold calibrated without it)."""
    out = []
    for f in scored.folds:
        keep = _dedup(f.units, ds)
        for src in sorted(set(ds.source[f.units].tolist())):
            for placement in ("direct", "indirect"):
                for y in (1, 0):
                    k = keep[(ds.source[f.units[keep]] == src) & (ds.placement[f.units[keep]] == placement)
                             & (ds.label[f.units[keep]] == y)]
                    if k.size == 0:
                        continue
                    row = {"protocol": scored.protocol, "source": src, "placement": placement,
                           "class": "attack" if y else "benign", "n": int(k.size)}
                    for det in DETECTORS:
                        _, flag = detector_scores(det, f.units[k], f.clf[k], f.threshold[k], heur, heur_flag)
                        row[det] = float(flag.mean())
                    out.append(row)
    return out


def speed(model: InjectionClassifier, texts: Sequence[str], placement: str = "indirect", repeat: int = 2) -> dict[str, float]:
    """Texts per second of batched ``score`` on ``texts`` (best of ``repeat``)."""
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        model.score(texts, placement)
        best = min(best, time.perf_counter() - t)
    chars = sum(len(t) for t in texts)
    return {"texts": len(texts), "mean_chars": chars / max(1, len(texts)), "seconds": best,
            "texts_per_s": len(texts) / best if best > 0 else math.inf}
