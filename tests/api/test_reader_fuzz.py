"""The readers of what clients and agents send, under mutated bodies: a field of a full
definition (a Marathon pod and app, a Metronome job, an agent's registration and status
batch) replaced by any JSON value, or dropped, is read or refused naming a path
(``MarathonApiError`` 422, ``JobSpecError`` or the model's ``ValidationError``, which
every route answers with a 422), never another exception, which would be a 500. The pod
reader is written by hand; an app's and a job's are pydantic models with checks
after them; the agent's messages are read by hand."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.api.marathon import MarathonApiError
from pallet.api.marathon.normalize import normalize_app, read_app
from pallet.api.metronome.jobspec import JobSpecError, job_from_json
from pallet.api.pod_spec import parse_pod
from pallet.model import Registration, StatusBatch, ValidationError

FULL: dict[str, Any] = {
    "id": "/shop/pod",
    "labels": {"team": "shop"},
    "user": "nobody",
    "environment": {"SHOP": "1"},
    "scaling": {"kind": "fixed", "instances": 2},
    "scheduling": {
        "backoff": {"backoff": 1, "backoffFactor": 1.15, "maxLaunchDelay": 300},
        "upgrade": {
            "minimumHealthCapacity": 0.5,
            "maximumOverCapacity": 0.5,
            "progressDeadlineSeconds": 600,
            "autoRollback": False,
            "canaryInstances": 1,
            "autoPromoteAfterSeconds": 60,
        },
        "placement": {
            "constraints": [["hostname", "UNIQUE"]],
            "acceptedResourceRoles": ["*"],
        },
        "killSelection": "OLDEST_FIRST",
        "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120},
    },
    "volumes": [{"name": "scratch"}, {"name": "logs"}],
    "networks": [{"mode": "host"}],
    "executorResources": {"cpus": 0.1, "mem": 32, "disk": 10},
    "containers": [
        {
            "name": "web",
            "exec": {"command": {"shell": "python3 -m http.server $ENDPOINT_HTTP"}},
            "resources": {"cpus": 0.25, "mem": 64, "disk": 1, "gpus": 0},
            "endpoints": [{"name": "http", "hostPort": 0, "protocol": ["tcp"]}],
            "healthCheck": {
                "http": {"endpoint": "http", "path": "/", "scheme": "HTTP"},
                "gracePeriodSeconds": 30,
                "intervalSeconds": 5,
                "maxConsecutiveFailures": 3,
                "timeoutSeconds": 2,
                "delaySeconds": 1,
            },
            "volumeMounts": [{"name": "scratch", "mountPath": "scratch", "readOnly": False}],
            "artifacts": [{"uri": "http://example.com/a.tgz", "extract": True, "cache": False}],
            "lifecycle": {"killGracePeriodSeconds": 5},
            "labels": {"part": "web"},
        },
        {
            "name": "sidecar",
            "exec": {"command": {"argv": ["sleep", "600"]}},
            "resources": {"cpus": 0.5, "mem": 32},
            "environment": {"ROLE": "side"},
            "healthCheck": {"exec": {"command": {"shell": "true"}}},
            "volumeMounts": [{"name": "logs", "mountPath": "logs"}],
        },
        {
            "name": "tcp",
            "image": {"kind": "DOCKER", "id": "busybox:1", "forcePull": False},
            "exec": {"command": {"shell": "nc -l -p $ENDPOINT_T"}},
            "resources": {"cpus": 0.1, "mem": 16},
            "endpoints": [{"name": "t", "hostPort": 0}],
            "healthCheck": {"tcp": {"endpoint": "t"}},
        },
    ],
}

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path in ``doc`` (the root excluded)."""
    out = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        out.append((*at, key))
        out += _paths(value, (*at, key))
    return out


APP: dict[str, Any] = {  # a DC/OS service: most of what Marathon's apps say
    "id": "/tools/hello",
    "cmd": "python3 -m http.server $PORT0",
    "cpus": 0.1,
    "mem": 32,
    "disk": 0,
    "instances": 2,
    "env": {"GREETING": "hi"},
    "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "hello.example.com"},
    "portDefinitions": [
        {"port": 10001, "protocol": "tcp", "name": "http", "labels": {"VIP_0": "/hello:80"}}
    ],
    "requirePorts": False,
    "healthChecks": [
        {
            "protocol": "MESOS_HTTP",
            "path": "/",
            "portIndex": 0,
            "gracePeriodSeconds": 10,
            "intervalSeconds": 2,
            "timeoutSeconds": 2,
            "maxConsecutiveFailures": 3,
        }
    ],
    "readinessChecks": [
        {
            "name": "ready",
            "protocol": "HTTP",
            "path": "/",
            "portName": "http",
            "intervalSeconds": 5,
            "timeoutSeconds": 2,
            "httpStatusCodesForReady": [200],
            "preserveLastResponse": False,
        }
    ],
    "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 0.5},
    "constraints": [["hostname", "UNIQUE"]],
    "acceptedResourceRoles": ["*", "slave_public"],
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 300,
    "fetch": [{"uri": "http://example.com/a.tgz", "extract": True, "cache": False}],
    "unreachableStrategy": {"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600},
    "killSelection": "YOUNGEST_FIRST",
    "taskKillGracePeriodSeconds": 5,
    "dependencies": ["/tools/db"],
}
JOB: dict[str, Any] = {
    "id": "prod.example.app",
    "description": "Example Application",
    "labels": {"owner": "zeus"},
    "dependencies": [{"id": "prod.example.setup"}],
    "schedules": [
        {
            "id": "nightly",
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "startingDeadlineSeconds": 900,
            "concurrencyPolicy": "FORBID",
            "enabled": True,
        }
    ],
    "run": {
        "cmd": "nuke --dry --master local",
        "cpus": 1.5,
        "mem": 32,
        "disk": 128,
        "gpus": 0,
        "env": {"MON": "test", "PASSWORD": {"secret": "pw"}},
        "secrets": {"pw": {"source": "db/password"}},
        "artifacts": [{"uri": "http://example.com/a.zip", "extract": True, "cache": False}],
        "docker": {"image": "foo/bla:test"},
        "placement": {"constraints": [{"attribute": "rack", "operator": "EQ", "value": "r2"}]},
        "maxLaunchDelay": 3600,
        "taskKillGracePeriodSeconds": 5,
        "restart": {"policy": "ON_FAILURE", "activeDeadlineSeconds": 120},
        "user": "root",
    },
}
REGISTRATION: dict[str, Any] = {
    "node": {
        "id": "node-1",
        "hostname": "127.0.0.2",
        "capacity": [2000, 1024, 100, 2000],
        "gpu_count": 2,
        "gpu_model": "A100",
        "ports": ["31000-31099"],
        "attributes": {"rack": "r1"},
        "role": "slave_public",
        "networks": ["dcos"],
        "disks": [{"type": "mount", "root": "/mnt/disk0", "size": 500}],
    },
    "address": "127.0.0.2:5051",
    "boot_id": "run-1",
}
STATUSES: dict[str, Any] = {
    "statuses": [
        {
            "task_id": "web.1",
            "state": "TASK_RUNNING",
            "seq": 7,
            "reason": "REASON_CONTAINER_LIMITATION_MEMORY",
            "message": "m",
            "exit_code": None,
            "signal": 9,
            "healthy": False,
            "health": [
                {
                    "alive": False,
                    "consecutive_failures": 2,
                    "first_success": 1.0,
                    "last_success": 2.0,
                    "last_failure": 3.0,
                    "last_failure_cause": "HTTP 503",
                }
            ],
            "readiness": [
                {
                    "name": "ready",
                    "ready": True,
                    "last_response": {"status": 200, "content_type": "text/plain", "body": "ok"},
                }
            ],
            "ip_addresses": ["9.0.0.2"],
        }
    ]
}

READERS: dict[str, tuple[dict[str, Any], Any]] = {
    "pod": (FULL, parse_pod),
    "app": (APP, lambda body: normalize_app(read_app(body))),
    "job": (JOB, job_from_json),
    "registration": (REGISTRATION, Registration.from_json),
    "statuses": (STATUSES, StatusBatch.from_json),
}


@pytest.mark.parametrize("kind", READERS)
def test_the_full_definitions_read(kind: str) -> None:
    doc, read = READERS[kind]
    read(copy.deepcopy(doc))


def _mutations(kind: str) -> Any:
    doc = READERS[kind][0]
    return st.tuples(st.just(kind), st.sampled_from(_paths(doc)), _JSON, st.booleans())


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(*(_mutations(kind) for kind in READERS)))
def test_a_mutated_body_is_read_or_refused_naming_a_path(
    mutation: tuple[str, tuple[Any, ...], Any, bool],
) -> None:
    kind, path, value, drop = mutation
    source, read = READERS[kind]
    doc = copy.deepcopy(source)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        read(doc)
    except MarathonApiError as e:
        assert e.status == 422, e
    except JobSpecError as e:
        assert e.violations, e
    except ValidationError as e:
        assert e.field.startswith("/") or e.field == "", e
