"""Finding v1 → OCSF Detection Finding (class 2004) for the SOC feed (DESIGN §3.3).

Pure formatting, no I/O. Fields follow OCSF 1.8 with the ``ai_operation`` profile; aiwatch's own
ids ride under ``unmapped.aiwatch`` so an analyst can pivot back to the finding and the events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas import Event, Finding

if TYPE_CHECKING:  # pragma: no cover
    from streams.throttle import Rollup

OCSF_VERSION = "1.8.0"
PRODUCT = {"name": "aiwatch", "vendor_name": "aiwatch", "version": "0.1.0"}

SEVERITY_ID = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}

# Analytic type by detector family: 1 Rule, 2 Behavioral, 3 Statistical, 4 Learning.
ANALYTIC_TYPE = {"rules": (1, "Rule"), "session": (2, "Behavioral"), "baseline": (3, "Statistical"),
                 "drift": (3, "Statistical"), "classifier": (4, "Learning")}

# MITRE ATLAS technique → (name, primary tactic uid, tactic name).
ATLAS: dict[str, tuple[str, str, str]] = {
    "AML.T0051": ("LLM Prompt Injection", "AML.TA0005", "Execution"),
    "AML.T0051.000": ("LLM Prompt Injection: Direct", "AML.TA0005", "Execution"),
    "AML.T0051.001": ("LLM Prompt Injection: Indirect", "AML.TA0005", "Execution"),
    "AML.T0051.002": ("LLM Prompt Injection: Triggered", "AML.TA0005", "Execution"),
    "AML.T0053": ("AI Agent Tool Invocation", "AML.TA0005", "Execution"),
    "AML.T0054": ("LLM Jailbreak", "AML.TA0012", "Privilege Escalation"),
    "AML.T0055": ("Unsecured Credentials", "AML.TA0013", "Credential Access"),
    "AML.T0056": ("Extract LLM System Prompt", "AML.TA0010", "Exfiltration"),
    "AML.T0057": ("LLM Data Leakage", "AML.TA0010", "Exfiltration"),
    "AML.T0068": ("LLM Prompt Obfuscation", "AML.TA0007", "Defense Evasion"),
    "AML.T0070": ("RAG Poisoning", "AML.TA0006", "Persistence"),
    "AML.T0077": ("LLM Response Rendering", "AML.TA0010", "Exfiltration"),
    "AML.T0080": ("AI Agent Context Poisoning", "AML.TA0006", "Persistence"),
    "AML.T0085": ("Data from AI Services", "AML.TA0009", "Collection"),
    "AML.T0086": ("Exfiltration via AI Agent Tool Invocation", "AML.TA0010", "Exfiltration"),
    "AML.T0098": ("AI Agent Tool Credential Harvesting", "AML.TA0013", "Credential Access"),
    "AML.T0101": ("Data Destruction via AI Agent Tool Invocation", "AML.TA0011", "Impact"),
    "AML.T0110": ("AI Agent Tool Poisoning", "AML.TA0006", "Persistence"),
    "AML.T0034": ("Cost Harvesting", "AML.TA0011", "Impact"),
    "AML.T0029": ("Denial of AI Service", "AML.TA0011", "Impact"),
}


def _attacks(tags: list[str]) -> list[dict[str, Any]]:
    attacks = []
    for tag in tags:
        if not tag.startswith("atlas:"):
            continue
        uid = tag.split(":", 1)[1]
        name, tactic_uid, tactic = ATLAS.get(uid, ATLAS.get(uid.rsplit(".", 1)[0], (uid, "", "")))
        attack: dict[str, Any] = {"technique": {"uid": uid, "name": name}, "version": "ATLAS 5"}
        if tactic_uid:
            attack["tactic"] = {"uid": tactic_uid, "name": tactic}
        attacks.append(attack)
    return attacks


def _epoch_ms(finding: Finding) -> int:
    return int(finding.ts.timestamp() * 1000)


def to_ocsf(finding: Finding, event: Event | None = None) -> dict[str, Any]:
    """One OCSF Detection Finding for one aiwatch finding (and, when known, its triggering event)."""
    type_id, type_name = ANALYTIC_TYPE.get(finding.detector, (1, "Rule"))
    severity = str(finding.severity)
    alert: dict[str, Any] = {
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create", "type_uid": 200401,
        "severity_id": SEVERITY_ID.get(severity, 0), "severity": severity.capitalize(),
        "status_id": 1, "status": "New", "time": _epoch_ms(finding),
        "confidence_score": round(float(finding.score) * 100),
        "message": finding.title,
        "metadata": {"product": PRODUCT, "version": OCSF_VERSION, "uid": finding.finding_id,
                     "profiles": ["ai_operation"]},
        "finding_info": {
            "uid": finding.finding_id, "title": finding.title, "desc": finding.rationale,
            "types": [str(finding.category)], "created_time": _epoch_ms(finding),
            "analytic": {"uid": finding.rule_id or finding.detector, "name": finding.rule_id or finding.detector,
                         "type_id": type_id, "type": type_name},
            "attacks": _attacks(finding.tags),
            "related_events": [{"uid": finding.event_id}],
        },
        "evidences": [{"data": item} for item in finding.evidence[:20]],
        "resources": [{"type": "ai_application", "name": finding.app or ""}]
        + ([{"type": "ai_agent", "name": finding.agent}] if finding.agent else []),
        "message_context": {"application": finding.app or "", "uid": finding.session_id or ""},
        "unmapped": {"aiwatch": {"finding_id": finding.finding_id, "category": str(finding.category),
                                 "detector": finding.detector, "tags": finding.tags, "mode": str(finding.mode),
                                 "policy_version": finding.policy_version or ""}},
    }
    if finding.user_id:
        alert["actor"] = {"user": {"uid": finding.user_id, "name": finding.user_id}}
    if event is not None:
        if event.model:
            alert["ai_model"] = {"name": event.model.served or event.model.name or "",
                                 "ai_provider": event.model.provider or ""}
        if event.usage:
            alert["message_context"]["prompt_tokens"] = event.usage.input_tokens
            alert["message_context"]["completion_tokens"] = event.usage.output_tokens
    return alert


def rollup_to_ocsf(rollup: "Rollup") -> dict[str, Any]:
    """The rollup of throttled alerts of one group: the latest finding with ``count``, the time span and
    the related events; ``unmapped.aiwatch.rollup_of`` names the alert that opened the window."""
    alert = to_ocsf(rollup.finding)
    uid = rollup.rollup_id
    alert["metadata"]["uid"] = uid
    alert["finding_info"]["uid"] = uid
    alert["count"] = rollup.count
    alert["start_time"] = int(rollup.first_ts * 1000)
    alert["end_time"] = int(rollup.last_ts * 1000)
    alert["message"] = f"{rollup.finding.title} ({rollup.count} more, throttled since the first alert)"
    alert["finding_info"]["related_events"] = [{"uid": e} for e in rollup.event_ids]
    alert["unmapped"]["aiwatch"].update({"rollup_of": rollup.first_alert_id, "throttled": rollup.count})
    return alert
