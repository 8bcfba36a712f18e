"""api.tokens."""
