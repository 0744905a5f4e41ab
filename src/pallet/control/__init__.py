"""The master's control loops: app controller, scheduling worker, serial applier, node monitor, event bus."""
