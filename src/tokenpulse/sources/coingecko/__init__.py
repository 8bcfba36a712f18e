"""CoinGecko: the coins/markets and market_chart client and its pure parser."""
