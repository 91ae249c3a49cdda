"""Local store of the worker's behavioural state (sessions, baselines, drift), saved with the offsets
it covers, so a restart resumes exactly where the state left off.

Saved right after an offset commit, atomically (temp file, fsync, rename); each saved snapshot is also
published to the compacted changelog topic (``streams.changelog``), from which a worker without its
local file restores. On restart the consumer seeks each partition back to the saved offset; the events
in between are stored again (the sinks skip them) and fed to the restored state once, so no state
update is lost or counted twice.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable
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
    generation: int = 0
    source: str = "new"  # where the state came from: new, local, changelog
    _last_save: float = 0.0

    @classmethod
    def open(cls, path: Path, save_seconds: float = 30.0,
             changelog: Callable[[], bytes | None] | None = None) -> "BehaviorStore":
        """The saved state: the local file, else the newest snapshot on the changelog, else a new one."""
        store = cls(path=path, save_seconds=save_seconds)
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
        return store

    def wants(self, topic: str, partition: int, offset: int) -> bool:
        """False for an event the restored state already holds (redelivered after a restart)."""
        return offset >= self.restored_from.get((topic, partition), 0)

    def advance(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if offset + 1 > self.offsets.get(key, 0):
            self.offsets[key] = offset + 1

    def maybe_save(self, force: bool = False) -> bytes | None:
        """Save when due (or ``force``); returns the snapshot written, for the changelog, or None."""
        if not force and time.monotonic() - self._last_save < self.save_seconds:
            return None
        self.generation += 1
        blob = pickle.dumps({"version": STATE_VERSION, "generation": self.generation, "offsets": self.offsets,
                             "pipeline": self.pipeline}, protocol=pickle.HIGHEST_PROTOCOL)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._last_save = time.monotonic()
        return blob
