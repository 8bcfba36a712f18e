"""Kraken: WebSocket v2 ticker (primary LTP feed) and REST Ticker (fallback)."""
