"""The ``@monitor.tool`` decorator: record each call of a tool function and what came of it.

Why a decorator: tool calls are where an agent acts on the world, and the arguments it chose are
the evidence an analyst needs. The wrapper records a ``tool_call`` (bound arguments, without
``self``/``cls``) before running the function and a ``tool_result`` after it — the result as text,
or ``status="error"`` with the exception — then returns the result or re-raises the host's own
exception unchanged (same object, same traceback). Recording never raises: it is the SDK's
public methods that are called, and they swallow and count their own errors.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

_SKIP = ("self", "cls")


class Recorder(Protocol):
    def tool_call(self, name: str, arguments: Any = None, *, call_id: str | None = None) -> str | None: ...

    def tool_result(self, name: str, call_id: str | None, text: Any = None, *, status: str = "ok",
                    error: str | None = None, latency_ms: float | None = None) -> str | None: ...


def decorate(recorder: Recorder, fn: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
    """Wrap a sync or async function so its calls are recorded; anything else passes through."""
    tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        return recorder.tool_call(tool_name, capture_arguments(signature, args, kwargs))

    def finish(call_id: str | None, started: float, result: Any = None, error: BaseException | None = None) -> None:
        latency_ms = (time.perf_counter() - started) * 1000.0
        if error is None:
            recorder.tool_result(tool_name, call_id, result_text(result), latency_ms=latency_ms)
        else:
            recorder.tool_result(tool_name, call_id, None, status="error", error=describe_error(error),
                                 latency_ms=latency_ms)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            call_id = start(args, kwargs)
            started = time.perf_counter()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                finish(call_id, started, error=exc)
                raise
            finish(call_id, started, result)
            return result

        return async_tool

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        call_id = start(args, kwargs)
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            finish(call_id, started, error=exc)
            raise
        finish(call_id, started, result)
        return result

    return tool


def capture_arguments(signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments by parameter name (a snapshot of the top level; values are serialized later)."""
    if signature is not None:
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError:
            pass
        else:
            return {k: v for k, v in bound.arguments.items() if k not in _SKIP}
    out: dict[str, Any] = dict(kwargs)
    if args:
        out["args"] = list(args)
    return out


def result_text(result: Any) -> str:
    """A tool result as the text an analyst (and a detector) reads: str as is, JSON for data."""
    if isinstance(result, str):
        return result
    if isinstance(result, (bytes, bytearray)):
        return bytes(result).decode("utf-8", "replace")
    if result is None:
        return ""
    try:
        return orjson.dumps(result, default=str, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
    except Exception:  # noqa: BLE001 - anything unserializable is shown as text
        try:
            return str(result)
        except Exception:  # noqa: BLE001
            return f"<unprintable {type(result).__name__}>"


def describe_error(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
