"""Local store of the worker's behavioural state (sessions, baselines, drift), saved with the offsets
it covers, so a restart resumes exactly where the state left off.

Saved right after an offset commit, atomically (temp file, fsync, rename); each saved snapshot is also
published to the compacted changelog topic (``streams.changelog``), from which a worker without its
local file restores. On restart the consumer seeks each partition back to the saved offset; the events
in between are stored again (the sinks skip them) and fed to the restored state once, so no state
update is lost or counted twice.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from detectors.behavior.baseline import BaselineStore
from detectors.behavior.pipeline import BehaviorPipeline

log = logging.getLogger("aiwatch.state")

STATE_VERSION = 1
Position = tuple[str, int]  # (topic, partition)


@dataclass
class BehaviorStore:
    path: Path
    save_seconds: float = 30.0
    pipeline: BehaviorPipeline = field(default_factory=BehaviorPipeline)
    offsets: dict[Position, int] = field(default_factory=dict)  # next offset the state has not seen
    restored_from: dict[Position, int] = field(default_factory=dict)
    generation: int = 0
    source: str = "new"  # where the state came from: new, local, changelog
    _last_save: float = 0.0

    @classmethod
    def open(cls, path: Path, save_seconds: float = 30.0,
             changelog: Callable[[], bytes | None] | None = None,
             partition_by: tuple[str, ...] = ()) -> "BehaviorStore":
        """The saved state: the local file, else the newest snapshot on the changelog, else a new one.
        ``partition_by``: how baselines split each app (``BaselineConfig.partition_by``); a saved state
        split another way keeps its sessions and drift, and its baselines start learning again."""
        store = cls(path=path, save_seconds=save_seconds, pipeline=BehaviorPipeline.split_by(partition_by))
        blob, source = None, "new"
        if path.exists():
            blob, source = path.read_bytes(), "local"
        elif changelog is not None:
            blob = changelog()
            source = "changelog" if blob else "new"
        if blob:
            saved = pickle.loads(blob)  # noqa: S301 - our own snapshot, written by maybe_save below
            if saved.get("version") == STATE_VERSION:
                store.pipeline = saved["pipeline"]
                store.offsets = dict(saved["offsets"])
                store.restored_from = dict(saved["offsets"])
                store.generation = int(saved.get("generation", 0))
                store.source = source
                had = store.pipeline.baselines.model.config  # a config saved before partitions reads the default ()
                if had.partition_by != tuple(partition_by):
                    log.warning("baselines were split by %s and are now split by %s: they start learning again "
                                "(sessions and drift are kept)", list(had.partition_by) or ["app"],
                                list(partition_by) or ["app"])
                    store.pipeline.baselines = BaselineStore(replace(had, partition_by=tuple(partition_by)))
        return store

    def wants(self, topic: str, partition: int, offset: int) -> bool:
        """False for an event the state already holds: redelivered after a restart, or after a rebalance
        handed the partition back from its last commit (the state is fed in offset order)."""
        return offset >= self.offsets.get((topic, partition), 0)

    def advance(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if offset + 1 > self.offsets.get(key, 0):
            self.offsets[key] = offset + 1

    def due(self) -> bool:
        return time.monotonic() - self._last_save >= self.save_seconds

    def maybe_save(self, force: bool = False) -> bytes | None:
        """Save when due (or ``force``); returns the snapshot written, for the changelog, or None."""
        if not force and not self.due():
            return None
        self.generation += 1
        blob = self._dump()
        self._write(blob)
        self._last_save = time.monotonic()
        return blob

    def save_in_background(self) -> int:
        """Fork; the copy pickles and writes this instant's state while this process goes on, the way
        Redis saves: a ~20 MB pickle no longer stalls the layer. Returns the copy's pid (to reap).
        Only for a process without threads of its own (``streams.behavior_process``'s child)."""
        self.generation += 1
        self._last_save = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked copy (coverage does not follow it)
            code = 0
            try:
                os.nice(19)  # the copy yields the cores to the live layer and the worker
                self._write(self._dump())
            except BaseException:  # noqa: BLE001 - the next save retries; the parent sees the code
                code = 1
            os._exit(code)
        return pid

    def _dump(self) -> bytes:
        return pickle.dumps({"version": STATE_VERSION, "generation": self.generation, "offsets": self.offsets,
                             "pipeline": self.pipeline}, protocol=pickle.HIGHEST_PROTOCOL)

    def _write(self, blob: bytes) -> None:
        """Atomically: a temp file, fsync, rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
