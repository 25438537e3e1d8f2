"""Run a consumer: ``python consumer.py --queue emails --handler tasks:send_email``, or for
tasks ``python consumer.py --app tasks:q --queues emails,reports --handler tasks:send_email``.

The same as ``pq worker`` (:mod:`persistent_queue.commands.worker`): every flag can also come
from a ``PQ_*`` environment variable (shown in ``--help``); a flag wins over the environment.
Exit codes: 0 stopped cleanly (warm stop), 1 the database failed, 2 bad configuration, 3 cold
stop (jobs in hand were given back).
"""

from persistent_queue.commands.worker import worker

if __name__ == "__main__":
    worker()
