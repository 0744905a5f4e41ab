"""HTTP edge: Marathon-compatible /v2, Pallet's /v1, the agent protocol and /metrics. Pydantic lives here only."""
