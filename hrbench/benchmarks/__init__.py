"""Micro-benchmarks run as modules, e.g. ``python -m hrbench.benchmarks.dka --batch 32``."""
