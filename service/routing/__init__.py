"""Per-client routing: the pure policy the ``route`` AGI asks, and the data it needs."""
