"""Paths inside a task's sandbox, checked the same way by the API and the agent; pure."""

from __future__ import annotations

__all__ = ["dest_path_problem"]


def dest_path_problem(path: str) -> str | None:
    """Why ``path`` is not a place inside a sandbox (absolute, ``..``, empty), or None."""
    if not isinstance(path, str) or not path or "\x00" in path:
        return "must be a non-empty path"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts or not parts:
        return "must be a relative path inside the sandbox (no '..')"
    return None
