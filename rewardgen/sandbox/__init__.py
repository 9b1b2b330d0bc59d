"""Isolation for untrusted reward code: static policy, smoke test, isolated worker process."""
