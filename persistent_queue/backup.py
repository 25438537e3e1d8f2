"""Online backup and restore of a SQLite database (and the ``pg_dump`` line for PostgreSQL).

:func:`backup` copies a live database while producers and consumers run, with SQLite's online
backup API in one step: one read transaction copies every page of one snapshot. Writers go on
committing to the WAL meanwhile (a reader never blocks them in WAL mode); checkpoints only wait
for the copy's snapshot. A backup in several steps restarts whenever another connection
commits between two steps: under a producer and two consumers (``python -m bench.backup``,
2 cores) a copy in steps of 5 % restarted 200-1,100 times and had not finished after 60 s,
of a 130 MB file as of a 345 MB one; in one step they took 1.5 s and 3.8 s, ``VACUUM INTO``
(one read transaction too, but every table and index rebuilt) 1.6-6.3 s and 7.0 s. The
consumers kept acking meanwhile (1,077 acks/s during the 345 MB copy, 1,468 before it).
Progress is read from the size of the file being written. The copy goes to a temporary file
beside the destination and is renamed only once complete and checked (``PRAGMA
integrity_check``): the destination never holds half a file. The copy is in rollback-journal
mode, one self-contained file.

:func:`restore` puts such a copy in place of a database, refusing while any process has the
database open. Every process with an open SQLite connection in WAL mode holds a shared
``fcntl`` lock on one byte of the ``-shm`` file (SQLite's "dead man switch") for as long as
the connection is open, and the kernel drops it when the process exits, even by ``SIGKILL``:
an exclusive lock attempt on that byte is therefore a reliable "nobody has it open" test,
with no stale answer. A heartbeat in the workers table is checked as well (a worker between
two connections, or on another host sharing the folder, which fcntl may not see).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import secrets
import shlex
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import config
from .errors import BackupError, BackupRefused, DatabaseInUse
from .storage import queries
from .storage.postgres.url import (
    is_postgres_url,
    mask_url,
    password_of,
    scrub,
    without_password,
)

__all__ = ["BackupResult", "Progress", "RestoreResult", "backup", "pg_dump", "pg_dump_command",
           "restore"]

Q = queries.queries("sqlite")

#: ``progress(bytes_written, bytes_total)``: called from a helper thread while a copy runs,
#: then once with ``bytes_written == bytes_total`` when it is complete.
Progress = Callable[[int, int], None]

#: SQLite's "dead man switch" byte of the ``-shm`` file: (22 + 8) * 4 + 8 (``os_unix.c``).
_SHM_DMS_BYTE = 128
_PROGRESS_EVERY = 0.1  # seconds between two looks at the copy's size
#: What ``link()`` fails with on a file system without hard links.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
#: The part of DEST's name in its temporary file's: with the rest, within a file name's 255.
_PARTIAL_NAME_BYTES = 200


@dataclass(frozen=True)
class BackupResult:
    """A finished backup (or the copy a restore put in place)."""

    path: Path
    bytes: int
    jobs: int
    dead_letters: int
    schema_version: int
    seconds: float
    verified: bool


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore: ``kept`` is where the replaced database was moved (None if there
    was none, or ``keep_old=False``); ``schema_version`` is after migration."""

    path: Path
    kept: Path | None
    jobs: int
    dead_letters: int
    restored_version: int
    schema_version: int


def backup(db_path: str | os.PathLike[str], dest: str | os.PathLike[str], *,
           progress: Progress | None = None, force: bool = False,
           verify: bool = True) -> BackupResult:
    """Copy the live SQLite database ``db_path`` to the file ``dest``, consistently.

    Producers and consumers may run meanwhile; the copy holds every commit made before it
    began. Raises :class:`BackupRefused` (nothing written) for a missing source, a source that
    is not a persistent-queue database, a PostgreSQL URL (see :func:`pg_dump_command`), a
    ``dest`` in a missing folder, or an existing ``dest`` without ``force``;
    :class:`BackupError` when the copy fails its integrity check (``verify``) or the disk
    refuses it.
    """
    if is_postgres_url(os.fspath(db_path)):
        raise BackupRefused("a PostgreSQL database is backed up with pg_dump: "
                            f"{pg_dump_command(os.fspath(db_path), os.fspath(dest))[0]}")
    source, target = _existing_database(_sqlite_path(db_path)), Path(dest)
    _check_destination(target, force=force)
    _check_distinct(source, target)
    started = time.monotonic()
    with _open(source, readonly=True) as src:
        _check_queue_database(src, source)
        result = _copy(src, target, progress=progress, force=force, verify=verify)
    return BackupResult(path=target, bytes=result.bytes, jobs=result.jobs,
                        dead_letters=result.dead_letters, schema_version=result.schema_version,
                        seconds=time.monotonic() - started, verified=verify)


def restore(src: str | os.PathLike[str], db_path: str | os.PathLike[str], *,
            keep_old: bool = True, progress: Progress | None = None,
            stale_after: float = config.WORKER_STALE_AFTER) -> RestoreResult:
    """Replace the SQLite database ``db_path`` with the backup ``src``, then migrate it.

    Refused (:class:`DatabaseInUse`) while another process has ``db_path`` open or a worker's
    heartbeat is younger than ``stale_after`` seconds; refused (:class:`BackupRefused`) for a
    ``src`` that is missing, not a persistent-queue database, fails its integrity check or has
    a schema newer than this code. The replaced database is kept as
    ``<db>.before-restore-<UTC time>`` (its WAL checkpointed into it first) unless
    ``keep_old`` is False. A symlink ``db_path`` is followed: the file it names is replaced.
    Do not call it from a process that has ``db_path`` open.
    """
    from .queue import Queue  # the migration; imported late (the queue imports much)

    if is_postgres_url(os.fspath(db_path)):
        raise BackupRefused("a PostgreSQL database is restored with pg_restore "
                            "(pg_restore --clean --dbname URL FILE)")
    # the database itself, not a symlink to it: its -shm (who has it open) is beside it
    source, target = _existing_database(src), Path(os.path.realpath(_sqlite_path(db_path)))
    folder = _found(target.parent)
    if folder is None or not stat.S_ISDIR(folder.st_mode):
        raise BackupRefused(f"the folder {target.parent} does not exist")
    _check_distinct(source, target)
    _check_not_in_use(target, stale_after)  # fail fast, before the copy
    _check_whole(source)
    with _open(source, readonly=True) as conn:
        restored_version = _check_queue_database(conn, source)
        if restored_version > len(queries.migrations("sqlite")):
            raise BackupRefused(
                f"{source} has schema version {restored_version}; this version of "
                f"persistent-queue knows up to {len(queries.migrations('sqlite'))}")
        _integrity(conn, source, BackupRefused)
        temp = _copy(conn, target, progress=progress, force=True, verify=False, place=False)
    try:
        _take_owner_and_mode(temp.path, target)
        kept = _set_aside(target, stale_after, keep_old)
        os.replace(temp.path, target)
        _sync_folder(target.parent)
    except OSError as exc:  # a folder whose files this user may not rename (sticky, ...)
        _discard(temp.path)
        raise BackupError(
            f"cannot put the copy in place of {target}: {exc.strerror or exc}") from None
    except BaseException:
        _discard(temp.path)
        raise
    with Queue(target, durability="full") as queue:
        version = queue.schema_version()
    return RestoreResult(path=target, kept=kept, jobs=temp.jobs, dead_letters=temp.dead_letters,
                         restored_version=restored_version, schema_version=version)


def pg_dump_command(url: str, dest: str) -> tuple[str, list[str], dict[str, str]]:
    """The ``pg_dump`` run that backs up the PostgreSQL database ``url`` into ``dest``
    (custom format, for ``pg_restore``): the command line to show (password masked), its
    argv (URL without the password) and the environment entries it needs (``PGPASSWORD``)."""
    password = password_of(url)
    bare = without_password(url)
    argv = ["pg_dump", "--format=custom", "--no-owner", f"--file={dest}", f"--dbname={bare}"]
    shown = shlex.join([*argv[:-1], f"--dbname={mask_url(url)}"])
    return shown, argv, ({"PGPASSWORD": urllib.parse.unquote(password)} if password else {})


def pg_dump(url: str, dest: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Back up the PostgreSQL database ``url`` into ``dest`` with ``pg_dump`` (on PATH),
    through a temporary file renamed on success. :class:`BackupRefused` when ``pg_dump`` is
    missing or ``dest`` is refused (as for :func:`backup`); :class:`BackupError` when
    ``pg_dump`` fails (its message, password masked)."""
    target = Path(dest)
    _check_destination(target, force=force)
    if shutil.which("pg_dump") is None:
        raise BackupRefused("pg_dump is not on PATH (install the PostgreSQL client tools)")
    temp = _temp_beside(target)
    _, argv, env = pg_dump_command(url, os.fspath(temp))
    try:
        done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed (exit {done.returncode}): "
                              f"{scrub(done.stderr.strip(), url)[:500]}")
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        _place(temp, target, force=force)
    except BaseException:
        _discard(temp)
        raise
    return target


# -- the copy ---------------------------------------------------------------------------------


def _copy(src: sqlite3.Connection, dest: Path, *, progress: Progress | None, force: bool,
          verify: bool, place: bool = True) -> BackupResult:
    """Copy ``src`` into a temporary file beside ``dest``; check it; rename it to ``dest``
    (``place``) or return it under its temporary name."""
    total = int(src.execute("PRAGMA page_count").fetchone()[0]) * int(
        src.execute("PRAGMA page_size").fetchone()[0])
    temp = _temp_beside(dest)
    started = time.monotonic()
    try:
        with _open(temp) as out:
            out.execute("PRAGMA journal_mode = OFF")  # a new file: nothing to roll back to
            try:
                with _watch(temp, total, progress):
                    src.backup(out, pages=-1)  # one step, one snapshot: see the docstring
            except sqlite3.Error as exc:
                raise BackupError(f"the copy to {dest} failed: {exc}") from exc
            out.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
            if verify:
                _integrity(out, dest, BackupError)
            row = out.execute(Q["backup_counts"]).fetchone()
            version = int(out.execute("PRAGMA user_version").fetchone()[0])
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        if place:
            _place(temp, dest, force=force)
    except BaseException:
        _discard(temp)
        raise
    final = dest if place else temp
    return BackupResult(path=final, bytes=final.stat().st_size, jobs=row[0],
                        dead_letters=row[1], schema_version=version,
                        seconds=time.monotonic() - started, verified=verify)


def _temp_beside(dest: Path) -> Path:
    """A new empty file in ``dest``'s folder, renamed to ``dest`` once written; created as
    any new file is (mode 0666 less the umask), not private as ``mkstemp`` makes it."""
    name = os.fsencode(dest.name)[:_PARTIAL_NAME_BYTES]  # a long DEST is a legal name too
    for _ in range(100):
        temp = dest.parent / f".{os.fsdecode(name)}.{secrets.token_hex(4)}.partial"
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise BackupRefused(
                f"cannot write in {dest.parent.resolve()}: {exc.strerror}") from None
        return temp
    raise BackupError(f"no free temporary name beside {dest}")


def _discard(temp: Path) -> None:
    """Delete a temporary copy and any journal SQLite left beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{temp}{suffix}").unlink(missing_ok=True)


def _take_owner_and_mode(temp: Path, db: Path) -> None:
    """Give the copy the replaced database's mode (and owner, when allowed: a restore run
    as root must leave a database the service's user can still write)."""
    try:
        found = db.stat()
    except FileNotFoundError:
        return
    os.chmod(temp, stat.S_IMODE(found.st_mode))
    with contextlib.suppress(PermissionError):
        os.chown(temp, found.st_uid, found.st_gid)


@contextlib.contextmanager
def _watch(path: Path, total: int, progress: Progress | None) -> Iterator[None]:
    """Report the size of ``path`` to ``progress`` from a thread while the block runs."""
    if progress is None:
        yield
        return
    done = threading.Event()

    def look() -> None:
        while not done.wait(_PROGRESS_EVERY):
            with contextlib.suppress(OSError):
                progress(min(path.stat().st_size, total), total)

    watcher = threading.Thread(target=look, name="pq-backup-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
    progress(total, total)


def _place(temp: Path, dest: Path, *, force: bool) -> None:
    """Rename ``temp`` to ``dest``: atomically, and without ``force`` never over a file that
    appeared meanwhile (a hard link fails if ``dest`` exists)."""
    try:
        if force:
            os.replace(temp, dest)
        else:
            _link_or_rename(temp, dest)
    except FileExistsError:
        raise BackupRefused(f"{dest} exists (pass force to overwrite it)") from None
    except OSError as exc:
        raise BackupError(f"cannot write {dest}: {exc}") from exc
    _sync_folder(dest.parent)


def _link_or_rename(temp: Path, dest: Path) -> None:
    """Link ``temp`` as ``dest`` (fails if ``dest`` exists), then unlink ``temp``; on a file
    system without hard links (FAT, exFAT, some network shares) rename it after a last look
    that ``dest`` is still free."""
    try:
        os.link(temp, dest)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(dest):
            raise FileExistsError(dest) from None
        os.rename(temp, dest)
    else:
        temp.unlink()


# -- checks -----------------------------------------------------------------------------------


def _sqlite_path(db: str | os.PathLike[str]) -> str:
    """The file of a SQLite path or ``sqlite:///path`` URL, as ``Queue`` reads it."""
    text = os.fspath(db)
    scheme, sep, rest = text.partition("://")
    return rest if sep and scheme == "sqlite" else text


def _existing_database(path: str | os.PathLike[str]) -> Path:
    found = Path(os.path.abspath(path))
    st = _found(found)
    if st is None:
        raise BackupRefused(f"no database at {found}")
    if not stat.S_ISREG(st.st_mode):
        raise BackupRefused(f"{found} is not a file")
    return found


def _check_destination(dest: Path, *, force: bool) -> None:
    folder = _found(dest.parent)
    if folder is None or not stat.S_ISDIR(folder.st_mode):
        raise BackupRefused(f"the folder {dest.parent.resolve()} does not exist")
    found = _found(dest)
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise BackupRefused(f"{dest} is a folder; name the backup file")
    if found is not None and not force:
        raise BackupRefused(f"{dest} exists (pass force to overwrite it)")


def _found(path: Path) -> os.stat_result | None:
    """``path``'s status, None if there is nothing; :class:`BackupRefused` if this user may
    not look (a folder on the way it may not enter)."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise BackupRefused(f"cannot reach {path}: {exc.strerror}") from None


def _check_distinct(source: Path, other: Path) -> None:
    """Refuse a copy onto the database itself (or onto its ``-wal`` or ``-shm``)."""
    same, real = False, os.path.realpath(source)  # SQLite names its -wal after the real path
    with contextlib.suppress(OSError):
        same = os.path.samefile(source, other)
    if same or os.path.realpath(other) in {f"{real}-wal", f"{real}-shm"}:
        raise BackupRefused(f"{other} is the database itself, or one of its files")


def _check_queue_database(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of a persistent-queue database; else :class:`BackupRefused`."""
    try:
        tables = conn.execute(Q["backup_tables"]).fetchone()[0]
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.OperationalError as exc:  # "readonly": no -wal, -shm and none may be made
        raise BackupRefused(
            f"cannot read {path} ({exc}): SQLite reads a database in WAL mode through its -wal "
            f"and -shm files, which this user can neither open nor create in "
            f"{path.parent}") from None
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{path} is not a SQLite database ({exc})") from None
    if tables < 4 or version < 1:
        raise BackupRefused(f"{path} is not a persistent-queue database")
    return version


def _check_whole(path: Path) -> None:
    """Refuse a database file cut short (a copy whose transfer was interrupted): SQLite reads
    the missing end of a page as zeros, and ``integrity_check`` does not look inside a row's
    text, so a job's payload would come back with NUL bytes in it."""
    wal = _found(Path(f"{path}-wal"))
    if wal is not None and wal.st_size > 0:
        return  # pages past the file's end may be in its WAL
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return  # not a database: the next check says so
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] != header[92:96]:  # the header's page count is stale: not to be used
        pages = 0
    size = path.stat().st_size
    if page >= 512 and (size % page or pages * page > size):
        raise BackupRefused(
            f"{path} is cut short: {size} bytes, where its header says {pages} pages of "
            f"{page} bytes (a copy whose transfer was interrupted?)")


def _integrity(conn: sqlite3.Connection, path: Path, error: type[BackupError]) -> None:
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)").fetchall()]
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    if rows != ["ok"]:
        raise error(f"{path} fails its integrity check: {'; '.join(rows)[:500]}")


def _check_not_in_use(db: Path, stale_after: float) -> None:
    """:class:`DatabaseInUse` if a worker's heartbeat is fresh or a process has ``db`` open
    (even deleted: its -shm is still there, locked)."""
    if db.exists():
        with contextlib.suppress(sqlite3.DatabaseError), _open(db, readonly=True) as conn:
            live = conn.execute(Q["backup_live_workers"],
                                {"since": time.time() - stale_after}).fetchall()
            if live:
                names = ", ".join(f"{r[0]} ({r[1]}, pid {r[3]} on {r[2]})" for r in live[:5])
                raise DatabaseInUse(f"{db} is in use: workers running (heartbeat within "
                                    f"{stale_after:g} s): {names}")
    with _shm_lock(db):
        pass


@contextlib.contextmanager
def _shm_lock(db: Path) -> Iterator[None]:
    """Hold SQLite's dead-man-switch byte of ``db``'s ``-shm`` exclusively; refuse
    (:class:`DatabaseInUse`) when another process holds it, that is has ``db`` open."""
    shm = Path(f"{db}-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        yield  # no process has the database open in WAL mode
        return
    except PermissionError:
        raise BackupRefused(f"cannot tell whether {db} is in use: {shm} is not writable by "
                            "this user (run this as the user that runs the queue)") from None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
        except OSError:
            raise DatabaseInUse(f"{db} is in use: another process has it open "
                                "(stop its producers, consumers and servers)") from None
        yield
    finally:
        os.close(fd)


def _set_aside(db: Path, stale_after: float, keep_old: bool) -> Path | None:
    """Checkpoint the database being replaced and move it (and any WAL left) aside, or delete
    it (``keep_old=False``); returns where it was kept."""
    if not db.exists():  # deleted by hand, and no process has it open (checked)
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return None
    _check_not_in_use(db, stale_after)
    with contextlib.suppress(sqlite3.DatabaseError), _open(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the last close removes -wal, -shm
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = db.with_name(f"{db.name}.before-restore-{stamp}")
    for n in itertools.count(1):  # two restores in one second keep both databases
        if not (kept.exists() or Path(f"{kept}-wal").exists()):
            break
        kept = db.with_name(f"{db.name}.before-restore-{stamp}-{n}")
    with _shm_lock(db):  # held (no SQLite connection of ours now) across the renames
        if keep_old:
            os.replace(db, kept)
        else:
            db.unlink()
        wal = Path(f"{db}-wal")
        if wal.exists():  # a WAL SQLite could not checkpoint: it belongs to the kept file
            if keep_old:
                os.replace(wal, f"{kept}-wal")
            else:
                wal.unlink()
        Path(f"{db}-shm").unlink(missing_ok=True)
    return kept if keep_old else None


@contextlib.contextmanager
def _open(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{urllib.parse.quote(os.fspath(path))}?mode={'ro' if readonly else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupRefused(f"cannot open {path}: {exc}") from None
    try:
        yield conn
    finally:
        conn.close()


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

