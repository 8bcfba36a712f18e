"""sources.coinmarketcap."""
