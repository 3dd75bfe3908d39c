"""Benchmarks, run as modules: `python -m bench.<name>` (root, real namespaces and JVMs)."""
