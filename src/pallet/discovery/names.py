"""Mesos-DNS names of Marathon apps and tasks (the group path folded into one label); pure.

Marathon names a task after its app id read backwards (``/prod/web`` -> ``web.prod``)
and Mesos-DNS turns that into one RFC 1123 label, dots becoming dashes:
``web-prod.marathon.mesos``. A label keeps ``[a-z0-9-]``, anything else becomes ``-``,
no dash leads or trails, and at most 63 characters stay.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "FRAMEWORK",
    "MESOS_DOMAIN",
    "PALLET_DOMAIN",
    "VIP_DOMAIN",
    "app_label",
    "mesos_names",
    "task_label",
]

MESOS_DOMAIN = "mesos"
FRAMEWORK = "marathon"
PALLET_DOMAIN = "pallet"
VIP_DOMAIN = "marathon.l4lb.thisdcos.directory"
CONTAINERIP_DOMAIN = "marathon.containerip.dcos.thisdcos.directory"

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


def _label(text: str) -> str:
    folded = _NOT_LABEL.sub("-", text.lower()).strip("-")
    return folded[:63].rstrip("-")


def app_label(app_id: str) -> str:
    """``/prod/web`` -> ``web-prod``: Marathon's task name, as Mesos-DNS writes it."""
    parts = [p for p in app_id.split("/") if p]
    return _label("-".join(reversed(parts)))


def task_label(app_id: str, task_id: str, node_id: str) -> str:
    """A name for one task (an SRV target), as Mesos-DNS makes one: the app's label, a
    short hash of the task id and of the agent id (``web-prod-k3c1p-s4f2a``)."""
    task = hashlib.sha1(task_id.encode()).hexdigest()[:5]
    node = hashlib.sha1(node_id.encode()).hexdigest()[:5]
    return _label(f"{app_label(app_id)[:51]}-{task}-s{node[:4]}")


def mesos_names(app_id: str) -> dict[str, str]:
    """The names an app answers to: Mesos-DNS's A and SRV names, the agents' names
    (``slave``), the container-IP name of DC/OS, and Pallet's own alias."""
    label = app_label(app_id)
    return {
        "a": f"{label}.{FRAMEWORK}.{MESOS_DOMAIN}",
        "slave": f"{label}.{FRAMEWORK}.slave.{MESOS_DOMAIN}",
        "srv": f"_{label}._tcp.{FRAMEWORK}.{MESOS_DOMAIN}",
        "containerip": f"{label}.{CONTAINERIP_DOMAIN}",
        "pallet": f"{label}.{PALLET_DOMAIN}",
        "pallet_srv": f"_{label}._tcp.{PALLET_DOMAIN}",
    }
