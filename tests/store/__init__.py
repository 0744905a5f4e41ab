"""Conformance tests of pallet.store, run against every backend."""
