"""A durable, bounded FIFO of Kafka records on local disk, for when the broker cannot be reached.

Why a spool: the SDK must never block or lose events when Kafka is down, yet memory is bounded.
Records (key + value bytes) are appended to segment files; a reconnecting publisher replays whole
segments oldest first and deletes each one only after the broker acknowledged all its records.
That is at-least-once: a segment interrupted half-way is resent in full (the worker is idempotent
on ``event_id``).

On disk, one directory per live SDK instance (``<root>/<slot>/``, held by an exclusive ``flock``
so two processes never share a spool; a restarted process takes the free slot again and resends
what the previous one left). Each segment starts with ``aiwatch-spool/1\\n`` and holds records of
``>IiI`` (value length, key length or -1 for no key, CRC-32 of key+value) then key and value.
A torn tail (crash during a write) is detected by length/CRC and ignored from that point.

Durability: every append is one ``os.write`` (in the OS page cache at once, so a process crash
loses nothing already spooled); ``fsync`` at most every ``fsync_interval`` seconds, when a segment
is sealed and on close, so a machine crash loses at most that interval.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("aiwatch.sdk.spool")

MAGIC = b"aiwatch-spool/1\n"
_HEADER = struct.Struct(">IiI")
_FIRST_SEQ = 10**12  # segments numbered from here, so records can be put *before* the oldest one
_MAX_SLOTS = 64

Record = tuple[bytes | None, bytes]


@dataclass
class Segment:
    """One sealed segment read back for replay: delete it (``Spool.remove``) once all are acked."""

    seq: int
    path: Path
    records: list[Record]
    size: int


class SpoolUnavailable(OSError):
    """No spool directory could be claimed (all slots locked, or the directory is not writable)."""


class Spool:
    """Append-only segment files with a byte bound; not thread-safe (one owner: the publisher loop)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 8 * 1024 * 1024,
        fsync_interval: float = 1.0,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self._lock_fd: int | None = None
        self._sizes: dict[int, int] = {}      # seq -> bytes on disk, every segment incl. the active one
        self._counts: dict[int, int] = {}     # seq -> records
        self.bytes = 0                        # totals, kept up to date (read by other threads for stats)
        self.records = 0
        self._active: int | None = None       # seq of the segment being appended to
        self._active_fd: int | None = None
        self._next_seq = _FIRST_SEQ
        self._dirty = False
        self._last_sync = time.monotonic()
        self.corrupt_records = 0              # torn/corrupt tails found on replay (counted, skipped)

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def claim(cls, root: Path, **options: object) -> "Spool":
        """Open the first free slot under ``root`` (``root/0``, ``root/1``, ...), locked for this instance."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        for slot in range(_MAX_SLOTS):
            spool = cls(root / str(slot), **options)  # type: ignore[arg-type]
            if spool._try_open():
                return spool
        raise SpoolUnavailable(f"all {_MAX_SLOTS} spool slots under {root} are held by running processes")

    def _try_open(self) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        self._scan()
        return True

    def _scan(self) -> None:
        for path in self.directory.glob("*.seg"):
            try:
                seq = int(path.stem)
            except ValueError:
                continue
            size = path.stat().st_size
            if size <= len(MAGIC):
                path.unlink(missing_ok=True)  # empty segment left by a crash
                continue
            self._sizes[seq] = size
            self._counts[seq] = _count_records(path)
            self.bytes += size
            self.records += self._counts[seq]
        if self._sizes:
            self._next_seq = max(self._sizes) + 1
            log.info("spool %s holds %d records from a previous run; they will be resent",
                     self.directory, self.records)

    def close(self) -> None:
        """Seal (fsync) the active segment and release the slot."""
        self.seal()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- state -----------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return self.records == 0

    def abandon_after_fork(self) -> None:
        """In a forked child: close the inherited descriptors without touching the parent's lock or files."""
        for fd in (self._active_fd, self._lock_fd):
            if fd is not None:
                try:
                    os.close(fd)  # the flock stays with the parent, which still holds its descriptor
                except OSError:
                    pass
        self._active_fd = self._lock_fd = None

    # -- writing ---------------------------------------------------------------------------

    def append(self, records: Iterable[Record]) -> int:
        """Append records at the tail; returns how many fit under ``max_bytes`` (the rest are refused)."""
        return self._write(records, front=False)

    def prepend(self, records: Iterable[Record]) -> int:
        """Put records *before* everything spooled (they are older: in flight when the broker went away)."""
        return self._write(records, front=True)

    def _write(self, records: Iterable[Record], *, front: bool) -> int:
        budget = self.max_bytes - self.bytes
        chunks: list[bytes] = []
        taken = size = 0
        for key, value in records:
            encoded = _encode(key, value)
            if size + len(encoded) > budget:
                break
            chunks.append(encoded)
            size += len(encoded)
            taken += 1
        if not taken:
            return 0
        data = b"".join(chunks)
        if front and self._sizes:
            seq = min(self._sizes) - 1
            self._write_sealed(seq, data, taken)
            return taken
        if self._active is None or self._sizes[self._active] >= self.segment_bytes:
            self._open_active()
        assert self._active is not None and self._active_fd is not None
        _write_all(self._active_fd, data)
        self._sizes[self._active] += len(data)
        self._counts[self._active] += taken
        self.bytes += len(data)
        self.records += taken
        self._dirty = True
        return taken

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}.seg"

    def _open_active(self) -> None:
        self.seal()
        seq = self._next_seq
        self._next_seq += 1
        fd = os.open(self._path(seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        _write_all(fd, MAGIC)
        _fsync_dir(self.directory)
        self._active, self._active_fd = seq, fd
        self._sizes[seq] = len(MAGIC)
        self._counts[seq] = 0
        self.bytes += len(MAGIC)

    def _write_sealed(self, seq: int, data: bytes, count: int) -> None:
        tmp = self.directory / f".{seq}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, MAGIC + data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path(seq))
        _fsync_dir(self.directory)
        self._sizes[seq] = len(MAGIC) + len(data)
        self._counts[seq] = count
        self.bytes += len(MAGIC) + len(data)
        self.records += count

    def seal(self) -> None:
        """Close the active segment (fsynced); the next append starts a new one."""
        if self._active_fd is None:
            return
        try:
            os.fsync(self._active_fd)
        finally:
            os.close(self._active_fd)
        if self._counts.get(self._active) == 0:  # nothing written: do not leave an empty file
            self._forget(self._active)
        self._active = self._active_fd = None
        self._dirty = False
        self._last_sync = time.monotonic()

    def maybe_sync(self) -> None:
        """fsync the active segment when it has unsynced data older than ``fsync_interval``."""
        if self._dirty and self._active_fd is not None and time.monotonic() - self._last_sync >= self.fsync_interval:
            os.fsync(self._active_fd)
            self._dirty = False
            self._last_sync = time.monotonic()

    # -- replay ----------------------------------------------------------------------------

    def oldest(self) -> Segment | None:
        """The oldest segment with its records (sealing the active one when it is the oldest)."""
        while self._sizes:
            seq = min(self._sizes)
            if seq == self._active:
                if not self._counts[seq]:
                    return None
                self.seal()
            path = self._path(seq)
            try:
                records, corrupt = _read_records(path)
            except FileNotFoundError:
                records, corrupt = [], 0
            if corrupt:
                self.corrupt_records += corrupt
                log.warning("spool segment %s has a torn or corrupt tail; %d record(s) after it skipped",
                            path, corrupt)
            if not records:
                self._forget(seq)
                continue
            return Segment(seq=seq, path=path, records=records, size=self._sizes[seq])
        return None

    def remove(self, segment: Segment) -> None:
        """Delete a segment once every record of it was acknowledged by the broker."""
        self._forget(segment.seq)

    def _forget(self, seq: int) -> None:
        self._path(seq).unlink(missing_ok=True)
        self.bytes -= self._sizes.pop(seq, 0)
        self.records -= self._counts.pop(seq, 0)


def _encode(key: bytes | None, value: bytes) -> bytes:
    klen = -1 if key is None else len(key)
    body = (key or b"") + value
    return _HEADER.pack(len(value), klen, zlib.crc32(body)) + body


def _read_records(path: Path) -> tuple[list[Record], int]:
    """Records of a segment, and 1 when a torn/corrupt tail was cut off (0 otherwise)."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        return [], 1
    out: list[Record] = []
    pos, end = len(MAGIC), len(data)
    while pos < end:
        if pos + _HEADER.size > end:
            return out, 1
        vlen, klen, crc = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        body_len = vlen + max(klen, 0)
        if pos + body_len > end or zlib.crc32(data[pos:pos + body_len]) != crc:
            return out, 1
        key = None if klen < 0 else data[pos:pos + klen]
        out.append((key, data[pos + max(klen, 0):pos + body_len]))
        pos += body_len
    return out, 0


def _count_records(path: Path) -> int:
    try:
        return len(_read_records(path)[0])
    except OSError:
        return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    """Make a created/renamed segment's directory entry durable (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
