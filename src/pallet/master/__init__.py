"""The master: composition root that builds store, control loops and API, and serves them."""
