"""The ``pq`` subcommands, one module per area; :func:`register` adds them to the group.

The processes (``worker``, ``produce``, ``scheduler``, ``janitor``, ``api``, ``console``) are
commands too; ``api`` and ``console`` import their extras only when they run.
"""

from __future__ import annotations

import click

from . import (
    api,
    backup,
    console,
    dlq,
    janitor,
    jobs,
    ops,
    produce,
    queues,
    scheduler,
    worker,
    workflows,
)


def register(group: click.Group) -> None:
    """Add every subcommand to the root ``pq`` group."""
    for module in (jobs, queues, dlq, ops, workflows, worker, produce, scheduler, janitor, api,
                   console, backup):
        for command in module.COMMANDS:
            group.add_command(command)
