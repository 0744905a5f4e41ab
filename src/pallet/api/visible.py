"""What a caller may see of a listing: apps, tasks, deployments, the queue and the group
tree filtered by ``read`` on each app (``pallet:service:<id>``), Metronome's jobs and
queue by ``read`` on each job (``pallet:job:<dotted id as a path>``); pure.

With authentication off, or for a caller who may read every service, nothing is
filtered (and the cached list is served).
"""

from __future__ import annotations

from typing import Any

from pallet.auth.perms import Action, Permissions, job_path

__all__ = ["deployments", "group", "may_read", "may_read_job", "queue"]


def may_read(perms: Permissions, app_id: str) -> bool:
    return perms.may("service", Action.READ, app_id)


def may_read_job(perms: Permissions, job_id: str) -> bool:
    return perms.may("job", Action.READ, job_path(job_id))


def deployments(perms: Permissions, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deployments all of whose apps the caller may read."""
    return [d for d in docs if all(may_read(perms, a) for a in d.get("affectedApps", ()))]


def queue(perms: Permissions, doc: dict[str, Any]) -> dict[str, Any]:
    items = [
        q
        for q in doc.get("queue", ())
        if may_read(perms, str((q.get("app") or q.get("pod") or {}).get("id")))
    ]
    return {**doc, "queue": items}


def group(perms: Permissions, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The group tree less what the caller may not read; None when nothing is left and
    the group itself is not readable."""
    out = dict(doc)
    if "apps" in doc:
        out["apps"] = [a for a in doc["apps"] if may_read(perms, str(a.get("id")))]
    if "groups" in doc:
        out["groups"] = [g for sub in doc["groups"] if (g := group(perms, sub)) is not None]
    if may_read(perms, str(doc.get("id", "/"))) or out.get("apps") or out.get("groups"):
        return out
    return None
