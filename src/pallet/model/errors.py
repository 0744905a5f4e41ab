"""The exception tree users can meet (``pallet.errors``), where model code looks for it; pure."""

from __future__ import annotations

from pallet.errors import PalletError, PlanError, TraceError, ValidationError

__all__ = ["PalletError", "PlanError", "TraceError", "ValidationError"]
