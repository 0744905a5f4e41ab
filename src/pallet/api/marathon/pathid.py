"""Marathon path ids (``/prod/web``): syntax, canonical form and rules; pure.

Follows ``state/PathId.scala`` and the RAML ``PathId`` type:

- syntax (checked as the body is read, Play code ``error.pattern``): segments split
  by ``/``; each is empty, ``..``, or dot-separated labels of lowercase letters,
  digits and inner hyphens (``web``, ``web-1``, ``v1.api``);
- canonical form: leading, trailing and repeated slashes dropped, ``.`` removed,
  ``..`` climbs one level, relative ids resolved against a base (the root for apps):
  ``prod//web/`` -> ``/prod/web``, ``/a/../b`` -> ``/b``;
- rules on the canonical id: not the root, last segment not a reserved word.
"""

from __future__ import annotations

from pallet.api.marathon.errors import Violation

__all__ = [
    "RESERVED_LAST_SEGMENTS",
    "canonical_path",
    "is_path_syntax",
    "path_violations",
]

RESERVED_LAST_SEGMENTS = ("restart", "tasks", "versions", ".", "..")


def _is_label(label: str) -> bool:
    # ([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9]) without a backtracking regex: ids come from users.
    if not label or label[0] == "-" or label[-1] == "-":
        return False
    return all(c.isdigit() or "a" <= c <= "z" or c == "-" for c in label)


def _is_segment(segment: str) -> bool:
    return segment in ("", "..") or all(_is_label(label) for label in segment.split("."))


def is_path_syntax(raw: str) -> bool:
    """True if ``raw`` matches Marathon's RAML ``PathId`` pattern (and is not empty)."""
    return bool(raw) and all(_is_segment(s) for s in raw.split("/"))


def canonical_path(raw: str, base: str = "/") -> str:
    """The absolute, canonical form of ``raw``; relative ids are taken from ``base``."""
    parts = [p for p in raw.split("/") if p]
    if not raw.startswith("/"):
        parts = [p for p in base.split("/") if p] + parts
    result: list[str] = []
    for part in parts:
        if part == ".":
            continue
        if part == "..":
            if result:
                result.pop()
            continue
        result.append(part)
    return "/" + "/".join(result)


def path_violations(canonical: str, field: str = "/id") -> list[Violation]:
    """Marathon's rules for an app id already in canonical form."""
    if canonical == "/":
        return [
            Violation(field, "Path must contain at least one path element"),
            Violation("/", "must not be root"),
        ]
    last = canonical.rsplit("/", 1)[-1]
    if last in RESERVED_LAST_SEGMENTS:
        words = ", ".join(RESERVED_LAST_SEGMENTS)
        return [
            Violation(field, f"must not end with any of the following reserved keywords: {words}")
        ]
    return []
