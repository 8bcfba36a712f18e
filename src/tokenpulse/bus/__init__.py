"""Fan-out of domain events: in-process now, Redis pub/sub for scale-out."""
