"""Imported only by the process executor's forkserver (a preload module), never elsewhere.

A stop signal sent to the worker's whole process group (``supervisorctl stop`` with
``stopasgroup``, Ctrl-C in a terminal) must reach the worker alone: it decides whether the jobs
in hand finish (warm stop) or are killed. The forkserver ignores SIGINT by itself; this makes
it ignore SIGTERM too, so it outlives a warm stop and keeps reporting its children's exits. It
still exits when the worker does (its pipe from the worker closes). Its children inherit the
disposition and replace it with a handler of their own (see ``executor_child.child_main``), so
programs a handler starts get the default one back.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
