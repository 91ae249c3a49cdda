"""Finding v1 (DESIGN §3.2): what a detector or rule concluded about an event, and why."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, field_validator

from schemas import limits

FINDING_SCHEMA = "aiwatch.finding/1"


class Category(str, Enum):
    prompt_injection = "prompt_injection"
    jailbreak = "jailbreak"
    secret_leak = "secret_leak"
    pii_exposure = "pii_exposure"
    system_prompt_leak = "system_prompt_leak"
    exfiltration = "exfiltration"
    goal_hijack = "goal_hijack"
    tool_misuse = "tool_misuse"
    unsafe_code_execution = "unsafe_code_execution"
    unapproved_model = "unapproved_model"
    privilege_anomaly = "privilege_anomaly"
    cost_anomaly = "cost_anomaly"
    runaway = "runaway"
    behavior_anomaly = "behavior_anomaly"
    drift = "drift"
    memory_poisoning = "memory_poisoning"
    policy_violation = "policy_violation"


class Severity(str, Enum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Mode(str, Enum):
    learn = "learn"
    monitor = "monitor"
    alert = "alert"


class Finding(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, use_enum_values=True)

    schema_: Literal["aiwatch.finding/1"] = Field(default=FINDING_SCHEMA, alias="schema")
    finding_id: str = Field(min_length=1, max_length=limits.MAX_ID_CHARS)
    ts: AwareDatetime
    detector: str = Field(min_length=1, max_length=limits.MAX_NAME_CHARS)
    rule_id: str | None = Field(default=None, max_length=limits.MAX_NAME_CHARS)
    category: Category
    severity: Severity
    score: float = Field(ge=0.0, le=1.0)
    event_id: str = Field(min_length=1, max_length=limits.MAX_ID_CHARS)
    session_id: str | None = None
    app: str | None = None
    agent: str | None = None
    user_id: str | None = None
    title: str = Field(min_length=1, max_length=1024)
    rationale: str = Field(default="", max_length=8192)
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    mode: Mode = Mode.monitor
    policy_version: str | None = None

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(timezone.utc)

    @field_serializer("ts")
    def _rfc3339(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
