"""The test suite. Importing it (pytest does, before any test module) sets the environment
every test, and every process a test starts, runs in."""

import os

# Every test database keeps a small disk reserve: the default, 4 MiB allocated per file,
# would fill the disk over a thousand throw-away databases.
os.environ.setdefault("PQ_DISK_RESERVE_BYTES", str(256 * 1024))

# `make test` runs pytest inside make: the documented `make` commands a test runs must see a
# user's shell, not a sub-make ("make[1]: Entering directory ..." in their output).
for _name in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
    os.environ.pop(_name, None)
