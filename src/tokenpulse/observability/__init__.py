"""Metrics and logging set-up."""
