"""The simulator: the same ``core.schedule`` driven over real traces with a virtual clock."""
