"""The Streamlit consoles' pages and helpers.

``pq console ops|admin`` runs Streamlit on :mod:`.apps` (``ops_console.py`` and
``admin_console.py`` at the project root are the same), which only call :func:`ops.main` and
:func:`admin.main`; every page lives here. Pages talk to the database only through
:class:`~persistent_queue.Queue`, opened per script run (see :mod:`.session`), so no read
transaction or connection outlives a rerun.
"""

from __future__ import annotations
