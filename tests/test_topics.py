"""Topic housekeeping on a real broker: a run's topics are deleted by prefix, nobody else's."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient

from streams.topics import delete_topics_with_prefix
from tests.harness import create_topic


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_deletes_the_topics_of_a_prefix_and_keeps_the_others(kafka_bootstrap: str, topic_prefix: str) -> None:
    mine = [create_topic(kafka_bootstrap, f"{topic_prefix}.events", 2), create_topic(kafka_bootstrap, f"{topic_prefix}.dlq")]
    other = create_topic(kafka_bootstrap, f"x{topic_prefix}.events")  # contains the prefix, does not start with it
    deleted = asyncio.run(delete_topics_with_prefix(kafka_bootstrap, [topic_prefix]))
    assert deleted == sorted(mine)
    deadline = time.monotonic() + 15  # deletion reaches the metadata a moment later
    while set(mine) & (left := asyncio.run(_topics(kafka_bootstrap))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert other in left and not set(mine) & left
    assert asyncio.run(delete_topics_with_prefix(kafka_bootstrap, [])) == []  # no prefix: nothing, not everything
    asyncio.run(delete_topics_with_prefix(kafka_bootstrap, [f"x{topic_prefix}"]))
