"""Latest-value cache: one port, memory and Redis implementations."""
