"""The node daemon: fingerprints the machine, pulls its desired tasks, runs them isolated, reports status."""
