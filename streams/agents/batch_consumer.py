"""The ``batch`` feeder of the ingest stage: a consumer-group member that fetches with ``getmany``,
hands each batch to the processor and commits the batch's offsets only after it returned.

It runs as a task of the Faust worker (same process, web views, lifecycle and producer), so a crash
at any point replays at most the uncommitted batches, which the idempotent sinks absorb. When the
behavioural layer is on (in its own process, ``streams.behavior_process``), a batch is committed once
its behavioural findings are published too — one batch later — and the state is saved with the
offsets it covers; on assignment each partition is rewound to the saved offset so the restored state
sees every event exactly once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from schemas.settings import Settings
from streams import changelog, metrics
from streams.agents.ingest import IngestProcessor
from streams.behavior_process import BehaviorProcess, BehaviorProcessError
from streams.ingest import RawMessage, now_utc

log = logging.getLogger("aiwatch.ingest")

RESTART_WINDOW_S = 600.0  # ``Settings.behavior_restarts`` counts restarts within this window
POISON_DEATHS = 2  # deaths of the behavioural process on one event before the layer skips it


def ingest_group(settings: Settings) -> str:
    return f"{settings.app_id}-ingest"


def offsets_of(fetched: dict[TopicPartition, list]) -> dict[TopicPartition, int]:
    """The offsets to commit after a batch: one past the last record of each partition."""
    return {tp: records[-1].offset + 1 for tp, records in fetched.items()}


class RewindToState(ConsumerRebalanceListener):
    """On the first assignment of a partition after the state was restored, start it at the offset the
    saved state covers, if earlier. Once only: when a later rebalance hands the partition back, the
    live state is ahead of the commit and skips what is redelivered (``BehaviorStore.wants``)."""

    def __init__(self, consumer: AIOKafkaConsumer, state: BehaviorProcess) -> None:
        self._consumer, self.state = consumer, state

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.rewind(assigned, restarted=False)

    async def rewind(self, partitions: Iterable[TopicPartition], restarted: bool = True) -> None:
        """Seek back to the restored state's offsets where they are behind the last commit. After a
        restart of the behavioural process (``restarted``) the fetch position is past what the dead one
        held, so every partition goes back to the lower of the two (the beginning if neither is known)."""
        for tp in partitions:
            saved = self.state.restored_from.pop((tp.topic, tp.partition), None)
            if saved is None and not restarted:
                continue
            committed = await self._consumer.committed(tp)
            known = [offset for offset in (saved, committed) if offset is not None]
            if not known:
                await self._consumer.seek_to_beginning(tp)
            elif restarted or committed is None or saved < committed:
                log.warning("rewinding %s/%s from %s to %s for the restored behavioural state",
                            tp.topic, tp.partition, committed, min(known))
                self._consumer.seek(tp, min(known))


async def consume(settings: Settings, processor: IngestProcessor, stopping: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=ingest_group(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.max_message_bytes,
        fetch_max_bytes=max(settings.max_message_bytes * 2, 52_428_800),
        session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
        heartbeat_interval_ms=max(int(settings.kafka_session_timeout_s * 250), 500),
        **settings.kafka_client_options(),
    )
    state = processor.behavior
    listener = RewindToState(consumer, state) if state is not None else None
    if listener is not None:
        consumer.subscribe([settings.topic_events], listener=listener)
    else:
        consumer.subscribe([settings.topic_events])
    await consumer.start()
    producer = None
    if state is not None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                                    enable_idempotence=True, max_request_size=settings.max_message_bytes,
                                    **settings.kafka_client_options())
        await producer.start()

    publishing: asyncio.Task | None = None
    last_published = time.monotonic()

    async def publish(blob: bytes, generation: int) -> None:
        try:
            await changelog.publish(producer, settings, blob, generation)
        except Exception as exc:  # noqa: BLE001 - the local store has it; the next save publishes again
            log.error("state changelog not published (%s); the local store is up to date", exc)

    async def save(force: bool = False) -> None:
        """Save locally when due (the child decides); every ``state_changelog_seconds`` also publish the
        snapshot to the changelog in the background (one publish in flight). A restore from an older
        changelog snapshot is still exact: it rewinds to that snapshot's offsets and replays the events
        since. Only a save that feeds the changelog is waited for; the others run in the child."""
        nonlocal publishing, last_published
        assert state is not None and producer is not None
        due = force or time.monotonic() - last_published >= settings.state_changelog_seconds
        if due and not force and publishing is not None and not publishing.done():
            due = False
        if not due:
            state.request("save", (False, False)).add_done_callback(_report)
            return
        answer = await state.save(force=force, want_blob=True)
        if answer["blob"] is None:
            return
        last_published = time.monotonic()
        if publishing is not None and not publishing.done():
            await publishing
        publishing = asyncio.create_task(publish(answer["blob"], answer["generation"]))
        if force:
            await publishing

    restarts: deque[float] = deque()
    deaths: Counter[tuple[str, int, int]] = Counter()  # events the behavioural process died on
    poison: set[tuple[str, int, int]] = set()  # ... twice: the layer is no longer fed them

    async def restart(exc: BehaviorProcessError) -> None:
        """A dead behavioural process: a new one from the saved state, and every assigned partition rewound
        to the offsets that state covers, so the events the dead one held are fed again. An event the
        process died on twice is not fed to the layer again (``POISON_DEATHS``): one event must not stop
        the worker. More than ``behavior_restarts`` in ``RESTART_WINDOW_S``: the worker gives up (its
        supervisor takes over)."""
        nonlocal state
        assert state is not None and listener is not None
        now = time.monotonic()
        while restarts and now - restarts[0] > RESTART_WINDOW_S:
            restarts.popleft()
        at = state.dying_at()
        where = "" if at is None else f" while feeding {settings.topic_events}/{at[0]}/{at[1]}"
        if len(restarts) >= settings.behavior_restarts:
            log.error("behavioural process died %d times in %.0f min%s; stopping the worker",
                      len(restarts) + 1, RESTART_WINDOW_S / 60, where)
            raise exc
        restarts.append(now)
        metrics.behavior_restarts.inc()
        log.error("%s%s; restarting it from its saved state", exc, where)
        if at is not None:
            event = (settings.topic_events, *at)
            deaths[event] += 1
            if deaths[event] >= POISON_DEATHS and event not in poison:
                poison.add(event)
                metrics.behavior_skipped.inc()
                log.error("the behavioural process died %d times on %s/%s/%s; the layer skips that event from now "
                          "on (it is stored, and content detection and rules ran on it)", deaths[event], *event)
        state.close()
        state = await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(BehaviorProcess.open, settings, skip=frozenset(poison)))
        processor.replace_behavior(state)
        listener.state = state
        await listener.rewind(consumer.assignment())

    async def commit(offsets: dict[TopicPartition, int]) -> None:
        """Commit what this member still owns. Commits lag one batch behind the fetch, so a rebalance in
        between can take a partition away: its uncommitted events go to the next owner (at least once)."""
        assigned = consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if len(mine) < len(offsets):
            log.warning("not committing %d partition(s) revoked by a rebalance; their new owner re-reads "
                        "the last batch", len(offsets) - len(mine))
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("commit failed across a rebalance (%s); the events are read again", exc)

    held: dict[TopicPartition, int] = {}  # offsets of the batch whose behavioural findings are in flight
    last_snapshot = time.monotonic()
    try:
        while not stopping.is_set():
            try:
                fetched = await consumer.getmany(
                    timeout_ms=int(settings.batch_seconds * 1000), max_records=settings.batch_size
                )
                if fetched:
                    messages = [
                        RawMessage(tp.topic, tp.partition, m.offset, m.key, m.value)
                        for tp, records in fetched.items() for m in records
                    ]
                    await processor.process(messages)  # publishes the previous batch's behavioural findings
                    done, held = ((held, offsets_of(fetched)) if processor.pending
                                  else ({**held, **offsets_of(fetched)}, {}))
                    if done:
                        await commit(done)
                else:
                    if held:
                        await processor.drain()
                        await commit(held)
                        held = {}
                    await processor.send_rollups()  # windows end on a quiet stream too
                if state is not None:
                    await save()
                    if time.monotonic() - last_snapshot >= settings.baseline_snapshot_seconds:
                        last_snapshot = time.monotonic()
                        await processor.snapshot_baselines(await state.snapshot(now_utc()))
                processor.release()
            except BehaviorProcessError as exc:
                if state is None:
                    raise
                await restart(exc)
                held = {}  # not committed: fetched again from the rewound positions
    finally:
        try:
            if held:
                await processor.drain()
                await commit(held)
        except Exception as exc:  # noqa: BLE001 - replayed after the restart instead
            log.error("last batch not committed at stop (%s); it is replayed at the next start", exc)
        try:
            await processor.send_rollups(everything=True)  # what was throttled is still reported at stop
        except Exception as exc:  # noqa: BLE001 - stopping goes on; the throttled findings are stored
            log.error("rollup alerts not sent at stop (%s)", exc)
        if state is not None:
            await save(force=True)
            await state.stop()
        if producer is not None:
            await producer.stop()
        await consumer.stop()  # leaves the group at once, so a restart does not wait for a session timeout


def _report(future: asyncio.Future) -> None:
    """A background state save that failed is logged; the next one retries."""
    if not future.cancelled() and future.exception() is not None:
        log.error("behavioural state not saved (%s); retried at the next save", future.exception())
