"""Local store of the worker's behavioural state (sessions, baselines, drift), saved with the offsets
it covers, so a restart resumes exactly where the state left off.

Saved right after an offset commit, atomically (temp file, fsync, rename). On restart the consumer
seeks each partition back to the saved offset; the events in between are stored again (the sinks skip
them) and fed to the restored state once, so no state update is lost or counted twice.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from detectors.behavior.pipeline import BehaviorPipeline

STATE_VERSION = 1
Position = tuple[str, int]  # (topic, partition)


@dataclass
class BehaviorStore:
    path: Path
    save_seconds: float = 30.0
    pipeline: BehaviorPipeline = field(default_factory=BehaviorPipeline)
    offsets: dict[Position, int] = field(default_factory=dict)  # next offset the state has not seen
    restored_from: dict[Position, int] = field(default_factory=dict)
    _last_save: float = 0.0

    @classmethod
    def open(cls, path: Path, save_seconds: float = 30.0) -> "BehaviorStore":
        store = cls(path=path, save_seconds=save_seconds)
        if path.exists():
            with path.open("rb") as handle:
                saved = pickle.load(handle)  # noqa: S301 - our own file, written by save() below
            if saved.get("version") == STATE_VERSION:
                store.pipeline = saved["pipeline"]
                store.offsets = dict(saved["offsets"])
                store.restored_from = dict(saved["offsets"])
        return store

    def wants(self, topic: str, partition: int, offset: int) -> bool:
        """False for an event the restored state already holds (redelivered after a restart)."""
        return offset >= self.restored_from.get((topic, partition), 0)

    def advance(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if offset + 1 > self.offsets.get(key, 0):
            self.offsets[key] = offset + 1

    def maybe_save(self, force: bool = False) -> bool:
        if not force and time.monotonic() - self._last_save < self.save_seconds:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            pickle.dump({"version": STATE_VERSION, "offsets": self.offsets, "pipeline": self.pipeline}, handle,
                        protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._last_save = time.monotonic()
        return True
