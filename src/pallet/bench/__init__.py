"""Benchmarks behind ``pallet bench``: each prints a table with its baseline measured
in the same run, and ``--json`` for machines."""
