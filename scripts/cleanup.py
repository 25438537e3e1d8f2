"""The janitor: delete old done jobs and dead letters, and forget old stopped and lost
workers, once or on a schedule.

    python scripts/cleanup.py --older-than 7d [--dead-older-than 30d] [--workers-older-than 7d]
                              [--vacuum] [--every 3600]

The same as ``pq janitor`` (:mod:`persistent_queue.commands.janitor`). Durations are seconds or
a number with s, m, h or d. With ``--every`` it repeats until SIGTERM/SIGINT. Exit codes: 0
done, 1 the database failed, 2 bad arguments.
"""

from persistent_queue.commands.janitor import janitor

if __name__ == "__main__":
    janitor()
