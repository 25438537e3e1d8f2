"""The ``pq`` subcommands, one module per area; :func:`register` adds them to the group."""

from __future__ import annotations

import click

from . import dlq, jobs, ops, queues, workflows


def register(group: click.Group) -> None:
    """Add every subcommand to the root ``pq`` group."""
    for module in (jobs, queues, dlq, ops, workflows):
        for command in module.COMMANDS:
            group.add_command(command)
