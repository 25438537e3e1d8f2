"""Named SQL statements and numbered migrations, loaded once per dialect.

A statement file holds blocks that start with ``-- name: <name>``; comments after the name line
are kept as documentation. The statements both dialects share live once in ``storage/sql/``,
written with SQLite's ``:name`` placeholders (translated to psycopg's ``%(name)s`` for
PostgreSQL); each dialect's own statements, its migrations (``NNN_*.sql``) and its schema
snapshot (``schema.sql``) live in ``storage/<dialect>/sql/``. A name defined twice, in one file
or across the shared and a dialect's files, is an error: a dialect never silently overrides.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.abc import Traversable

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"(\d{3})_\w+\.sql")
#: The pieces of a statement the placeholder translation must step over or rewrite: comments,
#: string literals, ``::type`` casts, ``:name`` placeholders and a literal ``%``.
_TOKEN = re.compile(r"--[^\n]*|'(?:[^']|'')*'|::|:(\w+)|%")
#: The dialects, by the name of their package under ``storage/``.
DIALECTS = ("sqlite", "postgres")


def parse_named_queries(text: str) -> dict[str, str]:
    """Split a statement file into ``{name: sql}``."""
    queries: dict[str, str] = {}
    parts = _NAME_LINE.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";").strip()
    return queries


def to_pyformat(statement: str) -> str:
    """``:name`` placeholders as psycopg's ``%(name)s``; a ``%`` anywhere else doubled (psycopg
    reads every one, in literals and comments too); ``::type`` casts, and a ``:name`` inside a
    string literal or a comment, left as they are."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f"%({match.group(1)})s"
        return match.group(0).replace("%", "%%")

    return _TOKEN.sub(replace, statement)


def _folder(*parts: str) -> Traversable:
    folder = resources.files(__package__)
    for part in parts:
        folder = folder.joinpath(part)
    return folder


def _statement_files(folder: Traversable) -> list[Traversable]:
    return sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")
         and not _MIGRATION.fullmatch(entry.name) and entry.name != "schema.sql"),
        key=lambda entry: entry.name)


@cache
def shared_queries(dialect: str) -> dict[str, str]:
    """The statements both dialects run, with ``dialect``'s placeholders."""
    found: dict[str, str] = {}
    for entry in _statement_files(_folder("sql")):
        for name, body in parse_named_queries(entry.read_text("utf-8")).items():
            if name in found:
                raise ValueError(f"query {name!r} is defined in two shared files")
            found[name] = to_pyformat(body) if dialect == "postgres" else body
    return found


@cache
def queries(dialect: str) -> dict[str, str]:
    """Every named statement of a dialect (``"sqlite"`` or ``"postgres"``): the shared ones
    and the dialect's own, each name defined exactly once."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}")
    found = dict(shared_queries(dialect))
    for entry in _statement_files(_folder(dialect, "sql")):
        for name, body in parse_named_queries(entry.read_text("utf-8")).items():
            if name in found:
                raise ValueError(f"query {name!r} of {dialect}/sql/{entry.name} is defined "
                                 "twice (in the shared statements or another file)")
            found[name] = body
    return found


@cache
def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """The numbered migrations of a dialect as ``(version, filename, sql)``, in order."""
    found = []
    for entry in _folder(dialect, "sql").iterdir():
        match = _MIGRATION.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


def schema(dialect: str) -> str:
    """The dialect's schema snapshot (``schema.sql``): what the migrations build, in order."""
    return _folder(dialect, "sql").joinpath("schema.sql").read_text("utf-8")
