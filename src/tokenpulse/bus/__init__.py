"""Fan-out of accepted values: the event bus port, the in-process bus and the Redis pub/sub bus."""
