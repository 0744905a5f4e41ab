"""Where the shared traces live; does filesystem lookups."""

from __future__ import annotations

import os
from pathlib import Path

from pallet.model.errors import PalletError

__all__ = ["traces_dir"]


def traces_dir() -> Path:
    """``$PALLET_TRACES``, else the nearest ``shared/traces`` above the working
    directory or above this package's source (the project's ``../shared/traces``)."""
    env = os.environ.get("PALLET_TRACES")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise PalletError(f"PALLET_TRACES={env} is not a directory")
        return path
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *Path.cwd().parents, *here.parents):
        candidate = base / "shared" / "traces"
        if candidate.is_dir():
            return candidate
    raise PalletError(
        "cannot find the shared traces: set PALLET_TRACES to the folder holding "
        "alibaba_gpu_2023/, azure_vm_2017/, google_2011/ and alibaba_2018/"
    )
