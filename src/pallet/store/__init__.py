"""The Store protocol (revisioned keys, compare-and-set transactions, watches, leases) and its backends."""
