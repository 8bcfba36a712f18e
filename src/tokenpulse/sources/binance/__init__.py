"""Binance spot: combined ``<symbol>@ticker`` streams (LTP feed) and REST ``ticker/24hr``."""
