"""Logging for the processes: structured lines on stdout and the rotated job logs.

``setup_logging`` sends every record to stdout as one JSON object per line (supervisord keeps
and rotates that stream). :class:`JobLog` writes ``processed_log.csv`` (one row per finished
attempt) and ``error_log.txt`` (one entry per failure), rotated by size. Several consumer
processes share those files, so rotation and writes happen under a file lock. Rows of
``processed_log.csv`` are written in batches (at most :data:`FLUSH_INTERVAL` old, and at
close): one lock and one write per batch, not per job.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Attributes every LogRecord has; anything else came from ``extra=`` and is emitted as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

PROCESSED_COLUMNS = ["time", "worker", "job_id", "queue", "attempt", "duration_ms", "result"]
#: The oldest a row of ``processed_log.csv`` waits in memory before it is written (seconds).
FLUSH_INTERVAL = 0.2
#: Rows written at once at the most.
FLUSH_ROWS = 1000

_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode


class _Seconds:
    """``time.strftime`` of a whole second, made once per second (a log line a job)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.second, self.text = -1, ""

    def __call__(self, moment: float) -> str:
        second = int(moment)
        if second != self.second:  # a race rewrites both with the same values
            self.text, self.second = time.strftime(self.pattern, time.gmtime(second)), second
        return self.text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the ``extra`` fields."""

    def __init__(self) -> None:
        super().__init__()
        self._seconds = _Seconds("%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": f"{self._seconds(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return _encode(data)


def setup_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Send the root logger to stdout, as JSON lines (default) or plain text."""
    handler = logging.StreamHandler(sys.stdout)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Neither format shows where a call was made or by which multiprocessing process: skip
    # working those out for every record (the logging HOWTO's "Optimization"; 32 -> 14 us a
    # consumer's line per job).
    logging._srcfile = None
    logging.logMultiprocessing = False


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file that several processes may append to at once.

    Each write takes an exclusive ``flock`` on ``<file>.lock``, reopens the file if another
    process rotated it, rotates if it is full, and writes the record in one piece. A ``header``
    line (e.g. CSV column names) starts every new file.
    """

    def __init__(self, filename: str | os.PathLike[str], *, max_bytes: int, backup_count: int,
                 header: str | None = None) -> None:
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        self.header = header
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count,
                         encoding="utf-8", delay=True)
        self._lock_path = f"{self.baseFilename}.lock"

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _open(self) -> io.TextIOWrapper:
        stream = super()._open()
        if self.header is not None and stream.tell() == 0:
            stream.write(self.header + "\n")
            stream.flush()
        return stream

    def _rotated_elsewhere(self) -> bool:
        if self.stream is None:
            return False
        try:
            return os.stat(self.baseFilename).st_ino != os.fstat(self.stream.fileno()).st_ino
        except FileNotFoundError:
            return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self._file_lock():
                if self.stream is not None and self._rotated_elsewhere():
                    self.stream.close()
                    self.stream = None
                super().emit(record)  # rotates first when the record would not fit
        except Exception:  # pragma: no cover - a full disk must not stop the worker
            self.handleError(record)


def _csv_line(values: list[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


_utc_second = _Seconds("%Y-%m-%dT%H:%M:%SZ")


class JobLog:
    """``processed_log.csv`` and ``error_log.txt`` in ``directory``, each rotated by size.

    Rows of ``processed_log.csv`` are kept in memory until the oldest is
    :data:`FLUSH_INTERVAL` old (written by the next row, or by :meth:`flush` from a thread
    that calls it regularly), and at :meth:`close`. Any thread may call any method.
    """

    def __init__(self, directory: str | os.PathLike[str], *, worker: str,
                 max_bytes: int = 10 * 1024 * 1024, backup_count: int = 5) -> None:
        self.worker = worker
        folder = Path(directory)
        self.processed_path = folder / "processed_log.csv"
        self.error_path = folder / "error_log.txt"
        self._processed = SharedRotatingFileHandler(
            self.processed_path, max_bytes=max_bytes, backup_count=backup_count,
            header=_csv_line(list(PROCESSED_COLUMNS)))
        self._errors = SharedRotatingFileHandler(
            self.error_path, max_bytes=max_bytes, backup_count=backup_count)
        for handler in (self._processed, self._errors):
            handler.setFormatter(logging.Formatter("%(message)s"))
        self._rows: list[list[Any]] = []
        self._rows_lock = threading.Lock()
        self._write_lock = threading.Lock()  # batches reach the file in the order taken
        self._chunk_bytes = max(1, max_bytes // 4)  # written at once at the most

    @staticmethod
    def _now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def processed(self, *, job_id: int, queue: str, attempt: int, duration: float,
                  result: str) -> None:
        """One row: a job attempt finished with ``result`` (acked, failed, retry, ...)."""
        now = time.time()
        row = [now, self.worker, job_id, queue, attempt, f"{duration * 1000:.1f}", result]
        with self._rows_lock:
            rows = self._rows
            rows.append(row)
            due = len(rows) >= FLUSH_ROWS or now - rows[0][0] >= FLUSH_INTERVAL
        if due:
            self.flush()

    def flush(self, *, due_only: bool = False) -> None:
        """Write the rows kept in memory (with ``due_only``, only once the oldest is
        :data:`FLUSH_INTERVAL` old)."""
        with self._write_lock:
            with self._rows_lock:
                rows = self._rows
                if not rows or (due_only and time.time() - rows[0][0] < FLUSH_INTERVAL):
                    return
                self._rows = []
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="")
            chunk: list[str] = []
            size = 0
            for row in rows:
                row[0] = _utc_second(row[0])
                writer.writerow(row)
                line = buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                chunk.append(line)
                size += len(line) + 1
                if size >= self._chunk_bytes:  # files still rotate near their size
                    self._emit_rows(chunk)
                    chunk, size = [], 0
            if chunk:
                self._emit_rows(chunk)

    def _emit_rows(self, lines: list[str]) -> None:
        self._processed.emit(logging.makeLogRecord({"msg": "\n".join(lines)}))

    def error(self, *, job_id: int, queue: str, attempt: int, error: str) -> None:
        """One entry: the error (with traceback) of a failed attempt."""
        text = f"{self._now()} worker={self.worker} job={job_id} queue={queue} " \
               f"attempt={attempt}\n{error.rstrip()}\n"
        self._errors.emit(logging.makeLogRecord({"msg": text}))

    def close(self) -> None:
        """Write the rows kept, then close both files."""
        self.flush()
        self._processed.close()
        self._errors.close()
