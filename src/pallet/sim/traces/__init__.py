"""Readers for the real cluster traces in ``../shared/traces`` (read in place, never copied)."""

from pallet.sim.traces.paths import traces_dir

__all__ = ["traces_dir"]
