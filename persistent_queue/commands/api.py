"""``pq api`` (also ``api.py``): serve the queue over HTTP with uvicorn (the ``[api]`` extra).

Flags and ``PQ_*`` variables are those of :mod:`persistent_queue.api.settings` (``pq api -h``):
``--host`` (default 127.0.0.1), ``--port`` (default 8000; 0 picks a free one, logged by uvicorn
as ``Uvicorn running on http://127.0.0.1:PORT``), ``--db``, ``--durability``, ``--max-body``,
``--max-wait``, ``--default-queue``, ``--log-level``. Exit code 2 on bad configuration or
without the ``[api]`` extra.
"""

from __future__ import annotations

import sys

import click

from .process_options import group_flags, need_extra


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def api(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Serve the queue over HTTP (FastAPI + uvicorn; pq api -h for the flags)."""
    need_extra("api", "pq api")
    from ..api.server import main

    sys.exit(main([*group_flags(ctx, "db", "durability"), *args], prog="pq api"))


COMMANDS = [api]
