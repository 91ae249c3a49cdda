"""Behavioural layer: sessions, online baselines and drift — pure logic, no I/O.

Per event, in the worker (each piece on its own Faust table; the state values are picklable):

- ``SessionDetector.observe(state: SessionState, event, profile: AppProfile | None) -> [Finding]`` —
  table keyed by ``session_id``; the app's ``AppProfile`` (small; a global table keyed by app, fed by
  ``AppProfile.learn_one(SessionDetector.close(state))`` when a session ends);
- ``BaselineModel.process(state: BaselineState, event) -> [Finding]`` — table keyed by app (the
  partition); ``BaselineModel.flush(state, now)`` on a timer;
- ``DriftMonitor.update(state: DriftState, event, signals) -> [Finding]`` and
  ``DriftMonitor.update_session(state, summary)`` — table keyed by app.

``BehaviorPipeline`` runs all three in one process (``aiwatch replay``); ``snapshot()`` gives every
baseline as rows (``SNAPSHOT_COLUMNS``) and ``suggest()`` a threshold proposal as YAML.
"""

from detectors.behavior.baseline import (
    DEFAULT_SPECS,
    SNAPSHOT_COLUMNS,
    SNAPSHOT_SCHEMA,
    BaselineConfig,
    BaselineModel,
    BaselineState,
    BaselineStore,
    Spec,
)
from detectors.behavior.config import SessionConfig
from detectors.behavior.drift import DriftConfig, DriftMonitor, DriftState, DriftTracker
from detectors.behavior.pipeline import BehaviorPipeline
from detectors.behavior.session import AppProfile, SessionDetector, SessionState, SessionSummary, SessionTracker
from detectors.behavior.suggest import Suggestion, suggest

__all__ = [
    "AppProfile", "BaselineConfig", "BaselineModel", "BaselineState", "BaselineStore", "BehaviorPipeline",
    "DEFAULT_SPECS", "DriftConfig", "DriftMonitor", "DriftState", "DriftTracker", "SNAPSHOT_COLUMNS",
    "SNAPSHOT_SCHEMA", "SessionConfig", "SessionDetector", "SessionState", "SessionSummary", "SessionTracker",
    "Spec", "Suggestion", "suggest",
]
