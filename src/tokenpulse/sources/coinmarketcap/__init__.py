"""CoinMarketCap: the listings/quotes client, its pure parser and the monthly credit budget."""
