"""The optional parts of the package (pip extras) and a clear error when one is missing.

``pip install persistent-queue`` brings only the library core (``Queue``, the worker, producer,
scheduler and janitor). The rest comes with an extra:

* ``[api]``: the HTTP API (``pq api``, ``uvicorn persistent_queue.api:app``);
* ``[console]``: the Streamlit consoles (``pq console ops|admin``);
* ``[postgres]``: ``postgresql://`` databases;
* ``[supervisor]``: supervisord with the RPC interface of ``supervisor/supervisord.conf``;
* ``[all]``: every one of them.
"""

from __future__ import annotations

import importlib
from typing import Final

from .errors import MissingDependency

#: The modules each extra provides (imported to check that it is installed).
EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "api": ("fastapi", "uvicorn", "prometheus_client", "fastapi_offline"),
    "console": ("streamlit", "pandas", "altair"),
    "postgres": ("psycopg",),
    "supervisor": ("supervisor",),
}


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra``."""
    return f"pip install 'persistent-queue[{extra}]'"


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported (empty when it is installed)."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def require_extra(extra: str, *, what: str) -> None:
    """Raise :class:`MissingDependency` naming ``extra`` unless its modules import.

    ``what`` says what needs it, e.g. ``"pq api"`` or ``"a postgresql:// database"``.
    """
    missing = missing_modules(extra)
    if missing:
        raise MissingDependency(
            f"{what} needs the [{extra}] extra ({', '.join(missing)} not installed): "
            f"{install_hint(extra)}")
