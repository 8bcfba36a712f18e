"""Coinbase Exchange: WebSocket ``ticker`` channel (LTP feed) and REST product ticker (fallback)."""
