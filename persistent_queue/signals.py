"""Stop signals for long-running processes: the handler only records the request.

The main loop of a process reads what was requested and acts on it; nothing runs inside the
signal handler but a flag update. The previous handlers are restored on exit.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def on_stop_signals(
    callback: Callable[[int], None], signals: tuple[signal.Signals, ...] = STOP_SIGNALS
) -> Iterator[None]:
    """Call ``callback(signum)`` for every SIGTERM/SIGINT received inside the block."""

    def handle(signum: int, frame: FrameType | None) -> None:
        callback(signum)

    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
