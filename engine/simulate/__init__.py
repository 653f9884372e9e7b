"""``conveyor simulate``: scenarios of deal events run under a virtual clock."""
