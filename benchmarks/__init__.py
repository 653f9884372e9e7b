"""``conveyor bench`` and ``make load``: the benchmark and the load harness (not on the runtime path)."""
