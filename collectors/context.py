"""Who is acting: the session context that the SDK stamps on every event.

A ``contextvars.ContextVar`` holds the current :class:`Session`, so concurrent requests never see
each other's identity: each thread has its own context and each asyncio task a copy of its
creator's. New threads start *without* a session (Python does not copy contexts into threads or
executor jobs); :func:`propagate` carries the caller's session into a function run elsewhere.

The fields merged into each event are computed once when the session opens, so the hot path
only does a ``dict.update``.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from schemas import limits

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Session:
    """One conversation or agent run. Unset fields of a nested session inherit from the outer one."""

    session_id: str
    user_id: str | None = None
    roles: tuple[str, ...] = ()
    agent: str | None = None
    on_behalf_of: str | None = None
    service_account: str | None = None
    tenant: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)


_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar("aiwatch_session", default=None)


def current() -> Session | None:
    """The session in force in this thread / task, if any."""
    return _current.get()


def open_session(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    roles: Iterable[str] | None = None,
    agent: str | None = None,
    on_behalf_of: str | None = None,
    service_account: str | None = None,
    tenant: str | None = None,
    labels: Mapping[str, Any] | None = None,
) -> Session:
    """A session derived from the current one: given values override, missing ones are inherited."""
    parent = _current.get()
    if parent is not None:
        session_id = session_id or parent.session_id
        user_id = user_id if user_id is not None else parent.user_id
        roles = roles if roles is not None else parent.roles
        agent = agent if agent is not None else parent.agent
        on_behalf_of = on_behalf_of if on_behalf_of is not None else parent.on_behalf_of
        service_account = service_account if service_account is not None else parent.service_account
        tenant = tenant if tenant is not None else parent.tenant
        labels = {**parent.labels, **(labels or {})}
    role_list = [roles] if isinstance(roles, str) else list(roles or ())
    session = Session(
        session_id=str(session_id or os.urandom(16).hex())[: limits.MAX_ID_CHARS],
        user_id=_str(user_id),
        roles=tuple(str(r) for r in role_list[: limits.MAX_ROLES]),
        agent=_str(agent),
        on_behalf_of=_str(on_behalf_of),
        service_account=_str(service_account),
        tenant=_str(tenant),
        labels=MappingProxyType({str(k): str(v) for k, v in (labels or {}).items() if v is not None}),
    )
    object.__setattr__(session, "fields", MappingProxyType(_event_fields(session)))
    return session


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _event_fields(s: Session) -> dict[str, Any]:
    out: dict[str, Any] = {"session_id": s.session_id}
    if s.agent is not None:
        out["agent"] = s.agent
    if s.tenant is not None:
        out["tenant"] = s.tenant
    actor = {k: v for k, v in (("user_id", s.user_id), ("on_behalf_of", s.on_behalf_of),
                               ("service_account", s.service_account)) if v is not None}
    if s.roles:
        actor["roles"] = list(s.roles)
    if actor:
        out["actor"] = actor
    return out


class SessionScope:
    """``with`` / ``async with`` block in which a session is current; restores the outer one on exit."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._tokens: list[contextvars.Token[Session | None]] = []

    def __enter__(self) -> Session:
        self._tokens.append(_current.set(self.session))
        return self.session

    def __exit__(self, *exc: object) -> None:
        if self._tokens:
            token = self._tokens.pop()
            try:
                _current.reset(token)
            except ValueError:  # exited in another context (e.g. a generator moved across tasks)
                _current.set(token.old_value if token.old_value is not contextvars.Token.MISSING else None)

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


def propagate(fn: F) -> F:
    """Bind ``fn`` to the caller's current session, for running it in another thread or executor."""
    session = _current.get()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _current.set(session)
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return run  # type: ignore[return-value]
