"""What the process commands (``pq worker``, ``pq produce``, ...) share.

Each process command is also a standalone script (``consumer.py`` runs ``pq worker``), so it
has its own ``--db`` (and ``PQ_DB``). Under ``pq``, the group's ``--db`` given on the command
line (``pq --db x.db worker ...``) counts too, unless the command's own flag says otherwise.
"""

from __future__ import annotations

import os
import sys
from typing import TypeVar

import click
from click.core import ParameterSource

from ..extras import install_hint, missing_modules
from .common import EXIT_USAGE, fail

T = TypeVar("T")

HELP = {"help_option_names": ["-h", "--help"]}


def inherited(ctx: click.Context, name: str, value: T) -> T:
    """``value`` of option ``name``, or the ``pq`` group's when only the group's was typed."""
    parent = ctx.parent
    if parent is None or name not in parent.params:
        return value
    if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
        return value
    if parent.get_parameter_source(name) == ParameterSource.COMMANDLINE:
        found: T = parent.params[name]
        return found
    return value


def group_flags(ctx: click.Context, *names: str) -> list[str]:
    """``--name value`` for each of the ``pq`` group's options typed on its command line."""
    parent = ctx.parent
    flags: list[str] = []
    for name in names:
        if parent is not None and parent.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            flags += [f"--{name}", str(parent.params[name])]
    return flags


def need_extra(extra: str, command: str) -> None:
    """Exit 2 with the pip command to run when ``extra`` is not installed."""
    missing = missing_modules(extra)
    if missing:
        fail(f"{command} needs the [{extra}] extra ({', '.join(missing)} not installed): "
             f"{install_hint(extra)}", EXIT_USAGE)


def import_from_cwd() -> None:
    """Make modules of the current directory importable (handlers such as ``tasks:send``),
    as ``python -m`` does."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
