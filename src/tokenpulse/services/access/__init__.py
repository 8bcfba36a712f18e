"""Access control services (SPEC §8): stored API keys and their cache, session tokens."""
