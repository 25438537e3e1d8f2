"""Serve the queue over HTTP: ``python api.py [--host 127.0.0.1] [--port 8000] [--db PATH]``.

The same as ``pq api`` (:mod:`persistent_queue.api.server`; settings in
:mod:`persistent_queue.api.settings`): flag > ``PQ_*`` environment > default; the secrets
``PQ_API_TOKEN`` and ``PQ_API_READ_TOKEN`` come from the environment only. Exit code 2 on bad
configuration.
"""

import sys

from persistent_queue.api.server import main
from persistent_queue.api.settings import parse_args

__all__ = ["main", "parse_args"]

if __name__ == "__main__":
    sys.exit(main())
