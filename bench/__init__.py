"""Benchmarks: ratios against a baseline measured in the same run, written to BENCHMARKS.md."""
