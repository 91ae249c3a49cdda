"""Rule files → a frozen :class:`RulePack`, collecting every problem with its file:line:column.

``load_pack(paths)`` refuses a pack with any error (``RuleLoadError`` lists them all);
``lint(paths)`` returns the same issues (errors and warnings) without raising. A pack is the union of
its files: rules, params and app modes may sit in any file, ids must be unique across all of them,
and at most one file declares ``pack: {name, version}``. The format is described in
``infra/rules/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from detectors.rules.conditions import Compiler
from detectors.rules.fields import EVENT_FIELDS, FINDING_FIELDS, STUB_KEYS, FieldSpec, FindingView, event_field
from detectors.rules.issues import Issue, Issues, Pos, RuleLoadError, did_you_mean
from detectors.rules.model import (
    LEVELS, MODES, PLACEHOLDER, STATUSES, ModeSetting, PackFile, Rule, RuleException, RulePack, Template,
    TestCase,
)
from detectors.rules.operators import MATCH_MODES, is_number
from detectors.rules.params import MISSING, Param
from detectors.rules.source import LList, LMap, collect_files, plain, read_file
from schemas.event import Event
from schemas.finding import Category

TOP_KEYS = ("pack", "params", "modes", "rules", "exceptions")
PACK_KEYS = ("name", "version", "description")
MODES_KEYS = ("default", "apps")
PARAM_KEYS = ("description", "match", "value", "by", "default")
RULE_REQUIRED = ("id", "title", "status", "level", "category", "tags", "match", "action", "runbook", "tests")
RULE_OPTIONAL = ("description", "message", "mode", "score", "references", "author", "exceptions")
EXCEPTION_KEYS = ("id", "owner", "reason", "ticket", "expires_at", "created_at", "match", "rules")
TESTS_KEYS = ("positive", "negative")
CASE_KEYS = ("name", "event", "findings", "now", "expect")
EXPECT_KEYS = ("suppressed_by", "mode")

RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(?:[.-][a-z0-9_]+)*$")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TAG = re.compile(r"^[a-z][a-z0-9-]*:[A-Za-z0-9._-]+$")
KNOWN_TAGS = {
    "atlas": re.compile(r"^atlas:AML\.T\d{4}(?:\.\d{3})?$"),
    "owasp-llm": re.compile(r"^owasp-llm:LLM(?:0[1-9]|10)$"),
    "owasp-asi": re.compile(r"^owasp-asi:ASI(?:0[1-9]|10)$"),
}
CATEGORIES = tuple(c.value for c in Category)
MAX_EXCEPTION_DAYS = 366
TEST_TS = "2025-01-01T00:00:00Z"


# -- small typed readers ----------------------------------------------------------------------------


def _check_keys(m: LMap, allowed: Iterable[str], required: Iterable[str], issues: Issues, what: str) -> None:
    allowed = tuple(allowed)
    for key in m:
        if key not in allowed:
            issues.error("unknown-key", f"unknown key {key!r} in {what}{did_you_mean(key, allowed)}", m.kpos(key))
    for key in required:
        if key not in m:
            issues.error("missing-key", f"{what} needs {key!r}", m.pos)


def _str(m: LMap, key: str, issues: Issues, what: str, *, required: bool = False, nonempty: bool = True) -> str | None:
    if key not in m:
        return None  # missing required keys are reported by _check_keys
    value = m[key]
    if not isinstance(value, str) and value is not None and not isinstance(value, (LMap, LList)):
        value = m.raw.get(key, value)  # 1.0, yes, 2025-01-01 written plainly: the text as written
    if not isinstance(value, str) or (nonempty and not value.strip()):
        issues.error("bad-value", f"{what} {key!r} must be a non-empty string", m.vpos(key))
        return None
    return value


def _choice(m: LMap, key: str, choices: tuple[str, ...], issues: Issues, what: str) -> str | None:
    value = _str(m, key, issues, what)
    if value is None:
        return None
    if value not in choices:
        issues.error("bad-value", f"unknown {key} {value!r}{did_you_mean(value, choices)} in {what}; one of {', '.join(choices)}", m.vpos(key))
        return None
    return value


def _str_list(m: LMap, key: str, issues: Issues, what: str) -> list[tuple[str, Pos]] | None:
    value = m[key]
    if not isinstance(value, LList):
        issues.error("bad-value", f"{what} {key!r} must be a list of strings", m.vpos(key))
        return None
    out = []
    for i, item in enumerate(value):
        text = item if isinstance(item, str) else value.raw.get(i)
        if not isinstance(text, str) or not text:
            issues.error("bad-value", f"{what} {key!r}: item {i + 1} must be a non-empty string", value.ipos(i))
            continue
        out.append((text, value.ipos(i)))
    return out


def _when(m: LMap, key: str, issues: Issues, what: str) -> datetime | None:
    """A timestamp with a timezone, or a date (meaning 00:00 UTC of that day)."""
    value = m[key]
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            issues.error("bad-time", f"{what} {key!r}: {value!r} is not an RFC 3339 time or a date (YYYY-MM-DD)", m.vpos(key))
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            issues.error("bad-time", f"{what} {key!r} needs a timezone (for example 2026-01-31T00:00:00Z)", m.vpos(key))
            return None
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=timezone.utc)
    issues.error("bad-time", f"{what} {key!r} must be a date (YYYY-MM-DD) or an RFC 3339 time", m.vpos(key))
    return None


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(plain(value), sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


# -- the loader ---------------------------------------------------------------------------------------


@dataclass
class _File:
    path: str
    data: bytes
    doc: LMap


@dataclass
class _Loader:
    now: datetime
    issues: Issues = field(default_factory=Issues)
    params: dict[str, Param] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    rule_pos: dict[str, Pos] = field(default_factory=dict)
    exception_pos: dict[str, Pos] = field(default_factory=dict)
    rule_refs: list[tuple[str, str, Pos]] = field(default_factory=list)  # (exception id, rule id, where)

    def load(self, paths: list[str | Path]) -> RulePack | None:
        files: list[_File] = []
        pack_files: list[PackFile] = []
        for path, display in collect_files(list(paths), self.issues):
            got = read_file(path, display, self.issues)
            if got is None:
                continue
            data, doc = got
            pack_files.append(PackFile(display, hashlib.sha256(data).hexdigest(), len(data)))
            if doc is None:
                if not any(i.pos and i.pos.file == display for i in self.issues.items):
                    self.issues.warning("empty-file", "rule file is empty", Pos(display, 1, 1))
                continue
            if not isinstance(doc, LMap):
                self.issues.error("file-type", f"a rule file is a mapping with keys {', '.join(TOP_KEYS)}", doc.pos if isinstance(doc, LList) else Pos(display, 1, 1))
                continue
            _check_keys(doc, TOP_KEYS, (), self.issues, "a rule file")
            files.append(_File(display, data, doc))

        name, version = self._pack_meta(files)
        for f in files:
            if "params" in f.doc:
                self._params(f.doc["params"], f.doc.vpos("params"))
        compiler = Compiler(self.issues, self.params)
        modes = self._modes(files)
        for f in files:
            if "rules" in f.doc:
                self._rules(f.doc["rules"], f.doc.vpos("rules"), compiler)
        extra: list[RuleException] = []
        for f in files:
            if "exceptions" in f.doc:
                extra.extend(self._pack_exceptions(f.doc["exceptions"], f.doc.vpos("exceptions"), compiler))
        rules = self._link(extra)
        if not self.issues.errors and not rules and pack_files:
            self.issues.warning("no-rules", "the pack holds no rules", None)
        if self.issues.errors:
            return None
        digest = hashlib.sha256("\n".join(sorted(f.sha256 for f in pack_files)).encode()).hexdigest()
        return RulePack(
            name=name, version=version, digest=digest, rules=tuple(sorted(rules, key=lambda r: r.id)),
            params=MappingProxyType(dict(self.params)), modes=modes,
            files=tuple(sorted(pack_files, key=lambda f: f.path)), warnings=tuple(self.issues.sorted()),
        )

    # -- pack metadata and modes --------------------------------------------------------------------

    def _pack_meta(self, files: list[_File]) -> tuple[str | None, str | None]:
        found: tuple[str | None, str | None, Pos] | None = None
        for f in files:
            if "pack" not in f.doc:
                continue
            meta = f.doc["pack"]
            if not isinstance(meta, LMap):
                self.issues.error("bad-value", "'pack' is a mapping with name, version and description", f.doc.vpos("pack"))
                continue
            _check_keys(meta, PACK_KEYS, (), self.issues, "'pack'")
            name = _str(meta, "name", self.issues, "pack")
            version = _str(meta, "version", self.issues, "pack")
            if found is not None:
                self.issues.error("duplicate-pack", f"'pack' is declared twice (first in {found[2]})", f.doc.kpos("pack"))
                continue
            found = (name, version, f.doc.kpos("pack"))
        return (found[0], found[1]) if found else (None, None)

    def _mode(self, value: Any, pos: Pos, what: str) -> str | None:
        if value not in MODES:
            self.issues.error("bad-mode", f"unknown mode {value!r}{did_you_mean(value, MODES)} for {what}; one of {', '.join(MODES)}", pos)
            return None
        return value

    def _mode_setting(self, value: Any, pos: Pos, what: str, seen: dict[str, Pos] | None = None) -> ModeSetting:
        if isinstance(value, str) or value is None or not isinstance(value, LMap):
            mode = self._mode(value, pos, what)
            return ModeSetting(mode, MappingProxyType({}))
        _check_keys(value, MODES_KEYS, (), self.issues, f"the modes of {what}")
        default = self._mode(value["default"], value.vpos("default"), what) if "default" in value else None
        apps: dict[str, str] = {}
        table = value.get("apps")
        if "apps" in value:
            if not isinstance(table, LMap):
                self.issues.error("bad-value", "'apps' maps app names to modes", value.vpos("apps"))
            else:
                for app, mode in table.items():
                    ok = self._mode(mode, table.vpos(app), f"app {app!r}")
                    if seen is not None and app in seen:
                        self.issues.error("duplicate-mode", f"mode of app {app!r} is set twice (first in {seen[app]})", table.kpos(app))
                        continue
                    if seen is not None:
                        seen[app] = table.kpos(app)
                    if ok:
                        apps[app] = ok
        return ModeSetting(default, MappingProxyType(apps))

    def _modes(self, files: list[_File]) -> ModeSetting:
        default: str | None = None
        default_pos: Pos | None = None
        apps: dict[str, str] = {}
        seen: dict[str, Pos] = {}
        for f in files:
            if "modes" not in f.doc:
                continue
            value = f.doc["modes"]
            if not isinstance(value, LMap):
                self.issues.error("bad-value", "'modes' is a mapping with 'default' and 'apps'", f.doc.vpos("modes"))
                continue
            setting = self._mode_setting(value, f.doc.vpos("modes"), "the pack", seen)
            if setting.default is not None:
                if default_pos is not None:
                    self.issues.error("duplicate-mode", f"the default mode is set twice (first in {default_pos})", value.kpos("default"))
                else:
                    default, default_pos = setting.default, value.kpos("default")
            apps.update(setting.apps)
        return ModeSetting(default, MappingProxyType(apps))

    # -- params -------------------------------------------------------------------------------------

    def _params(self, value: Any, pos: Pos) -> None:
        if not isinstance(value, LMap):
            self.issues.error("bad-value", "'params' maps names to values", pos)
            return
        for name, spec in value.items():
            kpos = value.kpos(name)
            if not PARAM_NAME.match(name):
                self.issues.error("bad-name", f"param name {name!r} must be lower_snake_case", kpos)
                continue
            if name in self.params:
                self.issues.error("duplicate-param", f"param {name!r} is declared twice (first in {self.params[name].pos})", kpos)
                continue
            param = self._param(name, spec, value.vpos(name), kpos)
            if param is not None:
                self.params[name] = param

    def _param_value(self, value: Any, pos: Pos, what: str) -> tuple[str, Any] | None:
        """("list", [..]) or ("number", n)."""
        if isinstance(value, LList):
            items = []
            for i, item in enumerate(value):
                if isinstance(item, str) or is_number(item):
                    items.append(item)
                elif value.raw.get(i) is not None:
                    items.append(value.raw[i])
                else:
                    self.issues.error("bad-value", f"{what}: list items must be strings or numbers", value.ipos(i))
                    return None
            return "list", items
        if is_number(value):
            return "number", value
        self.issues.error("bad-value", f"{what} must be a list of values or a number", pos)
        return None

    def _param(self, name: str, spec: Any, pos: Pos, kpos: Pos) -> Param | None:
        if isinstance(spec, LList) or is_number(spec):
            got = self._param_value(spec, pos, f"param {name!r}")
            return Param(name, got[0], "exact", (), got[1], "", kpos) if got else None
        if not isinstance(spec, LMap):
            self.issues.error("bad-value", f"param {name!r} must be a list, a number, or a mapping with value / by / default", pos)
            return None
        n_errors = len(self.issues.errors)
        _check_keys(spec, PARAM_KEYS, (), self.issues, f"param {name!r}")
        description = _str(spec, "description", self.issues, f"param {name!r}") or ""
        match = "exact"
        if "match" in spec:
            match = spec["match"]
            if match not in MATCH_MODES:
                self.issues.error("bad-value", f"unknown match mode {match!r}{did_you_mean(match, MATCH_MODES)}; one of {', '.join(MATCH_MODES)}", spec.vpos("match"))
                match = "exact"
        if "value" in spec and ("by" in spec or "default" in spec):
            self.issues.error("bad-value", f"param {name!r}: use either 'value' or 'by'/'default'", spec.kpos("value"))
            return None
        kinds: set[str] = set()
        default: Any = MISSING
        by: list[tuple[FieldSpec, dict[str, Any]]] = []
        if "value" in spec:
            got = self._param_value(spec["value"], spec.vpos("value"), f"param {name!r} value")
            if got:
                kinds.add(got[0])
                default = got[1]
        elif "by" not in spec and "default" not in spec:
            self.issues.error("missing-key", f"param {name!r} needs 'value', or 'by' (and optionally 'default')", kpos)
            return None
        if "default" in spec:
            got = self._param_value(spec["default"], spec.vpos("default"), f"param {name!r} default")
            if got:
                kinds.add(got[0])
                default = got[1]
        if "by" in spec:
            table = spec["by"]
            if not isinstance(table, LMap) or not table:
                self.issues.error("bad-value", f"param {name!r}: 'by' maps event fields (app, labels.workflow, …) to tables", spec.vpos("by"))
            else:
                for fname, entries in table.items():
                    fspec = event_field(fname)
                    if fspec is None or fspec.type != "str" or fspec.multi or fspec.sensitive:
                        hint = did_you_mean(fname, ["app", "agent", "tenant", "env", "labels.workflow", "tool.name", "model.provider"])
                        self.issues.error("unknown-field", f"param {name!r} cannot be keyed by {fname!r}{hint}: use a single-valued text field such as app or labels.workflow", table.kpos(fname))
                        continue
                    if not isinstance(entries, LMap):
                        self.issues.error("bad-value", f"param {name!r}: entries under {fname!r} map a value of {fname} to a list or a number", table.vpos(fname))
                        continue
                    values: dict[str, Any] = {}
                    for key, item in entries.items():
                        got = self._param_value(item, entries.vpos(key), f"param {name!r} entry {key!r}")
                        if got:
                            kinds.add(got[0])
                            values[key] = got[1]
                    by.append((fspec, MappingProxyType(values)))
        if len(kinds) > 1:
            self.issues.error("param-type", f"param {name!r} mixes lists and numbers", kpos)
            return None
        if len(self.issues.errors) > n_errors or not kinds:
            return None
        return Param(name, kinds.pop(), match, tuple(by), default, description, kpos)

    # -- rules --------------------------------------------------------------------------------------

    def _rules(self, value: Any, pos: Pos, compiler: Compiler) -> None:
        if not isinstance(value, LList):
            self.issues.error("bad-value", "'rules' is a list of rules", pos)
            return
        for i, item in enumerate(value):
            if not isinstance(item, LMap):
                self.issues.error("bad-value", "a rule is a mapping (id, title, status, level, …)", value.ipos(i))
                continue
            rule = self._rule(item, compiler)
            if rule is not None:
                self.rules.append(rule)

    def _rule(self, m: LMap, compiler: Compiler) -> Rule | None:
        issues = self.issues
        rule_id = m.get("id") if isinstance(m.get("id"), str) else None
        issues.rule_id = rule_id
        try:
            n_errors = len(issues.errors)
            what = f"rule {rule_id!r}" if rule_id else "a rule"
            _check_keys(m, RULE_REQUIRED + RULE_OPTIONAL, RULE_REQUIRED, issues, what)
            if "id" in m:
                if rule_id is None or not RULE_ID.match(rule_id):
                    issues.error("bad-id", f"rule id {m['id']!r} must be lower case words joined by '.', '-' or '_' (like tool.not_allowed)", m.vpos("id"))
                elif rule_id in self.rule_pos:
                    issues.error("duplicate-id", f"rule id {rule_id!r} is used twice (first in {self.rule_pos[rule_id]})", m.vpos("id"))
                else:
                    self.rule_pos[rule_id] = m.vpos("id")
            title = _str(m, "title", issues, what)
            description = _str(m, "description", issues, what) or ""
            status = _choice(m, "status", STATUSES, issues, what) if "status" in m else None
            if status == "deprecated":
                issues.warning("deprecated", f"rule {rule_id!r} is deprecated", m.vpos("status"))
            level = _choice(m, "level", LEVELS, issues, what) if "level" in m else None
            category = _choice(m, "category", CATEGORIES, issues, what) if "category" in m else None
            tags = self._tags(m, what) if "tags" in m else ()
            action = _str(m, "action", issues, what)
            runbook = _str(m, "runbook", issues, what)
            author = _str(m, "author", issues, what)
            references = tuple(t for t, _ in (_str_list(m, "references", issues, what) or [])) if "references" in m else ()
            message = self._template(m) if "message" in m else None
            mode = self._mode_setting(m["mode"], m.vpos("mode"), what) if "mode" in m else ModeSetting(None, MappingProxyType({}))
            score = self._score(m, what)
            condition = compiler.compile(m["match"], m.vpos("match")) if "match" in m else None
            exceptions = self._exceptions(m["exceptions"], m.vpos("exceptions"), compiler, rule_id, inline=True) if "exceptions" in m else []
            tests = self._tests(m["tests"], m.vpos("tests"), rule_id or "rule") if "tests" in m else []
            if len(issues.errors) > n_errors or condition is None:
                return None
            return Rule(
                id=rule_id, title=title, description=description, status=status, level=level, category=category,  # type: ignore[arg-type]
                tags=tags, condition=condition, action=action, message=message, mode=mode, score=score,  # type: ignore[arg-type]
                runbook=runbook, references=references, author=author, exceptions=tuple(exceptions),  # type: ignore[arg-type]
                tests=tuple(tests), pos=m.pos, digest=_digest(m),
            )
        finally:
            issues.rule_id = None

    def _tags(self, m: LMap, what: str) -> tuple[str, ...]:
        items = _str_list(m, "tags", self.issues, what)
        if items is None:
            return ()
        out = []
        for tag, pos in items:
            ns = tag.partition(":")[0]
            if not TAG.match(tag):
                self.issues.error("bad-tag", f"tag {tag!r} must look like namespace:value (atlas:AML.T0051.001, owasp-llm:LLM01)", pos)
            elif ns in KNOWN_TAGS and not KNOWN_TAGS[ns].match(tag):
                example = {"atlas": "atlas:AML.T0051.001", "owasp-llm": "owasp-llm:LLM01", "owasp-asi": "owasp-asi:ASI01"}[ns]
                self.issues.error("bad-tag", f"tag {tag!r} is not a valid {ns} id (like {example})", pos)
            else:
                out.append(tag)
        if not any(t.partition(":")[0] in KNOWN_TAGS for t in out) and len(out) == len(items):
            self.issues.warning("no-threat-tag", f"{what} has no atlas:, owasp-llm: or owasp-asi: tag", m.vpos("tags"))
        return tuple(dict.fromkeys(out))

    def _template(self, m: LMap) -> Template | None:
        text = _str(m, "message", self.issues, "rule message")
        if text is None:
            return None
        parts: list[str | FieldSpec] = []
        last = 0
        ok = True
        for found in PLACEHOLDER.finditer(text):
            parts.append(text[last:found.start()])
            last = found.end()
            name = found.group(1).strip()
            spec = event_field(name)
            if spec is None:
                self.issues.error("unknown-field", f"message placeholder {{{name}}} is not an event field{did_you_mean(name, list(EVENT_FIELDS))}", m.vpos("message"))
                ok = False
            elif spec.sensitive:
                self.issues.error("sensitive-field", f"message placeholder {{{name}}} would copy a sensitive value into the rationale", m.vpos("message"))
                ok = False
            else:
                parts.append(spec)
        parts.append(text[last:])
        return Template(tuple(p for p in parts if p != "")) if ok else None

    def _score(self, m: LMap, what: str) -> float | None:
        if "score" not in m:
            return None  # highest score of the findings used, else the level's score
        value = m["score"]
        if not is_number(value) or not 0.0 < value <= 1.0:
            self.issues.error("bad-value", f"{what} 'score' must be a number in (0, 1]", m.vpos("score"))
            return None
        return float(value)

    # -- exceptions ---------------------------------------------------------------------------------

    def _exceptions(self, value: Any, pos: Pos, compiler: Compiler, rule_id: str | None, *, inline: bool) -> list[RuleException]:
        if not isinstance(value, LList):
            self.issues.error("bad-value", "'exceptions' is a list of exceptions", pos)
            return []
        out = []
        for i, item in enumerate(value):
            exc = self._exception(item, value.ipos(i), compiler, rule_id, inline)
            if exc is not None:
                out.append(exc)
        return out

    def _exception(self, m: Any, pos: Pos, compiler: Compiler, rule_id: str | None, inline: bool) -> RuleException | None:
        issues = self.issues
        if not isinstance(m, LMap):
            issues.error("bad-value", "an exception is a mapping (id, owner, reason, expires_at, match)", pos)
            return None
        n_errors = len(issues.errors)
        exc_id = m.get("id") if isinstance(m.get("id"), str) else None
        what = f"exception {exc_id!r}" if exc_id else "an exception"
        required = ("id", "owner", "expires_at", "match") + (() if inline else ("rules",))
        allowed = tuple(k for k in EXCEPTION_KEYS if inline is False or k != "rules")
        _check_keys(m, allowed, required, issues, what)
        if inline and "rules" in m:
            pass  # reported as unknown key
        if "id" in m:
            if exc_id is None or not RULE_ID.match(exc_id):
                issues.error("bad-id", f"exception id {m['id']!r} must be lower case words joined by '.', '-' or '_'", m.vpos("id"))
            elif exc_id in self.exception_pos:
                issues.error("duplicate-id", f"exception id {exc_id!r} is used twice (first in {self.exception_pos[exc_id]})", m.vpos("id"))
            else:
                self.exception_pos[exc_id] = m.vpos("id")
        owner = _str(m, "owner", issues, what)
        reason = _str(m, "reason", issues, what)
        ticket = _str(m, "ticket", issues, what)
        if "reason" not in m and "ticket" not in m:
            issues.error("missing-key", f"{what} needs a 'reason' or a 'ticket' (why it exists)", m.pos)
        expires = _when(m, "expires_at", issues, what) if "expires_at" in m else None
        created = _when(m, "created_at", issues, what) if "created_at" in m else None
        if expires is not None:
            if expires <= self.now:
                issues.warning("expired-exception", f"{what} expired on {expires.isoformat()} and no longer applies; remove it", m.vpos("expires_at"))
            elif expires - self.now > timedelta(days=MAX_EXCEPTION_DAYS):
                issues.warning("long-exception", f"{what} runs for more than {MAX_EXCEPTION_DAYS} days; exceptions should be short-lived", m.vpos("expires_at"))
            if created is not None and created >= expires:
                issues.error("bad-time", f"{what} expires before it was created", m.vpos("expires_at"))
        condition = compiler.compile(m["match"], m.vpos("match")) if "match" in m else None
        rule_ids: tuple[str, ...] = (rule_id,) if inline and rule_id else ()
        if not inline and "rules" in m:
            refs = _str_list(m, "rules", issues, what) or []
            if not refs and isinstance(m["rules"], LList):
                issues.error("bad-value", f"{what} names no rule", m.vpos("rules"))
            self.rule_refs.extend((exc_id or "?", rid, rpos) for rid, rpos in refs)
            rule_ids = tuple(rid for rid, _ in refs)
        if len(issues.errors) > n_errors or condition is None:
            return None
        return RuleException(exc_id, owner, reason, ticket, expires, created, condition, rule_ids, m.pos)  # type: ignore[arg-type]

    def _pack_exceptions(self, value: Any, pos: Pos, compiler: Compiler) -> list[RuleException]:
        return self._exceptions(value, pos, compiler, None, inline=False)

    def _link(self, extra: list[RuleException]) -> list[Rule]:
        """Attach pack-level exceptions to their rules (unknown rule ids are errors)."""
        for exc_id, rid, pos in self.rule_refs:
            if rid not in self.rule_pos:
                self.issues.error("unknown-rule", f"exception {exc_id!r} names unknown rule {rid!r}{did_you_mean(rid, self.rule_pos)}", pos)
        by_rule: dict[str, list[RuleException]] = {}
        for exc in extra:
            for rid in exc.rule_ids:
                if rid in self.rule_pos:
                    by_rule.setdefault(rid, []).append(exc)
        return [replace(r, exceptions=r.exceptions + tuple(by_rule.get(r.id, ()))) if r.id in by_rule else r for r in self.rules]

    # -- embedded tests -----------------------------------------------------------------------------

    def _tests(self, value: Any, pos: Pos, rule_id: str) -> list[TestCase]:
        issues = self.issues
        if not isinstance(value, LMap):
            issues.error("bad-value", "'tests' is a mapping with 'positive' and 'negative' lists", pos)
            return []
        _check_keys(value, TESTS_KEYS, TESTS_KEYS, issues, "'tests'")
        out: list[TestCase] = []
        for key in TESTS_KEYS:
            cases = value.get(key)
            if key not in value:
                continue
            if not isinstance(cases, LList) or not cases:
                issues.error("missing-test", f"'tests.{key}' must list at least one case (every rule carries positive and negative tests)", value.vpos(key))
                continue
            for i, case in enumerate(cases):
                built = self._case(case, cases.ipos(i), rule_id, key == "positive", i + 1)
                if built is not None:
                    out.append(built)
        return out

    def _case(self, m: Any, pos: Pos, rule_id: str, positive: bool, n: int) -> TestCase | None:
        issues = self.issues
        kind = "positive" if positive else "negative"
        if not isinstance(m, LMap):
            issues.error("bad-value", f"a {kind} test case is a mapping with 'event' (and optionally name, findings, now, expect)", pos)
            return None
        _check_keys(m, CASE_KEYS, ("event",), issues, f"{kind} test {n}")
        n_errors = len(issues.errors)
        name = _str(m, "name", issues, "test case") or f"{kind} #{n}"
        now = _when(m, "now", issues, "test case") if "now" in m else None
        event = self._event(m["event"], m.vpos("event"), rule_id, kind, n) if "event" in m else None
        findings = self._stubs(m["findings"], m.vpos("findings")) if "findings" in m else ()
        expect: dict[str, Any] = {}
        if "expect" in m:
            e = m["expect"]
            if not positive:
                issues.error("bad-value", "'expect' belongs to positive cases (a negative case expects no finding)", m.kpos("expect"))
            elif not isinstance(e, LMap):
                issues.error("bad-value", "'expect' maps suppressed_by / mode to expected values", m.vpos("expect"))
            else:
                _check_keys(e, EXPECT_KEYS, (), issues, "'expect'")
                if "suppressed_by" in e:
                    sb = e["suppressed_by"]
                    if sb is not None and not isinstance(sb, str):
                        issues.error("bad-value", "'suppressed_by' is an exception id or null", e.vpos("suppressed_by"))
                    expect["suppressed_by"] = sb
                if "mode" in e:
                    mode = self._mode(e["mode"], e.vpos("mode"), "expect")
                    if mode:
                        expect["mode"] = mode
        if len(issues.errors) > n_errors or event is None:
            return None
        return TestCase(rule_id, name, positive, event, findings, now, MappingProxyType(expect), m.pos)

    def _event(self, value: Any, pos: Pos, rule_id: str, kind: str, n: int) -> Event | None:
        if not isinstance(value, LMap):
            self.issues.error("bad-value", "a test 'event' is a mapping of Event v1 fields (kind, app, …)", pos)
            return None
        data = plain(value)
        data.setdefault("schema", "aiwatch.event/1")
        data.setdefault("event_id", f"test:{rule_id}:{kind}:{n}")
        data.setdefault("ts", TEST_TS)
        try:
            return Event.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors()[:10]:
                loc = err.get("loc", ())
                where = _locate(value, loc) or pos
                path = ".".join(str(p) for p in loc) or "event"
                self.issues.error("bad-test-event", f"test event is not a valid Event v1: {path}: {err.get('msg')}", where)
            return None

    def _stubs(self, value: Any, pos: Pos) -> tuple[FindingView, ...]:
        issues = self.issues
        if not isinstance(value, LList):
            issues.error("bad-value", "'findings' is a list of finding stubs such as {category: secret_leak, placement: output}", pos)
            return ()
        out = []
        for i, stub in enumerate(value):
            spos = value.ipos(i)
            if not isinstance(stub, LMap):
                issues.error("bad-value", "a finding stub is a mapping of finding fields", spos)
                continue
            n_errors = len(issues.errors)
            _check_keys(stub, tuple(STUB_KEYS), (), issues, "a finding stub")
            data: dict[str, Any] = {}
            for key in stub:
                if key not in STUB_KEYS:
                    continue
                v = stub[key]
                spec = FINDING_FIELDS.get(key)
                if key == "tags":
                    data["tags"] = tuple(t for t, _ in (_str_list(stub, "tags", issues, "finding stub") or []))
                elif key == "score":
                    if not is_number(v) or not 0.0 <= v <= 1.0:
                        issues.error("bad-value", "a finding stub's score is a number in [0, 1]", stub.vpos(key))
                    else:
                        data["score"] = float(v)
                else:
                    text = _str(stub, key, issues, "finding stub")
                    if text is None:
                        continue
                    if spec is not None and spec.choices and text not in spec.choices:
                        issues.error("bad-value", f"finding {key} {text!r}{did_you_mean(text, spec.choices)} is not one of {', '.join(spec.choices)}", stub.vpos(key))
                        continue
                    data[key] = text
            if len(issues.errors) == n_errors:
                out.append(FindingView(**data))
        return tuple(out)


def _locate(value: Any, loc: tuple) -> Pos | None:
    """The position of a pydantic error location inside a located test event."""
    node, pos = value, None
    for part in loc:
        if isinstance(node, LMap) and isinstance(part, str):
            key = "schema" if part == "schema_" else part
            if key not in node:
                return pos or node.pos
            pos, node = node.vpos(key), node[key]
        elif isinstance(node, LList) and isinstance(part, int) and part < len(node):
            pos, node = node.ipos(part), node[part]
        else:
            break
    return pos


# -- public functions -------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(timezone.utc)


def lint(paths: Iterable[str | Path], *, now: datetime | None = None) -> list[Issue]:
    """Every problem of the rule files (errors and warnings), sorted by file, line and column."""
    loader = _Loader(_now(now))
    loader.load(list(paths))
    return loader.issues.sorted()


def load_pack(paths: Iterable[str | Path], *, now: datetime | None = None) -> RulePack:
    """The rule pack of ``paths`` (files or directories); raises ``RuleLoadError`` listing every error."""
    loader = _Loader(_now(now))
    pack = loader.load(list(paths))
    if pack is None:
        raise RuleLoadError(loader.issues.sorted())
    return pack
