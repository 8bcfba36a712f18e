"""services.tokens."""
