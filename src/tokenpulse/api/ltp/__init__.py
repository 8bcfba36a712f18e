"""api.ltp."""
