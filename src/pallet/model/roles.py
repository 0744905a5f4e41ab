"""Mesos role names: which are valid, and the roles Pallet's Marathon API knows; pure."""

from __future__ import annotations

__all__ = ["PUBLIC_ROLE", "UNRESERVED", "role_messages"]

UNRESERVED = "*"
"""Resources reserved for no role; Marathon's default ``acceptedResourceRoles``."""

PUBLIC_ROLE = "slave_public"
"""The role of DC/OS's public (internet-facing) agents, where edge load balancers run."""

_ROLE_CHARS = {
    "\t": "horizontal tab (\\x09)",
    "\n": "line feed (\\x0a)",
    "\x0b": "vertical tab (\\x0b)",
    "\x0c": "form feed (\\x0c)",
    "\r": "carriage return (\\x0d)",
    " ": "space (\\x20)",
    "/": "slash (\\x2f)",
    "\x7f": "backspace (\\x7f)",
}


def role_messages(role: str) -> list[str]:
    """Why ``role`` is not a valid Mesos role name (``ResourceRole.validResourceRole``)."""
    out = [f'A role name must not be "{bad}".' for bad in ("", ".", "..") if role == bad]
    if role.startswith("-"):
        out.append("A role name must not start with a '-'.")
    for char, label in _ROLE_CHARS.items():
        if char in role:
            out.append(f"A role name must not include a {label} character.")
    return out
