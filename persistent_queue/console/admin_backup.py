"""Admin console: make an online backup of the SQLite database and download it.

The copy is made as ``pq backup`` makes it (one consistent snapshot, integrity-checked) into
a temporary folder, read into the session and offered by a download button; the temporary
file is deleted at once. A copy is held in memory, so files above :data:`MAX_BYTES` are left
to ``pq backup``. On PostgreSQL the page shows the ``pg_dump`` command instead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import streamlit as st

from ..backup import backup, pg_dump_command
from ..storage.postgres.url import is_postgres_url
from .frames import size
from .markup import escape_markdown
from .session import db_path, describe

#: The largest copy the console offers for download (it is held in the server's memory).
MAX_BYTES = 512 * 1024 * 1024
_COPY_KEY = "admin_backup_copy"


def render_backup() -> None:
    """A button that backs the database up, then a button that downloads the copy."""
    st.header("Backup")
    db = db_path()
    if is_postgres_url(db):
        st.info("A PostgreSQL database is backed up with pg_dump (restore with pg_restore):")
        st.code(pg_dump_command(db, "queue.dump")[0], language="bash")
        return
    st.caption("A consistent copy of the live database, made while producers and consumers "
               "run, checked with PRAGMA integrity_check. For large files use `pq backup`; "
               "to restore, stop every process and run `pq restore FILE`.")
    if Path(db).exists() and Path(db).stat().st_size > MAX_BYTES:
        st.warning(escape_markdown(
            f"The database is larger than {size(MAX_BYTES)}: run `pq backup DEST` on the "
            "server instead."))
        return
    if st.button("Make a backup", key="backup_make"):
        try:
            with st.spinner("Copying…"):
                st.session_state[_COPY_KEY] = _backup_bytes()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            st.session_state.pop(_COPY_KEY, None)
            st.error(escape_markdown(describe(exc)))
    made = st.session_state.get(_COPY_KEY)
    if made is None:
        return
    data, name, summary = made
    st.success(escape_markdown(summary))
    st.download_button("Download the backup", data=data, file_name=name,
                       mime="application/vnd.sqlite3", key="backup_download")


def _backup_bytes() -> tuple[bytes, str, str]:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{Path(db_path()).stem}-{stamp}.db"
    with tempfile.TemporaryDirectory(prefix="pq-backup-") as folder:
        result = backup(db_path(), Path(folder) / name)
        data = result.path.read_bytes()
    summary = (f"Backup {name}: {result.jobs} jobs, {result.dead_letters} dead letters, "
               f"{size(result.bytes)}, schema version {result.schema_version}, integrity ok.")
    return data, name, summary
