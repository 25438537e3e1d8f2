"""``pq console ops|admin``: run a Streamlit console (the ``[console]`` extra).

The process becomes ``python -m streamlit run`` on the console's entry script inside the
package (:mod:`persistent_queue.console.apps`), headless, bound to ``--address`` (default
127.0.0.1: put a reverse proxy with TLS in front, and set ``PQ_CONSOLE_PASSWORD``, to expose
it). The database is ``pq --db`` / ``PQ_DB``. Arguments after ``--`` go to Streamlit as they
are (``pq console ops -- --server.baseUrlPath queue``).
"""

from __future__ import annotations

import os
import sys
from importlib import resources

import click
from click.core import ParameterSource

from .process_options import HELP, need_extra

#: Default port of each console.
PORTS = {"ops": 8501, "admin": 8502}

#: Streamlit settings of every console (those of the repository's .streamlit/config.toml).
STREAMLIT_SETTINGS = {
    "server.headless": "true",
    "server.runOnSave": "false",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "viewer",
    "client.showErrorDetails": "none",
}


def streamlit_command(name: str, *, address: str, port: int, extra: tuple[str, ...] = ()
                      ) -> list[str]:
    """The ``python -m streamlit run ...`` command line of console ``name``."""
    script = resources.files("persistent_queue.console.apps").joinpath(f"{name}.py")
    argv = [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.address", address, "--server.port", str(port)]
    for key, value in STREAMLIT_SETTINGS.items():
        argv += [f"--{key}", value]
    return [*argv, *extra]


@click.command(context_settings=HELP)
@click.argument("name", type=click.Choice(sorted(PORTS)))
@click.option("--address", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="TCP port [default: 8501 ops, 8502 admin].")
@click.argument("streamlit_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def console(ctx: click.Context, name: str, address: str, port: int | None,
            streamlit_args: tuple[str, ...]) -> None:
    """Run the NAME console (ops or admin) in Streamlit until SIGTERM/SIGINT."""
    need_extra("console", f"pq console {name}")
    parent = ctx.parent
    if parent is not None and parent.get_parameter_source("db") == ParameterSource.COMMANDLINE:
        os.environ["PQ_DB"] = str(parent.params["db"])
    argv = streamlit_command(name, address=address, port=port or PORTS[name],
                             extra=streamlit_args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


COMMANDS = [console]
