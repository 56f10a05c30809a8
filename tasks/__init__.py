"""Prefect tasks: the I/O shells around the pure core (collection, AWS lookups)."""
