"""Service discovery's decisions, pure: Mesos-DNS names and records, Marathon-LB and VIP
labels, and the HAProxy configurations they give. ``pallet.dns`` and ``pallet.lb`` are
the shells that follow the API and serve them."""

from __future__ import annotations

from pallet.discovery.labels import (
    LabelError,
    LbService,
    VipTarget,
    label_violations,
    lb_services,
    vip_targets,
)
from pallet.discovery.names import app_label, mesos_names
from pallet.discovery.records import DnsRecord, RecordTable, build_records
from pallet.discovery.services import Endpoint, PortInfo, Service, services_from_apps

__all__ = [
    "DnsRecord",
    "Endpoint",
    "LabelError",
    "LbService",
    "PortInfo",
    "RecordTable",
    "Service",
    "VipTarget",
    "app_label",
    "build_records",
    "label_violations",
    "lb_services",
    "mesos_names",
    "services_from_apps",
    "vip_targets",
]
