"""Rule files → plain Python values that remember where in the file they came from.

PyYAML's composer gives nodes with ``start_mark`` (line, column); we walk the node tree ourselves
instead of letting PyYAML construct dicts, so every mapping key and value keeps its position, duplicate
keys are refused (PyYAML would silently keep the last one), and alias bombs and deep nesting are
bounded. Mappings become :class:`LMap`, sequences :class:`LList`, scalars plain values; each container
records the position of its items and, for scalars, their raw text (``no`` stays available as the
string ``"no"`` where a rule expects a name, although YAML 1.1 reads it as ``False``).

This is the only module of the rules engine that does I/O (``read_file``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from detectors.rules.issues import Issues, Pos

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000  # after alias expansion: a few aliases must not expand into millions of values
MAX_DEPTH = 64
SUFFIXES = (".yml", ".yaml")


class LMap(dict):
    """A mapping with positions: ``pos`` of the mapping, ``key_pos``/``val_pos``/``raw`` per key."""

    pos: Pos
    key_pos: dict[str, Pos]
    val_pos: dict[str, Pos]
    raw: dict[str, str]  # raw text of plain scalar values

    def kpos(self, key: str) -> Pos:
        return self.key_pos.get(key, self.pos)

    def vpos(self, key: str) -> Pos:
        return self.val_pos.get(key, self.kpos(key))


class LList(list):
    """A sequence with positions: ``pos`` of the sequence, ``item_pos``/``raw`` per index."""

    pos: Pos
    item_pos: list[Pos]
    raw: dict[int, str]

    def ipos(self, index: int) -> Pos:
        return self.item_pos[index] if index < len(self.item_pos) else self.pos


def _pos(file: str, node: Node) -> Pos:
    mark = node.start_mark
    return Pos(file, mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, file: str, loader: yaml.SafeLoader, issues: Issues) -> None:
        self.file = file
        self.loader = loader
        self.issues = issues
        self.nodes = 0
        self.too_big = False

    def build(self, node: Node, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if not self.too_big:
                self.issues.error("too-large", f"more than {MAX_NODES} YAML values (alias expansion?)", _pos(self.file, node))
                self.too_big = True
            return None
        if depth > MAX_DEPTH:
            self.issues.error("too-deep", f"nested deeper than {MAX_DEPTH} levels", _pos(self.file, node))
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, depth)
        if isinstance(node, SequenceNode):
            out = LList()
            out.pos, out.item_pos, out.raw = _pos(self.file, node), [], {}
            for i, item in enumerate(node.value):
                out.append(self.build(item, depth + 1))
                out.item_pos.append(_pos(self.file, item))
                if isinstance(item, ScalarNode) and item.style is None:
                    out.raw[i] = item.value
            return out
        return self._scalar(node)

    def _scalar(self, node: Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.issues.error("yaml", f"bad YAML value: {getattr(exc, 'problem', None) or exc}", _pos(self.file, node))
            return None

    def _mapping(self, node: MappingNode, depth: int) -> LMap:
        out = LMap()
        out.pos, out.key_pos, out.val_pos, out.raw = _pos(self.file, node), {}, {}, {}
        try:
            self.loader.flatten_mapping(node)  # YAML merge keys ("<<: *defaults")
        except yaml.YAMLError as exc:
            self.issues.error("yaml", f"bad merge key: {getattr(exc, 'problem', None) or exc}", _pos(self.file, node))
        for key_node, value_node in node.value:
            kpos = _pos(self.file, key_node)
            if not isinstance(key_node, ScalarNode):
                self.issues.error("bad-key", "mapping keys must be plain names", kpos)
                continue
            key = key_node.value  # raw text: "on", "no", "1.0" stay the names they look like
            if key in out:
                self.issues.error("duplicate-key", f"duplicate key {key!r} (first at line {out.key_pos[key].line})", kpos)
                continue
            out[key] = self.build(value_node, depth + 1)
            out.key_pos[key] = kpos
            out.val_pos[key] = _pos(self.file, value_node)
            if isinstance(value_node, ScalarNode) and value_node.style is None:
                out.raw[key] = value_node.value
        return out


def parse_text(text: str, file: str, issues: Issues) -> Any:
    """One YAML document → located values (``None`` with an issue recorded when it cannot be read)."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            pos = Pos(file, mark.line + 1, mark.column + 1) if mark is not None else Pos(file, 1, 1)
            context = ""
            if exc.context and exc.context_mark is not None and exc.problem_mark is not None and exc.context_mark.line != exc.problem_mark.line:
                context = f" ({exc.context} at line {exc.context_mark.line + 1})"
            issues.error("yaml", f"YAML syntax error: {exc.problem or exc}{context}", pos)
            return None
        except yaml.YAMLError as exc:
            issues.error("yaml", f"YAML error: {exc}", Pos(file, 1, 1))
            return None
        if node is None:
            return None
        return _Builder(file, loader, issues).build(node)
    finally:
        loader.dispose()


def read_file(path: Path, display: str, issues: Issues) -> tuple[bytes, Any] | None:
    """Bytes and located document of one rule file, or ``None`` (issue recorded)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            issues.error("too-large", f"rule file is {size} bytes, more than {MAX_FILE_BYTES}", Pos(display, 1, 1))
            return None
        data = path.read_bytes()
    except OSError as exc:
        issues.error("unreadable", f"cannot read rule file: {exc.strerror or exc}", Pos(display, 1, 1))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.error("encoding", f"rule file is not UTF-8 (byte {exc.start})", Pos(display, 1, 1))
        return None
    return data, parse_text(text, display, issues)


def collect_files(paths: list[str | Path], issues: Issues) -> list[tuple[Path, str]]:
    """Rule files named by ``paths`` (files, or directories searched recursively for *.yml / *.yaml).

    Returns (path, display name) pairs, each file once, in a stable order.
    """
    out: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
            if not found:
                issues.error("no-files", f"no rule files (*.yml, *.yaml) under {given}", None)
            files = found
        elif p.is_file():
            files = [p]
        else:
            issues.error("no-files", f"no such rule file or directory: {given}", None)
            files = []
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append((f, str(f)))
    return out


def plain(value: Any) -> Any:
    """Located values → plain JSON-able values (for digests and for building events from test cases)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
