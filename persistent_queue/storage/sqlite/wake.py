"""Push wake-ups for SQLite waiters: a datagram socket per waiter in ``<db>-wake/``.

A thread that waits for a commit (``wait_for_change``) binds a Unix datagram socket of its own
in the folder beside the database, counts itself in (a shared 8-byte counter, ``generation``,
mapped into every process), then sleeps in ``poll()`` on its socket. A writer, after its
commit, sends one byte to every socket there, so the waiters of every process on this host
wake at once. While the counter stands still the writer's listing of the folder holds: nobody
waiting costs a writer one read of mapped memory (no system call).

A waiter that crashed leaves its socket file behind: the next send is refused and the writer
unlinks it. Where the folder, the counter or a socket cannot be made (a read-only directory,
a path too long for ``AF_UNIX``, no Unix sockets), waiters fall back to polling ``PRAGMA
data_version``; with wake-ups on they still look once per :data:`SAFETY_NET` second, for a
commit nobody announced (one made through a connection of the application's own).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import secrets
import select
import socket
import stat
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: With wake-ups on, a waiter still looks at the database this often (seconds).
SAFETY_NET = 1.0
#: The longest path a Unix socket can be bound to (``sun_path`` less its terminating NUL).
_MAX_PATH = 107
_COUNTER = "generation"


@dataclass
class WakeCounts:
    """What this process's waiters and writers did (for tests and benchmarks)."""

    #: Times a waiter looked at the database (``PRAGMA data_version``).
    checks: int = 0
    #: Times a waiter was woken by a writer's byte.
    wakeups: int = 0
    #: Bytes this process's writers sent.
    sent: int = 0
    #: Stale sockets (of waiters that died) this process's writers removed.
    removed: int = 0


def folder_of(database: str) -> str:
    """The folder of the waiters' sockets of ``database``: beside the real file, as SQLite
    keeps the -wal, so every name of one database (a symlink, the real path) shares it."""
    return os.path.realpath(database) + "-wake"


class WakeNotifier:
    """The folder and counter of one database in this process; :meth:`notify` wakes every
    waiter after a commit. :attr:`available` is False where there are no wake-ups."""

    def __init__(self, database: str, counts: WakeCounts) -> None:
        self.folder = folder_of(database)
        self.counts = counts
        self._sender: socket.socket | None = None
        self._fd = -1
        self._pid = os.getpid()
        self._map: mmap.mmap | None = None
        self._writable = False
        #: The permission bits of the database file's readers and writers (for sockets).
        self.mode = 0o600
        # (the counter when the folder was listed, the sockets listed)
        self._cache: tuple[bytes, tuple[str, ...]] = (b"", ())
        try:
            self._open(database)
        except OSError as exc:
            logger.debug("no wake-ups for %s (%s): waiters poll", database, exc)
            self.close()

    def _open(self, database: str) -> None:
        # Whoever may write the database may wait and wake: its permission bits, x where r.
        mode = self.mode = stat.S_IMODE(os.stat(database).st_mode) & 0o666
        try:
            os.mkdir(self.folder)
            os.chmod(self.folder, mode | (mode & 0o444) >> 2)  # not narrowed by the umask
        except FileExistsError:
            pass
        path = os.path.join(self.folder, _COUNTER)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
            self._writable = True
        except PermissionError:  # wakes others, never waits itself
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        if self._writable and os.fstat(self._fd).st_size < 8:  # the first: made it
            os.fchmod(self._fd, mode)
            os.ftruncate(self._fd, 8)
        self._map = mmap.mmap(self._fd, 8, mmap.MAP_SHARED,
                              mmap.PROT_READ | (mmap.PROT_WRITE if self._writable else 0))

    @property
    def available(self) -> bool:
        """Whether threads of this process can wait for wake-ups."""
        return self._writable and self._map is not None

    def notify(self) -> None:
        """Send one byte to every waiting socket; nobody waiting: one read of the counter."""
        counter = self._map
        if counter is None:
            return
        try:
            now = counter[:8]
        except ValueError:  # closed by another thread meanwhile
            return
        generation, targets = self._cache
        if now != generation:
            targets = self._list(now)
        if targets:
            self._send(targets)

    def count_in(self) -> None:
        """A waiter bound its socket: move the counter on, so that writers list again."""
        counter = self._map
        if counter is None:
            raise ValueError("closed")
        if self._pid != os.getpid():  # a forked child: a lock of its own, not its parent's
            os.close(self._fd)
            self._fd = os.open(os.path.join(self.folder, _COUNTER), os.O_RDWR | os.O_CLOEXEC)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # one increment at a time across processes
        try:
            value = int.from_bytes(counter[:8], "little")
            counter[:8] = ((value + 1) % 2**64).to_bytes(8, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _list(self, generation: bytes) -> tuple[str, ...]:
        try:
            names = os.listdir(self.folder)
        except OSError:
            names = []
        targets = tuple(os.path.join(self.folder, name) for name in names
                        if name.endswith(".sock"))
        self._cache = (generation, targets)
        return targets

    def _forget(self) -> None:
        self._cache = (b"", ())  # list again at the next commit

    def _send(self, targets: tuple[str, ...]) -> None:
        sender = self._sender
        if sender is None:
            try:
                sender = self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            except OSError:
                return
        for path in targets:
            try:
                sender.sendto(b"\0", socket.MSG_DONTWAIT, path)
                self.counts.sent += 1
            except BlockingIOError:
                pass  # its buffer is full of wake-ups it has not read yet: it is awake
            except ConnectionRefusedError:  # nobody reads it: its waiter died
                try:
                    os.unlink(path)
                    self.counts.removed += 1
                except OSError:
                    pass
                self._forget()
            except FileNotFoundError:
                self._forget()  # that waiter has left
            except OSError as exc:  # not ours to write to: that waiter has its safety net
                logger.debug("cannot wake %s: %s", path, exc)

    def close(self) -> None:
        """Release the counter and the sending socket (the folder stays)."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()


class Waiter:
    """A waiter's socket, bound in the folder for the length of one wait (a context manager).

    :meth:`open` returns None where wake-ups are not to be had; the caller polls instead.
    """

    def __init__(self, sock: socket.socket, path: str, counts: WakeCounts) -> None:
        self.sock = sock
        self.path = path
        self.counts = counts
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)

    @classmethod
    def open(cls, notifier: WakeNotifier) -> Waiter | None:
        """Bind a socket and count it in; None (poll instead) if either cannot be done."""
        if not notifier.available:
            return None
        path = os.path.join(notifier.folder, f"{os.getpid()}-{secrets.token_hex(6)}.sock")
        if len(os.fsencode(path)) > _MAX_PATH:
            return None
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError:
            return None
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            logger.debug("cannot bind %s (%s): polling instead", path, exc)
            return None
        waiter = cls(sock, path, notifier.counts)
        try:
            sock.setblocking(False)
            os.chmod(path, notifier.mode)
            notifier.count_in()
        except (OSError, ValueError) as exc:  # ValueError: closed meanwhile
            waiter.close()
            logger.debug("cannot wait on %s (%s): polling instead", path, exc)
            return None
        return waiter

    def wait(self, timeout: float) -> bool:
        """Sleep until a writer's byte arrives (True) or ``timeout`` seconds pass (False)."""
        if not self._poll.poll(max(timeout, 0) * 1000):
            return False
        try:
            while self.sock.recv(64):
                pass
        except BlockingIOError:
            pass
        self.counts.wakeups += 1
        return True

    def close(self) -> None:
        """Unlink the socket's file, then close it (a file present always has a reader)."""
        try:
            os.unlink(self.path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                logger.debug("cannot remove %s: %s", self.path, exc)
        self.sock.close()

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
