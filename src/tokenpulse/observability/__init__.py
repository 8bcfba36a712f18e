"""Prometheus metrics and logging set-up, shared by every layer (imports nothing else of ours)."""
