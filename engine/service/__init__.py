"""``conveyor engine``: the long-running service (ticks, internal actions, sending) and its health."""
