"""The exception tree users can meet; pure. A top-level module, outside ``pallet.model``,
so that the CLI and the client can raise and catch these without importing the model
package (its ``__init__`` loads every record type: a tenth of a CLI command's start-up).

PalletError
 ├── ValidationError        a field of user input is wrong (names the field)
 ├── TraceError             a trace file row is malformed (names file, line, field)
 └── PlanError              a plan does not fit the cluster it was made for
"""

from __future__ import annotations

__all__ = ["PalletError", "PlanError", "TraceError", "ValidationError"]


class PalletError(Exception):
    """Base of every error Pallet raises on purpose."""


class ValidationError(PalletError, ValueError):
    """A field of user input is wrong; `field` is a path such as ``/cpus``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TraceError(PalletError):
    """A row of a trace file cannot be read."""

    def __init__(self, path: str, line: int, field: str, message: str) -> None:
        super().__init__(f"{path}:{line}: field {field!r}: {message}")
        self.path = path
        self.line = line
        self.field = field
        self.message = message


class PlanError(PalletError):
    """A plan does not fit the cluster view it is applied to."""

    def __init__(self, request_id: str, node_id: str, reason: str) -> None:
        super().__init__(f"task {request_id} on node {node_id}: {reason}")
        self.request_id = request_id
        self.node_id = node_id
        self.reason = reason
