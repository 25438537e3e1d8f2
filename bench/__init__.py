"""Benchmarks of persistent-queue against raw SQLite and its peers (see bench/README.md)."""
