"""Benchmarks on loopback: a real gunicorn server against the fake LLM (see bench/README.md)."""
