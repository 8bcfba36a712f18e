"""services.ltp."""
