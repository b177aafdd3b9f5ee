"""Benchmarks run by ``nox -s bench [-- NAME ...]``; each module has ``run() -> list[Figure]``."""
