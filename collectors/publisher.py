"""Background delivery of SDK events to Kafka: the application thread only appends to a deque.

Why this shape: the SDK must add microseconds, never block, and never lose events silently.
``offer()`` is the whole application-side cost (a length check, an append, rarely a wake-up).
A daemon thread runs an asyncio loop that owns everything else:

- the *pump* takes items off the queue, encodes them (``encode``: item → key, value bytes) and
  stages them for the producer — or appends them to the local spool while the broker is away or
  a backlog is being replayed (so the order of events is kept);
- the *sender* sends staged records with an idempotent ``acks=all`` aiokafka producer, then
  replays spool segments oldest first, deleting each once all its records are acknowledged;
- the *watchdog* declares an outage when records are pending without any acknowledgement for
  ``Tuning.delivery_timeout`` (an idempotent producer retries forever by itself): un-acked
  records go to the front of the spool, the producer is discarded, and reconnects are tried
  with exponential backoff.

Delivery is at-least-once (an outage can resend records the broker had in fact stored); the
worker is idempotent on ``event_id``. Counters (``stats()``) account for every item.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from schemas.settings import Settings

from collectors.spool import Record, Spool

log = logging.getLogger("aiwatch.sdk")

_WARN_EVERY = 60.0
Encoder = Callable[[Any], tuple[bytes | None, bytes]]


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes of the publisher: defaults suit production; tests shorten the timeouts."""

    delivery_timeout: float = 10.0   # pending records without any ack this long → broker considered down
    connect_timeout: float = 5.0     # one connection attempt (bootstrap, producer id, topic metadata)
    reconnect_min: float = 0.5       # first retry after an outage; doubles up to reconnect_max
    reconnect_max: float = 10.0
    take: int = 512                  # items moved from the queue per pump turn
    staged_max: int = 10_000         # encoded records waiting for the producer; beyond → spool
    max_batch_bytes: int = 262_144   # aiokafka max_batch_size
    segment_bytes: int = 8 * 1024 * 1024
    fsync_interval: float = 1.0
    tick: float = 0.1                # watchdog period
    deep_sleep: float = 1.0          # idle this long → the pump sleeps until an event wakes it


class _Outage(Exception):
    """Raised inside the sender when the broker stops accepting or acknowledging records."""


def _retriable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, (asyncio.TimeoutError, asyncio.CancelledError))


class Publisher:
    """Bounded queue + background producer + spool. Thread-safe ``offer``; nothing here raises."""

    def __init__(
        self,
        settings: Settings,
        encode: Encoder,
        *,
        topic: str | None = None,
        tuning: Tuning | None = None,
        client_id: str = "aiwatch-sdk",
    ) -> None:
        self.settings = settings
        self.topic = topic or settings.topic_events
        self.tuning = tuning or Tuning()
        self.client_id = client_id
        self._encode = encode
        self._max = settings.sdk_queue_size
        self._closed = False
        self._app_dropped = 0                  # queue full / closed
        self._app_errors = 0                   # errors of the public API, counted by the SDK
        self.counts = collections.Counter[str]()  # sent, spooled, dropped, errors, encode_errors, ...
        self._start()
        atexit.register(self.close)
        os.register_at_fork(after_in_child=partial(_restart_in_child, weakref.ref(self)))

    def _start(self) -> None:
        """Fresh queue, state and thread (at creation, and in a forked child, which inherits no thread)."""
        self._queue: collections.deque[Any] = collections.deque()
        self._idle = False
        self._lock = threading.Lock()          # only for counters touched by application threads

        # Everything below is owned by the loop thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._spool: Spool | None = None
        self._staged: collections.deque[Record] = collections.deque()
        self._inflight: dict[int, Record] = {}
        self._seq = 0
        self._gen = 0
        self._producer: Any = None
        self._connected = False
        self._direct = True                    # records bypass the spool (optimistic until the first connect fails)
        self._connecting: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._replay_pending = 0
        self._last_progress = time.monotonic()
        self._backoff = self.tuning.reconnect_min
        self._next_connect = 0.0
        self._last_connect_warning = -_WARN_EVERY
        self._closing = False
        self._discards: set[asyncio.Task[None]] = set()

        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"{self.client_id}-publisher", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=5.0)

    def _after_fork(self) -> None:
        if self._closed:
            return
        if self._spool is not None:
            self._spool.abandon_after_fork()  # the parent keeps its slot; the child claims its own
        self.counts = collections.Counter()
        self._app_dropped = self._app_errors = 0
        self._start()

    # -- application side -----------------------------------------------------------------

    def offer(self, item: Any) -> bool:
        """Hand an item to the background thread; False (and counted as dropped) when full or closed."""
        queue = self._queue
        if self._closed or len(queue) >= self._max:
            with self._lock:
                self._app_dropped += 1
            return False
        queue.append(item)
        if self._idle:
            self._idle = False
            loop = self._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._wake.set)
                except RuntimeError:  # loop closed
                    pass
        return True

    def count_error(self) -> None:
        with self._lock:
            self._app_errors += 1

    def stats(self) -> dict[str, int]:
        """Counters since start: sent (acknowledged by the broker), spooled (written to the spool),
        dropped (lost, with the reason counted in the log), errors; gauges: queued, spool_records."""
        counts = self.counts
        spool = self._spool
        return {
            "sent": counts["sent"],
            "spooled": counts["spooled"],
            "dropped": counts["dropped"] + self._app_dropped,
            "errors": counts["errors"] + self._app_errors,
            "queued": len(self._queue) + len(self._staged),
            "inflight": len(self._inflight) + self._replay_pending,
            "spool_records": spool.records if spool else 0,
            "spool_bytes": spool.bytes if spool else 0,
            "connect_failures": counts["connect_failures"],
            "outages": counts["outages"],
            "connected": int(self._connected),
        }

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything offered so far is acknowledged by the broker (queue, in-flight
        records and spool all empty). Returns False on timeout, e.g. while the broker is down."""
        return self._call(self._until_drained(kick=True, stop_when_down=False), timeout) is True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is pending for up to ``timeout`` while connected, spool the rest, stop the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001 - interpreter shutting down
            pass
        self._call(self._shutdown(timeout), timeout + 10.0)
        self._thread.join(timeout=5.0)

    def _call(self, coro: Any, timeout: float) -> Any:
        loop = self._loop
        if loop is None or not self._thread.is_alive() or loop.is_closed():
            coro.close()
            return None
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:
            coro.close()
            return None
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return None
        except Exception:  # noqa: BLE001 - never raise into the host
            log.exception("aiwatch SDK: background call failed")
            return None

    # -- loop thread ----------------------------------------------------------------------

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_discards)
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        except BaseException:  # noqa: BLE001 - a dying publisher must say why, never raise
            log.exception("aiwatch SDK publisher stopped unexpectedly")
        finally:
            self._closed = True
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
            self._ready.set()
            if self._queue:  # offered while the loop was stopping: nothing will send them
                self.counts["dropped"] += len(self._queue)
                self._queue.clear()

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        self._work = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready.set()
        root = self.settings.spool_dir / "sdk" / re.sub(r"[^A-Za-z0-9._-]", "_", self.topic)
        try:
            self._spool = Spool.claim(root, max_bytes=self.settings.sdk_spool_max_bytes,
                                      segment_bytes=self.tuning.segment_bytes,
                                      fsync_interval=self.tuning.fsync_interval)
        except Exception as exc:  # noqa: BLE001 - no spool: events are dropped (counted) while Kafka is down
            log.warning("aiwatch SDK: no spool at %s (%s); events will be dropped while Kafka is down", root, exc)
        self._direct = self._spool is None or self._spool.empty  # a previous run's spool goes first
        self._connecting = asyncio.create_task(self._connect())
        tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._watchdog())]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pump(self) -> None:
        """Move queued items on. While events keep coming it polls every ``poll`` seconds, so the
        application thread never pays for a wake-up; after ``deep_sleep`` idle seconds it sleeps
        until ``offer`` wakes it (one syscall for the first event after a quiet period)."""
        queue, take = self._queue, self.tuning.take
        poll = max(self.settings.sdk_linger_ms / 1000.0, 0.002)
        active = time.monotonic()
        while True:
            if queue:
                items = [queue.popleft() for _ in range(min(len(queue), take))]
                self._route(items)
                active = time.monotonic()
                await asyncio.sleep(0)
                continue
            if time.monotonic() - active < self.tuning.deep_sleep:
                await asyncio.sleep(poll)
                continue
            self._wake.clear()
            self._idle = True
            if queue:
                self._idle = False
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            self._idle = False

    def _route(self, items: list[Any]) -> None:
        records: list[Record] = []
        for item in items:
            try:
                records.append(self._encode(item))
            except Exception:  # noqa: BLE001 - one bad event must not stop the others
                self.counts["dropped"] += 1
                self.counts["errors"] += 1
                if self.counts["encode_errors"] == 0:
                    log.exception("aiwatch SDK: could not encode an event (dropped, counted)")
                self.counts["encode_errors"] += 1
        if not records:
            return
        if self._direct:
            room = max(self.tuning.staged_max - len(self._staged), 0)
            self._staged.extend(records[:room])
            records = records[room:]
            self._work.set()
            if not records:
                return
            self._direct = False  # a backlog: newer records queue behind it in the spool
        self._to_spool(records)
        if self._connected:
            self._work.set()

    def _to_spool(self, records: list[Record], *, front: bool = False) -> None:
        if not records:
            return
        written = 0
        if self._spool is not None:
            try:
                written = self._spool.prepend(records) if front else self._spool.append(records)
            except OSError as exc:
                self.counts["errors"] += 1
                log.warning("aiwatch SDK: spool write failed (%s); %d event(s) dropped", exc, len(records))
        self.counts["spooled"] += written
        lost = len(records) - written
        if lost:
            if self.counts["dropped_spool_full"] == 0 and self._spool is not None:
                log.warning("aiwatch SDK: spool %s is full (%d bytes); dropping events (counted)",
                            self._spool.directory, self._spool.max_bytes)
            self.counts["dropped_spool_full"] += lost
            self.counts["dropped"] += lost

    # -- connection -----------------------------------------------------------------------

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(self.tuning.tick)
            try:
                self._check()
            except Exception:  # noqa: BLE001
                self.counts["errors"] += 1
                log.exception("aiwatch SDK watchdog error")

    def _check(self) -> None:
        now = time.monotonic()
        if self._connected:
            pending = len(self._inflight) + self._replay_pending + len(self._staged)
            if not pending:
                self._last_progress = now
            elif now - self._last_progress > self.tuning.delivery_timeout:
                self._outage(f"no acknowledgement for {self.tuning.delivery_timeout:.0f}s")
        elif not self._closing and self._connecting is None and now >= self._next_connect:
            self._connecting = asyncio.create_task(self._connect())
        if self._spool is not None:
            try:
                self._spool.maybe_sync()
            except OSError as exc:
                self.counts["errors"] += 1
                log.warning("aiwatch SDK: spool fsync failed: %s", exc)

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.settings.sdk_linger_ms,
            max_batch_size=self.tuning.max_batch_bytes,
            max_request_size=max(self.settings.max_message_bytes, self.settings.max_event_bytes + 4096),
            request_timeout_ms=int(max(self.tuning.delivery_timeout, 1.0) * 1000),
            **self.settings.kafka_client_options(),
        )

    async def _connect(self) -> None:
        producer = None
        try:
            producer = self._new_producer()

            async def start() -> None:
                await producer.start()
                await producer.partitions_for(self.topic)  # the topic must exist (no auto-creation)

            await asyncio.wait_for(start(), self.tuning.connect_timeout)
        except asyncio.CancelledError:
            if producer is not None:
                self._discard(producer)
            raise
        except Exception as exc:  # noqa: BLE001 - unreachable, unknown topic, auth: retry later
            self.counts["connect_failures"] += 1
            now = time.monotonic()
            if now - self._last_connect_warning >= _WARN_EVERY:  # one line a minute during a long outage
                self._last_connect_warning = now
                log.warning("aiwatch SDK: Kafka %s not available for topic %s (%s: %s); spooling, retrying "
                            "(%d failed attempts so far)", self.settings.kafka_bootstrap_servers, self.topic,
                            type(exc).__name__, exc, self.counts["connect_failures"])
            if producer is not None:
                self._discard(producer)
            if self._staged:  # staged optimistically during the first attempt
                older = list(self._staged)
                self._staged.clear()
                self._to_spool(older, front=True)
            self._direct = False
            self._next_connect = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.tuning.reconnect_max)
            return
        finally:
            self._connecting = None
        self._gen += 1
        self._producer = producer
        self._connected = True
        self._backoff = self.tuning.reconnect_min
        self._last_progress = time.monotonic()
        self._sender = asyncio.create_task(self._send_loop(producer, self._gen))
        log.info("aiwatch SDK: connected to Kafka %s", self.settings.kafka_bootstrap_servers)

    def _outage(self, reason: str) -> None:
        """The broker stopped acknowledging: spool everything not yet acknowledged, reconnect later."""
        if not self._connected:
            return
        self.counts["outages"] += 1
        log.warning("aiwatch SDK: Kafka delivery failed (%s); spooling to %s and reconnecting", reason,
                    self._spool.directory if self._spool else "nowhere (no spool)")
        self._connected = False
        self._direct = False
        self._gen += 1
        producer, self._producer = self._producer, None
        if self._sender is not None and self._sender is not asyncio.current_task():
            self._sender.cancel()
        self._sender = None
        # In-flight and staged records are older than anything in the spool: put them first.
        older = list(self._inflight.values()) + list(self._staged)
        self._inflight.clear()
        self._staged.clear()
        self._replay_pending = 0
        self._to_spool(older, front=True)
        if producer is not None:
            self._discard(producer)
        self._next_connect = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.tuning.reconnect_max)

    # -- sending --------------------------------------------------------------------------

    async def _send_loop(self, producer: Any, gen: int) -> None:
        try:
            while gen == self._gen:
                if self._staged:
                    await self._send_staged(producer, gen)
                elif self._spool is not None and not self._spool.empty:
                    segment = self._spool.oldest()
                    if segment is not None:
                        await self._replay(producer, gen, segment)
                else:
                    self._direct = True
                    self._work.clear()
                    await self._work.wait()
        except asyncio.CancelledError:
            raise
        except _Outage as exc:
            if gen == self._gen:
                self._outage(str(exc))
        except Exception as exc:  # noqa: BLE001
            if gen == self._gen:
                self.counts["errors"] += 1
                self._outage(f"{type(exc).__name__}: {exc}")

    async def _send(self, producer: Any, record: Record) -> asyncio.Future[Any] | None:
        """Hand one record to the producer; None when the record itself is refused (dropped, counted)."""
        key, value = record
        try:
            return await producer.send(self.topic, value, key=key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            if _retriable(exc) or type(exc).__name__ in ("KafkaTimeoutError", "ProducerClosed"):
                raise _Outage(f"{type(exc).__name__}: {exc}") from exc
            self._refused(exc)
            return None

    def _refused(self, exc: BaseException) -> None:
        self.counts["dropped"] += 1
        self.counts["errors"] += 1
        log.warning("aiwatch SDK: Kafka refused an event (%s: %s); dropped", type(exc).__name__, exc)

    async def _send_staged(self, producer: Any, gen: int) -> None:
        staged = self._staged
        while staged and gen == self._gen:
            future = await self._send(producer, staged[0])
            if gen != self._gen:
                return
            record = staged.popleft()
            if future is None:
                continue
            seq = self._seq = self._seq + 1
            self._inflight[seq] = record
            future.add_done_callback(partial(self._acked, gen, seq))

    def _acked(self, gen: int, seq: int, future: asyncio.Future[Any]) -> None:
        exc = _outcome(future)
        if gen != self._gen or seq not in self._inflight:
            return  # from a discarded producer: the record was already spooled
        if exc is None:
            del self._inflight[seq]
            self.counts["sent"] += 1
            self._last_progress = time.monotonic()
        elif _retriable(exc):
            self._outage(f"{type(exc).__name__}: {exc}")  # the record stays in flight → spooled
        else:
            del self._inflight[seq]
            self._refused(exc)

    async def _replay(self, producer: Any, gen: int, segment: Any) -> None:
        futures = []
        self._replay_pending = len(segment.records)
        for record in segment.records:
            future = await self._send(producer, record)
            if future is not None:
                future.add_done_callback(self._touch)
                futures.append(future)
            else:
                self._replay_pending -= 1
        if futures:
            await asyncio.wait(futures)
        if gen != self._gen:
            return
        sent = 0
        for future in futures:
            exc = _outcome(future)
            if exc is None:
                sent += 1
            elif _retriable(exc):
                raise _Outage(f"{type(exc).__name__}: {exc}")
            else:
                self._refused(exc)
        self._spool.remove(segment)  # type: ignore[union-attr]
        self._replay_pending = 0
        self.counts["sent"] += sent

    def _touch(self, future: asyncio.Future[Any]) -> None:
        _outcome(future)
        self._last_progress = time.monotonic()

    # -- flush and shutdown ---------------------------------------------------------------

    def _drained(self) -> bool:
        """Nothing waits anywhere: every item offered so far is acknowledged (or dropped, counted)."""
        return (not self._queue and not self._staged and not self._inflight and not self._replay_pending
                and (self._spool is None or self._spool.empty))

    async def _until_drained(self, *, kick: bool, stop_when_down: bool) -> bool:
        if kick and not self._connected and self._connecting is None:
            self._backoff = self.tuning.reconnect_min
            self._next_connect = 0.0
        while not self._drained():
            if stop_when_down and not self._connected and self._connecting is None:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _shutdown(self, timeout: float) -> None:
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._until_drained(kick=False, stop_when_down=True), timeout)
        except asyncio.TimeoutError:
            pass
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._connected and self._drained():
            self._disconnect()
        elif self._connected:
            self._outage("closing before delivery completed")
        if self._queue:  # whatever is still queued goes behind the rest, in the spool
            items = list(self._queue)
            self._queue.clear()
            self._route(items)
        if self._discards:
            await asyncio.gather(*self._discards, return_exceptions=True)
        if self._spool is not None:
            try:
                self._spool.close()
            except OSError as exc:
                log.warning("aiwatch SDK: closing the spool failed: %s", exc)
        self._stop.set()

    def _disconnect(self) -> None:
        """Clean stop after a full drain: nothing pending, the producer can just go."""
        self._connected = False
        self._direct = False
        self._gen += 1
        producer, self._producer = self._producer, None
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None
        if producer is not None:
            self._discard(producer)

    def _discard(self, producer: Any) -> None:
        task = asyncio.get_running_loop().create_task(_discard(producer))
        self._discards.add(task)
        task.add_done_callback(self._discards.discard)


def _restart_in_child(ref: weakref.ref[Publisher]) -> None:
    """Events recorded in a forked worker (gunicorn, celery prefork) need a publisher of their own.
    The parent's queued events stay the parent's: the child starts with an empty queue."""
    publisher = ref()
    if publisher is not None:
        try:
            publisher._after_fork()
        except Exception:  # noqa: BLE001 - never break the host's fork
            log.exception("aiwatch SDK: could not restart the publisher in a forked process")


class _Discarded(KafkaConnectionError):
    """Fails the batches of a producer we gave up on (their records are already spooled)."""


def _quiet_discards(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """aiokafka leaves the failed batches' internal futures unretrieved; those are expected, not news."""
    if isinstance(context.get("exception"), _Discarded):
        return
    loop.default_exception_handler(context)


def _outcome(future: asyncio.Future[Any]) -> BaseException | None:
    """The exception of a finished send (retrieved, so asyncio never reports it as unhandled)."""
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception()


async def _discard(producer: Any) -> None:
    """Stop a producer that may be stuck retrying (an idempotent producer never gives up by itself)."""
    sender = getattr(getattr(producer, "_sender", None), "sender_task", None)
    if sender is not None and not sender.done():
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        accumulator = getattr(producer, "_message_accumulator", None)
        if accumulator is not None:
            accumulator.fail_all(_Discarded("aiwatch SDK: producer discarded"))
    try:
        await asyncio.wait_for(producer.stop(), 5.0)
    except BaseException:  # noqa: BLE001 - best effort; CancelledError included on loop shutdown
        pass
