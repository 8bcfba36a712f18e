"""Replay: recorded real provider data played through the live parsers, for offline use."""
