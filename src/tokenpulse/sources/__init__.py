"""Provider adapters: pure parsers plus the I/O loops around them."""
