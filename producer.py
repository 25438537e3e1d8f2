"""Publish jobs: ``python producer.py --queue emails --input data/input.txt --follow``.

The same as ``pq produce`` (:mod:`persistent_queue.commands.produce`): a file, one message per
line (``--follow`` keeps watching it), stdin (``--input -``) or a synthetic load (``--rate 50/s
--count 1000``). Every flag can also come from a ``PQ_*`` environment variable. Exit codes: 0
done or stopped cleanly, 1 the database failed, 2 bad configuration.
"""

from persistent_queue.commands.produce import produce

if __name__ == "__main__":
    produce()
