"""sources.coingecko."""
