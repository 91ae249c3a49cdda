"""What a tool call does, and what the user asked for — both as action classes.

    >>> classify_tool("send_money")
    'pay'
    >>> classify_tool("GmailSendEmail")
    'send'
    >>> classify_tool("read_channel_messages")
    'read'
    >>> sorted(intents("Can you please pay the bill 'bill-december-2023.txt' for me?"))
    ['pay']

Classes: ``read`` (no effect outside the agent), ``fetch`` (an outbound request to a destination:
browse, download), ``send``, ``pay``, ``share`` (grant access, invite, publish), ``write`` (create,
update, move), ``delete``, ``execute`` (run code or commands), ``handoff`` (to a human), ``unknown``.
Everything but ``read``, ``handoff`` and ``unknown`` is *consequential*: an enforcing control would gate it.

A tool is classified from the words of its name (``snake_case`` and ``CamelCase`` split), the first
verb deciding and a few object words refining (``send`` + ``money`` is a payment). Operators override
any tool explicitly (``SessionConfig.tool_classes``). The user's intent is read from user messages with
a lexicon of plain English action verbs: it is what the *user* wrote, never what untrusted content says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

CONSEQUENTIAL = frozenset({"fetch", "send", "pay", "share", "write", "delete", "execute"})
OUTBOUND = frozenset({"fetch", "send", "pay", "share"})  # the action moves data or value to a destination
CLASSES = ("read", "fetch", "send", "pay", "share", "write", "delete", "execute", "handoff", "unknown")

# Verbs of tool names (first one found decides).
_TOOL_VERBS: dict[str, str] = {}
for _cls, _words in {
    "read": "get list search read view find check retrieve query lookup show describe calculate count "
            "think load summarize summarise fetch_info inspect analyze analyse compare estimate lookup_policy "
            "verify_info detect scan watch monitor",
    "fetch": "browse visit download crawl scrape open_url http curl wget navigate",
    "send": "send email mail message post reply respond forward tweet notify sms text dm comment submit "
            "publish broadcast upload input fill autofill dispatch call contact announce",
    "pay": "pay transfer withdraw deposit purchase buy checkout refund trade sell donate tip wire order "
           "withdrawal payment invest",
    "share": "share grant invite unlock permit allow whitelist allowlist expose",
    "write": "create update set add write edit modify save move rename copy change manage schedule "
             "reschedule book reserve append insert put patch reset enable disable assign upgrade "
             "downgrade register verify give go generate apply install_app mark archive approve "
             "confirm lock start stop restart toggle adjust alter alteration reallocate allocate",
    "delete": "delete remove erase destroy drop purge wipe revoke cancel uninstall unlink clear leave "
              "unsubscribe trash deletion",
    "execute": "execute exec run shell terminal bash eval command script deploy spawn sql python code "
               "install",
}.items():
    for _w in _words.split():
        _TOOL_VERBS[_w] = _cls
_PAY_OBJECTS = frozenset({"money", "funds", "fund", "payment", "payments", "transaction", "transactions",
                          "bill", "invoice", "crypto", "bitcoin", "order", "cart"})
_SHARE_OBJECTS = frozenset({"ownership", "access", "permission", "permissions", "password", "credentials",
                            "sharing"})
_HANDOFF_OBJECTS = frozenset({"human", "humans", "operator", "support", "agent", "agents", "escalate"})
_WEB_OBJECTS = frozenset({"webpage", "website", "url", "link", "page", "web", "site"})
_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def tool_words(name: str) -> list[str]:
    """``GmailSendEmail`` → ['gmail', 'send', 'email']; ``send_money`` → ['send', 'money']."""
    out: list[str] = []
    for part in _SPLIT.split(name):
        if part:
            out.extend(w.lower() for w in _CAMEL.findall(part))
    return out


def classify_tool(name: str | None, overrides: Mapping[str, str] | None = None) -> str:
    """Action class of a tool from its name (see the module docstring)."""
    if not name:
        return "unknown"
    if overrides and name in overrides:
        return overrides[name]
    cls = _NAME_CACHE.get(name)
    if cls is None:
        cls = _classify_words(tuple(tool_words(name)))
        if len(_NAME_CACHE) < 8192:  # a bounded memo of a pure function (tool names repeat)
            _NAME_CACHE[name] = cls
    return cls


def tool_classes(name: str | None, overrides: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every class a tool's words suggest (``send_money`` → {send, pay}); the user asking for any of
    them is asking for the tool."""
    if not name:
        return frozenset()
    main = classify_tool(name, overrides)
    if main == "handoff":
        return frozenset({main})
    words = tool_words(name)
    found = {main}
    for w in words:
        cls = _TOOL_VERBS.get(w)
        if cls is not None and cls != "read":
            found.add(cls)
    if _PAY_OBJECTS.intersection(words):
        found.add("pay")
    return frozenset(found)


_CLASSIFY_CACHE: dict[tuple[str, ...], str] = {}
_NAME_CACHE: dict[str, str] = {}


def _classify_words(words: tuple[str, ...]) -> str:
    cached = _CLASSIFY_CACHE.get(words)
    if cached is not None:
        return cached
    cls = "unknown"
    for w in words:
        found = _TOOL_VERBS.get(w)
        if found is not None:
            cls = found
            break
    wset = set(words)
    if cls in ("send", "write", "pay") and "transfer" in wset and _HANDOFF_OBJECTS & wset:
        cls = "handoff"
    elif "transfer" in wset and _HANDOFF_OBJECTS & wset:
        cls = "handoff"
    elif cls == "pay" and "transfer" in wset and _SHARE_OBJECTS & wset:
        cls = "share"
    elif cls in ("send", "write", "unknown") and _PAY_OBJECTS & wset and cls != "unknown":
        cls = "pay"
    elif cls == "read" and wset & {"webpage", "website", "url"}:
        cls = "fetch"
    elif cls in ("write", "send") and _SHARE_OBJECTS & wset and not wset & {"reset", "update", "change"}:
        cls = "share"
    if len(_CLASSIFY_CACHE) < 4096:
        _CLASSIFY_CACHE[words] = cls
    return cls


# ---------------------------------------------------------------------------------------------------
# User intent: plain English verbs (and a few nouns) of what the user asks the agent to do.

_INTENT_WORDS: dict[str, frozenset[str]] = {}
for _cls, _words in {
    "pay": "pay paying payment payments transfer refund buy purchase checkout withdraw deposit donate wire "
           "sell trade invest reimburse reimbursement compensate compensation",
    "send": "send email mail message dm reply respond answer forward post tweet notify text contact invite "
            "share comment submit publish announce fill write",
    "share": "share grant invite unlock publish permission permissions accept",
    "write": "create add update change modify edit set schedule reschedule book reserve make save move "
             "rename adjust fix organize organise register upgrade downgrade append arrange rearrange "
             "setup configure apply archive rebook switch replace upload install enable disable lock "
             "generate draft prepare record complete place put insert write accept",
    "delete": "delete remove erase cancel clear unsubscribe revoke leave drop trash purge wipe",
    "execute": "run execute install deploy launch compile",
    "fetch": "visit open browse navigate download website websites webpage webpages link links url urls "
             "site sites article articles blog",
}.items():
    for _w in _words.split():
        _INTENT_WORDS[_w] = _INTENT_WORDS.get(_w, frozenset()) | {_cls}
# Words that are nouns as often as verbs ("read the controversial tweet", "my schedule"): they ask for an
# action only where a verb stands — at the start of a clause or after "please", "to", "can you", ….
_AMBIGUOUS = frozenset(
    "email mail message text comment reply book order transfer record payment payments deposit trade drop "
    "run lock set link links post share fill tweet contact schedule update change plan test permission "
    "permissions draft record invite forward".split())
_VERB_CONTEXT = frozenset(
    ", please pls plz and then to you i we also now just kindly can could would will should must let's lets "
    "me us or but so first finally yes ok okay sure".split()) | {""}
# The user hands the decision to content: "follow the instructions in…", "do the tasks on my TODO list".
# Found from the object ("instructions", "tasks", …) back to a delegating verb at most ~60 characters before.
_DELEGATE_OBJECT = re.compile(
    r"\b(?:instructions?|actions?|tasks?|to-?dos?|requests?|steps|what (?:it|they|he|she) (?:says?|asks?|wants?))\b")
_DELEGATE_VERB = re.compile(
    r"\b(?:follow|do|complete|perform|carry out|execute|handle|fulfil+|take care of|action|process|work through|"
    r"go through)\b")
_DELEGATE_PHRASES = ("accordingly", "as instructed", "as described", "as requested")
_DELEGATE_VERBS = frozenset("follow do complete perform carry execute handle fulfil fulfill take action process work "
                            "go".split())
_DELEGATE_HINTS = ("instruction", "action", "task", "todo", "to-do", "request", "step", "what it", "what they",
                   "what he", "what she")
DELEGATED = "delegated"
ACTION_INTENTS = frozenset({"send", "pay", "share", "write", "delete", "execute"})
_LEXICON = frozenset(_INTENT_WORDS)
_TOKEN = re.compile(r"[a-z][a-z'-]*|[.!?;:,\n(]")
_PUNCT = frozenset(".!?;:,\n(")
_CONTEXT_OR_PUNCT = _VERB_CONTEXT | _PUNCT
_AFFIRM = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|ok(?:ay)?|confirm(?:ed)?|correct|go ahead|please do|please proceed|"
    r"proceed|do it|that'?s (?:right|correct|fine)|sounds good|i (?:do|agree|confirm)|absolutely|"
    r"definitely|of course|alright|fine)\b", re.IGNORECASE)


def intents(text: str | None) -> frozenset[str]:
    """Action classes a user message asks for (empty for questions that only ask to read), plus
    ``"delegated"`` when the user hands the decision to content ("follow the instructions in the file").

    Only base forms count: "the article Bob posted" describes, it does not ask."""
    if not text:
        return frozenset()
    head = text[:8192]
    low = head.lower()
    tokens = _TOKEN.findall(low)
    found: set[str] = set()
    hits = _LEXICON.intersection(tokens)
    ambiguous = hits & _AMBIGUOUS
    for w in hits - ambiguous:
        found |= _INTENT_WORDS[w]
    for w in ambiguous:  # an occurrence where a verb stands: first token, after punctuation or a context word
        i = -1
        try:
            while True:
                i = tokens.index(w, i + 1)
                if i == 0 or tokens[i - 1] in _CONTEXT_OR_PUNCT:
                    found |= _INTENT_WORDS[w]
                    break
        except ValueError:
            pass
    if "://" in low or "www." in low:
        found.add("fetch")
    if _delegates(low, tokens):
        found.add(DELEGATED)
    return frozenset(found)


def _delegates(low: str, tokens: list[str]) -> bool:
    if any(p in low for p in _DELEGATE_PHRASES):
        return True
    if _DELEGATE_VERBS.isdisjoint(tokens) or not any(w in low for w in _DELEGATE_HINTS):
        return False
    for m in _DELEGATE_OBJECT.finditer(low):
        if _DELEGATE_VERB.search(low, max(0, m.start() - 60), m.start()):
            return True
    return False


def asks_for_action(asked: frozenset[str] | set[str]) -> bool:
    """Did the user ask for (or delegate) any consequential action beyond reading and browsing?"""
    return DELEGATED in asked or not ACTION_INTENTS.isdisjoint(asked)


def affirms(text: str | None) -> bool:
    """A user message that confirms what the assistant proposed ("yes", "go ahead", …)."""
    return bool(text) and _AFFIRM.match(text[:200]) is not None  # type: ignore[arg-type]


def requested(classes: Iterable[str], asked: frozenset[str] | set[str]) -> bool:
    """Did the user ask for one of ``classes`` (or delegate the decision to content)?"""
    return DELEGATED in asked or any(c in asked for c in classes)
