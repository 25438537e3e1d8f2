"""Integrations with frameworks: each submodule needs its framework installed (an extra)."""
