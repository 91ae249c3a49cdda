"""The SDK's local spool: order, bounds, torn tails, restart, one owner per directory (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.spool import MAGIC, Spool


def _records(n: int, start: int = 0) -> list[tuple[bytes | None, bytes]]:
    return [((b"k%d" % i) if i % 3 else None, b"value-%d" % i) for i in range(start, start + n)]


def _drain(spool: Spool) -> list[tuple[bytes | None, bytes]]:
    out = []
    while (segment := spool.oldest()) is not None:
        out.extend(segment.records)
        spool.remove(segment)
    return out


def test_replays_in_order_across_segments_and_deletes_acked_segments(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    records = _records(50)
    for i in range(0, 50, 7):
        assert spool.append(records[i:i + 7]) == len(records[i:i + 7])
    assert spool.records == 50
    assert len(list(spool.directory.glob("*.seg"))) > 1
    assert _drain(spool) == records
    assert spool.empty and spool.records == 0
    assert list(spool.directory.glob("*.seg")) == []
    spool.close()


def test_prepend_puts_older_records_first(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, max_bytes=10_000_000)
    spool.append(_records(5, start=10))
    spool.prepend(_records(5, start=0))
    assert [v for _, v in _drain(spool)] == [b"value-%d" % i for i in range(15) if i < 5 or i >= 10]
    spool.close()


def test_bound_refuses_what_does_not_fit(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, max_bytes=500)
    taken = spool.append([(None, b"x" * 100)] * 10)
    assert 0 < taken < 10
    assert spool.bytes <= 500
    assert spool.append([(None, b"x" * 100)]) == 0
    spool.close()


def test_survives_reopen_and_ignores_a_torn_tail(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, max_bytes=10_000_000)
    spool.append(_records(20))
    spool.close()
    segment = next((tmp_path / "0").glob("*.seg"))
    with segment.open("ab") as f:  # a crash in the middle of a write
        f.write(b"\x00\x00\x00\x50\x00\x00")
    again = Spool.claim(tmp_path, max_bytes=10_000_000)
    assert again.directory == tmp_path / "0"
    assert again.records == 20
    assert _drain(again) == _records(20)
    assert again.corrupt_records == 1
    again.close()


def test_corrupt_record_is_not_replayed(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, max_bytes=10_000_000)
    spool.append([(b"k", b"good"), (b"k", b"flipped")])
    spool.close()
    segment = next((tmp_path / "0").glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    again = Spool.claim(tmp_path, max_bytes=10_000_000)
    assert _drain(again) == [(b"k", b"good")]
    again.close()


def test_one_owner_per_directory(tmp_path: Path) -> None:
    first = Spool.claim(tmp_path, max_bytes=1000)
    second = Spool.claim(tmp_path, max_bytes=1000)
    assert first.directory != second.directory
    first.close()
    third = Spool.claim(tmp_path, max_bytes=1000)
    assert third.directory == first.directory
    second.close()
    third.close()


def test_segments_carry_a_version(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, max_bytes=1000)
    spool.append([(None, b"v")])
    spool.close()
    assert next((tmp_path / "0").glob("*.seg")).read_bytes().startswith(MAGIC)


@pytest.mark.parametrize("max_bytes", [0])
def test_disabled_spool_takes_nothing(tmp_path: Path, max_bytes: int) -> None:
    spool = Spool.claim(tmp_path, max_bytes=max_bytes)
    assert spool.append(_records(3)) == 0
    assert spool.empty
    spool.close()
