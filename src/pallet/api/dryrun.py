"""``?dryRun=true``: a previewed change as JSON, and the field diff between two app
definitions; pure.

Marathon answers a dry run of a group change with the deployment's ``steps``; Pallet
adds what a user wants to know before acting (as ``nomad job plan`` and ``kubectl diff``
do): the fields that change, the node each new task would land on, the tasks that would
stop, and why instances that fit nowhere would wait.
"""

from __future__ import annotations

from typing import Any

from pallet.api.marathon.deployment import action_fields
from pallet.control.preview import Preview

__all__ = ["definition_diff", "preview_json"]

_VOLATILE = frozenset({"version", "versionInfo"})


def definition_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The changes from ``before`` to ``after`` as ``{"path", "from", "to"}`` entries
    (JSON pointer paths; a key only on one side has ``from`` or ``to`` missing)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after)):
            if not path and key in _VOLATILE:
                continue
            sub = f"{path}/{key}"
            if key not in before:
                out.append({"path": sub, "to": after[key]})
            elif key not in after:
                out.append({"path": sub, "from": before[key]})
            else:
                out += definition_diff(before[key], after[key], sub)
        return out
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and len(before) == len(after)
        and all(isinstance(x, dict) for x in before + after)
    ):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += definition_diff(b, a, f"{path}/{i}")
        return out
    return [] if before == after else [{"path": path or "/", "from": before, "to": after}]


def preview_json(
    app_id: str,
    result: Preview,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    pods: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The body of a dry-run answer (``pods``: the ids that are pods, whose actions are
    Marathon's ``*Pod`` ones naming a ``pod``)."""
    return {
        "dryRun": True,
        "steps": [
            {"actions": [action_fields(action, app, pods) for action, app in step]}
            for step in result.steps
        ],
        "diff": definition_diff(before or {}, after),
        "launches": [
            {
                "taskId": t.id,
                "agentId": t.node_id,
                "host": t.host,
                "ports": list(t.ports),
                "gpus": [list(g) for g in t.gpus],
            }
            for t in result.launches
        ],
        "kills": [
            {"taskId": t.id, "agentId": t.node_id, "host": t.host, "version": t.version}
            for t in result.kills
        ],
        "unplaced": (
            {
                "instances": result.unplaced,
                "nodesConsidered": result.nodes,
                "reasons": [{"reason": r, "nodes": n} for r, n in result.reasons],
            }
            if result.unplaced
            else None
        ),
    }
