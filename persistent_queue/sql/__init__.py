"""SQL kept together: schema migrations and named queries, loaded once per backend.

A query file holds blocks that start with ``-- name: <name>``; comments after the name line
are kept as documentation and do no harm to SQLite.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_named_queries(text: str) -> dict[str, str]:
    """Split a query file into ``{name: sql}``."""
    queries: dict[str, str] = {}
    parts = _NAME_LINE.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";").strip()
    return queries


@cache
def queries(backend: str) -> dict[str, str]:
    """The named queries of a backend (``"sqlite"`` or ``"postgres"``).

    Every ``*.sql`` file of the backend's folder that is not a numbered migration contributes
    its blocks (``queries.sql`` for the core transitions, one file per further concern).
    """
    folder = resources.files(__package__).joinpath(backend)
    found: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql") or re.match(r"\d{3}_", entry.name):
            continue
        for name, body in parse_named_queries(entry.read_text("utf-8")).items():
            if name in found:
                raise ValueError(f"query {name!r} is defined in two files of {backend}")
            found[name] = body
    return found


@cache
def migrations(backend: str) -> list[tuple[int, str, str]]:
    """The numbered migrations of a backend as ``(version, filename, sql)``, in order."""
    folder = resources.files(__package__).joinpath(backend)
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{3})_\w+\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"{backend} migrations are not numbered 1..n: {versions}")
    return found
