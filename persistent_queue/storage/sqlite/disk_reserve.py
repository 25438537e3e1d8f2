"""Room kept on the disk so that consumers can drain a queue whose disk filled up.

In WAL mode every claim and ack appends pages to the WAL, and the WAL's space is only reused
once a checkpoint has copied it into the database file, which may have to grow for that. On a
disk filled by enqueues neither can happen: consumers would fail like producers, and the jobs
already accepted could not be drained to free space.

A :class:`DiskReserve` is a file of its own beside the database (``<db>-reserve``), its blocks
allocated up front. While it is in place, enqueues may use the rest of the disk. When a claim
or an ack finds the disk full, the backend deletes the reserve and checkpoints: the space goes
to the database file's growth, the WAL is emptied, and the claim or ack is retried. While the
reserve is missing, enqueues are refused (``StorageFull``) before they write anything, so the
freed space serves only the drain; the reserve is put back as soon as the disk has the room
for it, and enqueues resume then. Every process of the database sees the same file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: A failed attempt to put the reserve back is not repeated sooner than this (seconds): a
#: producer refused on a full disk then costs one ``stat`` per enqueue, not an allocation.
RETRY_INTERVAL = 0.25

#: The reserve takes at most this share of its file system (a small disk keeps most of it).
MAX_SHARE = 8

#: New jobs are admitted while the disk keeps this many reserves' size free besides the
#: reserve: that room is the consumers'. Without it, three producers pressing on a full
#: 2 MiB disk let a consumer drain 6 jobs in 60 s; with two, thousands in 5 s, though some
#: claims and acks still fail and are retried (the pressure test of
#: ``tests/reliability/test_disk_full_tmpfs.py``).
HEADROOM = 2

#: A disk with more free space than this many reserves is not asked again for
#: :data:`PLENTY_INTERVAL` seconds before a new job is admitted (one ``statvfs`` a second).
PLENTY = 64
PLENTY_INTERVAL = 1.0

#: How long :meth:`DiskReserve.missing` trusts its last look (seconds).
MISSING_RECHECK = 0.1


class DiskReserve:
    """The reserve file of the database at ``db_path``.

    Args:
        db_path: the database file; the reserve is ``<db_path>-reserve`` (of the real file
            when ``db_path`` is a symlink).
        size: the reserve's size in bytes, at most ``1/MAX_SHARE`` of its file system.
    """

    def __init__(self, db_path: Path, size: int) -> None:
        # beside the real file, as SQLite keeps the -wal: one reserve whatever name opens it
        self.path = Path(f"{os.path.realpath(db_path)}-reserve")
        self._name = str(self.path)
        self._wanted = size
        #: Set once the reserve cannot be kept for a reason other than space (a read-only
        #: folder, no allocation): then nothing is refused for its sake.
        self.disabled = False
        self._next_attempt = 0.0
        #: Until this time (monotonic) the disk is known to have plenty of room.
        self._plenty_until = 0.0
        #: Times this process released the reserve (diagnostics and tests).
        self.releases = 0
        self._missing = False
        self._missing_until = 0.0  # look again after this time (monotonic)

    def size(self) -> int:
        """The size the reserve should have on its file system, in bytes."""
        return self._room()[0]

    def _room(self) -> tuple[int, int]:
        """(the reserve's size, the bytes free) on the reserve's file system."""
        stats = os.statvfs(self.path.parent)
        size = min(self._wanted, stats.f_blocks * stats.f_frsize // MAX_SHARE)
        return size, stats.f_bavail * stats.f_frsize

    def admits_new_jobs(self) -> bool:
        """Whether a new job may take space: the reserve is in place (or put back now) and
        the disk keeps :data:`HEADROOM` reserves' size free besides it.

        That free room is the consumers': when a claim or an ack finds the disk
        full, its checkpoint returns the WAL's space to the disk, and producers that keep
        enqueuing must not take that space back before the consumers have used it. Without
        this margin, sustained enqueues starved the drain (most claims and acks failed).
        """
        if self.disabled:
            return True
        now = time.monotonic()
        if now < self._plenty_until and os.path.exists(self._name):
            return True
        if not self.ensure():
            return False
        size, free = self._room()
        if free >= PLENTY * size:
            self._plenty_until = now + PLENTY_INTERVAL
        return free >= HEADROOM * size

    def in_place(self) -> bool:
        """Whether the reserve exists (one ``stat``; a process that is creating it has not
        linked it under its name until all its blocks are allocated)."""
        return os.path.exists(self._name)

    def missing(self) -> bool:
        """Whether the reserve is gone (released by this or another process): read from
        the file system at most every :data:`MISSING_RECHECK` seconds, so a claim or an ack
        pays for a ``stat`` only that often."""
        now = time.monotonic()
        if now >= self._missing_until:
            self._missing = not self.disabled and not os.path.exists(self._name)
            self._missing_until = now + MISSING_RECHECK
        return self._missing

    def ensure(self) -> bool:
        """Put the reserve in place unless it is; False if the disk has no room for it
        and as much again (then the reserve would leave no room for the work).

        After a failure for lack of room, further calls answer False at once for
        :data:`RETRY_INTERVAL`. Any other failure disables the reserve (logged) and answers
        True: a reserve that cannot be made must not stop enqueues.
        """
        if self.disabled or os.path.exists(self._name):
            return True
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        try:
            size, free = self._room()
            if free < 2 * size:  # put back, it must leave as much again to the work
                raise OSError(errno.ENOSPC, "not enough room to put the disk reserve back")
            self._create(size)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                return True  # another process put it back meanwhile
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                self._next_attempt = now + RETRY_INTERVAL
                return False
            logger.warning("cannot keep a disk reserve at %s (%s): on a full disk, claims and "
                           "acks may fail too", self.path, exc)
            self.disabled = True
            return True
        self._next_attempt = self._missing_until = 0.0
        return True

    def release(self) -> bool:
        """Delete the reserve, freeing its blocks. True if this call deleted it."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        self.releases += 1
        self._missing_until = 0.0
        logger.warning("the disk holding %s is full: released the space reserved for claims "
                       "and acks; enqueues are refused until it can be put back", self.path)
        return True

    def _create(self, size: int) -> None:
        """Allocate ``size`` bytes under a temporary name, then link it under the reserve's.

        The name appears only once every block is allocated, and never replaces a reserve
        that another process put in place meanwhile (EEXIST).
        """
        if size <= 0:
            raise OSError(errno.ENOSPC, "no room for a disk reserve")
        _remove_stale(self.path)
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _allocate(fd, size)
            os.fsync(fd)
            os.link(temporary, self.path)
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


def _remove_stale(reserve: Path) -> None:
    """Delete the temporary files of processes that died while allocating a reserve."""
    for path in reserve.parent.glob(f"{reserve.name}.*.tmp"):
        pid = path.name[len(reserve.name) + 1:-len(".tmp")]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _allocate(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of real blocks (not a sparse file: deleting one frees
    nothing)."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
    block = b"\0" * 65536
    written = 0
    while written < size:
        written += os.write(fd, block[:size - written])
