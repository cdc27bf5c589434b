"""Benchmarks run by hand (not by pytest); see benchmarks/README.md."""
