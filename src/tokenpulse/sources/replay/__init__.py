"""sources.replay."""
