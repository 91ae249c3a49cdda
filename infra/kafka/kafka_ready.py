#!/usr/bin/env python3
"""Exit 0 if a Kafka broker at HOST:PORT answers a real Metadata request listing itself.

Stdlib only (no client library needed), so start.sh can run it with any python3.
An open TCP port is not enough: Kafka binds its listener before it processes requests,
so we send Metadata v4 and check the response's broker list.

usage: kafka_ready.py HOST PORT [TIMEOUT_SECONDS]
"""
import socket
import struct
import sys


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def metadata_brokers(host: str, port: int, timeout: float) -> list:
    """Return [(node_id, host, port), ...] from a Metadata v4 request for no topics."""
    client_id = b"aiwatch-ready"
    correlation_id = 7
    # Request header v1: api_key=3 (Metadata), api_version=4, correlation_id, client_id.
    header = struct.pack(">hhih", 3, 4, correlation_id, len(client_id)) + client_id
    # Body v4: topics = [] (empty array: brokers only, no topic data), allow_auto_topic_creation=false.
    body = struct.pack(">ib", 0, 0)
    payload = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        resp = _read_exact(sock, size)
    off = 0

    def take(fmt):
        nonlocal off
        vals = struct.unpack_from(fmt, resp, off)
        off += struct.calcsize(fmt)
        return vals

    (corr,) = take(">i")
    if corr != correlation_id:
        raise ValueError(f"unexpected correlation id {corr}")
    take(">i")  # throttle_time_ms
    (count,) = take(">i")
    brokers = []
    for _ in range(count):
        node_id, hlen = take(">ih")
        bhost = resp[off:off + hlen].decode()
        off += hlen
        (bport, rack_len) = take(">ih")
        if rack_len > 0:
            off += rack_len
        brokers.append((node_id, bhost, bport))
    return brokers


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    try:
        brokers = metadata_brokers(host, port, timeout)
    except Exception as exc:  # any failure just means "not ready yet"
        print(f"not ready: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if any(p == port for _, _, p in brokers):
        return 0
    print(f"not ready: metadata lists brokers {brokers}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
