"""HTTP edge: Marathon-compatible /v2, Pallet's /v1, the agent protocol and /metrics. Pydantic lives here only.

``create_api(control, info)`` builds the FastAPI application; ``pallet.api.marathon`` holds
Marathon's shapes.
"""

from pallet.api.server import create_api

__all__ = ["create_api"]
