"""Benchmarks: throughput ratios measured in one run (never timed assertions)."""
