"""Dangerous commands in tool-call arguments (category ``unsafe_code_execution``).

Only arguments the agent is about to execute are scanned (placement ``tool_args``): the same text in a
tutorial the user reads is not an action. Four families: remote code piped into an interpreter,
destructive filesystem/disk commands, reverse shells, and destructive SQL DDL.
"""

from __future__ import annotations

from detectors.spec import Detector, Pattern
from schemas.finding import Category, Severity

TAGS = ("owasp-asi:ASI05", "owasp-llm:LLM06", "atlas:AML.T0053")
PLACEMENTS = {"tool_args": 1.0}


def _code(id: str, title: str, description: str, patterns: tuple[Pattern, ...], tags: tuple[str, ...] = (), **kw) -> Detector:
    return Detector(
        id=id, category=Category.unsafe_code_execution, title=title, description=description,
        patterns=patterns, tags=TAGS + tags, placements=PLACEMENTS, sensitive=False, mask=None,
        combine="max", **kw,
    )


def _c(name: str, regex: str, score: float, caseless: bool = False) -> Pattern:
    """Command patterns have long gaps: compiled without start-of-match (see ``Pattern.som``)."""
    return Pattern(name, regex, score, caseless=caseless, som=False)


SHELLS = r"(?:sudo\s+(?:-\S+\s+)*)?(?:(?:/usr)?(?:/local)?/bin/)?(?:(?:ba|z|k|c|da|fi|tc)?sh|python[0-9.]*|perl|ruby|node|php|pwsh|powershell|iex|invoke-expression)"

PIPE_TO_INTERPRETER = _code(
    "code.pipe_to_interpreter", "Remote code piped into an interpreter",
    "curl/wget output fed straight to a shell or interpreter (curl ... | sh, bash <(curl ...), iex(iwr ...)).",
    (
        _c("pipe", rf"\b(?:curl|wget|fetch|iwr|invoke-webrequest|irm|invoke-restmethod)\b[^\n|;]*\|\s*(?:{SHELLS})\b", 0.9, caseless=True),
        _c("process_substitution", r"\b(?:ba|z)?sh\s+<\(\s*(?:curl|wget)\b", 0.9, caseless=True),
        _c("command_substitution", r"\b(?:ba|z)?sh\s+-c\s+[\"']?\$\(\s*(?:curl|wget)\b", 0.9, caseless=True),
        _c("iex_download", r"\b(?:iex|invoke-expression)\b[^\n]*\b(?:downloadstring|iwr|invoke-webrequest|irm)\b", 0.85, caseless=True),
    ),
    severity=Severity.high,
)

DESTRUCTIVE_COMMAND = _code(
    "code.destructive_command", "Destructive filesystem or disk command",
    "rm -rf on / ~ * or system paths, mkfs, dd or redirection onto block devices, fork bombs, "
    "recursive chmod 777 on /, Windows format/del /s.",
    (
        _c("rm_rf_root",
                r"\brm\s+(?:-[a-zA-Z]*\s+)*-(?:[a-zA-Z]*[rR][a-zA-Z]*[fF]|[a-zA-Z]*[fF][a-zA-Z]*[rR])[a-zA-Z]*\s+(?:-\S+\s+)*(?:--no-preserve-root\s+)?[\"']?(?:/|/\*|~/?|\*|\$HOME/?|\.\./?|/(?:etc|usr|var|home|boot|bin|lib|opt|root|srv)/?)[\"']?(?:\s|$|;|&|\|)",
                0.95),
        _c("rm_recursive_root", r"\brm\s+(?:-\S+\s+)*--recursive\s+(?:-\S+\s+)*/(?:\s|$|\*)", 0.9),
        _c("mkfs", r"\bmkfs(?:\.\w+)?\s+(?:-\S+\s+)*/dev/", 0.95),
        _c("dd_device", r"\bdd\b[^\n]*\bof=/dev/(?:sd|hd|nvme|xvd|vd|mmcblk|disk|mapper)", 0.95),
        _c("redirect_device", r">\s*/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|mmcblk\d)", 0.9),
        _c("fork_bomb", r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:", 0.95),
        _c("chmod_root", r"\bchmod\s+-R\s+0?777\s+/(?:\s|$)", 0.85),
        _c("shred_device", r"\b(?:shred|wipefs)\b[^\n]*/dev/", 0.9),
        _c("windows_wipe", r"\b(?:format\s+[a-z]:|del\s+/[sfq]\s+(?:/[sfq]\s+)*[a-z]:\\|rd\s+/s\s+/q\s+[a-z]:\\|remove-item\s+[^\n]*-recurse[^\n]*[a-z]:\\)", 0.85, caseless=True),
    ),
    tags=("atlas:AML.T0101",),
    severity=Severity.critical,
)

REVERSE_SHELL = _code(
    "code.reverse_shell", "Reverse shell",
    "Interactive shells connected back to a remote host: /dev/tcp, nc -e, socat exec, scripted sockets.",
    (
        _c("dev_tcp", r"/dev/(?:tcp|udp)/[\w.-]+/\d+", 0.9),
        _c("netcat_exec", r"\b(?:nc|ncat|netcat)\b[^\n]*\s-(?:e|c)\s+\S*(?:sh|cmd(?:\.exe)?|powershell)\b", 0.95),
        _c("mkfifo_nc", r"\bmkfifo\b[^\n]*\|\s*(?:nc|ncat|netcat)\b", 0.9),
        _c("socat_exec", r"\bsocat\b[^\n]*\bexec:[^\n]*(?:sh|pty)", 0.9, caseless=True),
        _c("scripted_socket", r"\b(?:python[0-9.]*|perl|ruby|php)\s+-(?:c|e|r)\b[^\n]*\bsocket\b[^\n]*\b(?:subprocess|exec|dup2|fsockopen|spawn|pty)\b", 0.9),
        _c("powershell_tcp", r"net\.sockets\.tcpclient", 0.85, caseless=True),
    ),
    severity=Severity.critical,
)

SQL_DDL = _code(
    "code.sql_ddl", "Destructive SQL",
    "DROP/TRUNCATE/ALTER statements and unbounded DELETE in database tool arguments.",
    (
        _c("drop", r"\bdrop\s+(?:table|database|schema|view|index|user|role|collection)\b", 0.85, caseless=True),
        _c("truncate", r"\btruncate\s+(?:table\s+)?[\w.\"`\[]", 0.85, caseless=True),
        _c("alter", r"\balter\s+(?:table|database|user|role|schema)\b", 0.6, caseless=True),
        _c("delete_all", r"\bdelete\s+from\s+[\w.\"`\[\]]+\s*(?:;|$)", 0.75, caseless=True),
        _c("grant_all", r"\bgrant\s+all\b", 0.6, caseless=True),
    ),
    tags=("atlas:AML.T0101",),
    severity=Severity.high,
)

DETECTORS = (PIPE_TO_INTERPRETER, DESTRUCTIVE_COMMAND, REVERSE_SHELL, SQL_DDL)
