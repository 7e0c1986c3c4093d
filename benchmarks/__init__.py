"""Benchmarks: accuracy, speed and startup against the peers (run with ``make bench``)."""
