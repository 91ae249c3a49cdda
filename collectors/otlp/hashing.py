"""Short stable hashes for message content, conversation chains and event ids."""

from __future__ import annotations

from hashlib import blake2b


def short_hash(data: bytes) -> str:
    return blake2b(data, digest_size=12).hexdigest()


def chain(previous: bytes, item: str) -> bytes:
    """Cumulative hash of a conversation prefix: chain(chain(seed, h0), h1) ..."""
    return blake2b(previous + item.encode(), digest_size=16).digest()


def event_id(app: str, namespace: str, key: str) -> str:
    """Deterministic event id: a retried export or a repeated message yields the same id, so the
    worker's idempotent sinks absorb what the receiver's bounded memory could not."""
    return blake2b(f"{app}\x1f{namespace}\x1f{key}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
