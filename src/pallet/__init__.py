"""Pallet: a datacenter operating system that packs work onto machines as densely as they allow."""

__version__ = "0.1.0"
