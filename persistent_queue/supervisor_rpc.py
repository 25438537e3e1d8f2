"""supervisord's RPC interface, where a bare group name addresses the whole group.

supervisorctl reads ``stop consumer`` as the process ``consumer`` of the group ``consumer``
(``supervisor.options.split_namespec``) and asks supervisord to stop exactly that one; the
consumers are ``consumer:consumer_00`` and ``consumer:consumer_01``, so the answer was
"no such process". With this interface (``[rpcinterface:supervisor]`` in
``supervisor/supervisord.conf``) a bare name that names a group without a process of that name
means the whole group, as ``consumer:*`` does: ``start``, ``stop``, ``restart`` and ``signal``
then act on every process of the group. Everything else is supervisor's own interface:
``producer`` (group and process ``producer``) and ``consumer:consumer_00`` mean what they
always did. supervisorctl's ``status NAME`` filters on the client side and is unchanged:
``status`` or ``status consumer:*`` show the group.
"""

from __future__ import annotations

from typing import Any

from supervisor.options import split_namespec
from supervisor.rpcinterface import SupervisorNamespaceRPCInterface


class GroupAwareRPCInterface(SupervisorNamespaceRPCInterface):  # type: ignore[misc]
    """supervisor's ``supervisor`` namespace; a bare group name means ``group:*``."""

    def _getGroupAndProcess(self, name: str) -> tuple[Any, Any]:  # supervisor's name
        group_name, process_name = split_namespec(name)
        group = self.supervisord.process_groups.get(group_name)
        if (group is not None and ":" not in name
                and process_name not in group.processes):
            return group, None  # the callers treat a missing process as "the whole group"
        result: tuple[Any, Any] = super()._getGroupAndProcess(name)
        return result


def make_main_rpcinterface(supervisord: Any) -> GroupAwareRPCInterface:
    """The factory named by ``supervisor.rpcinterface_factory``."""
    return GroupAwareRPCInterface(supervisord)
