"""The task environment: Marathon's variables, the app's env and what Pallet owns."""

from __future__ import annotations

from pallet.agent.environment import label_variables, port_variables, task_environment

from .conftest import make_spec


def test_ports_by_index_and_by_name() -> None:
    assert port_variables((31000, 31001, 31005), ("http", "", "admin-api")) == {
        "PORT0": "31000",
        "PORT1": "31001",
        "PORT2": "31005",
        "PORT": "31000",
        "PORTS": "31000,31001,31005",
        "PORT_HTTP": "31000",
        "PORT_ADMIN_API": "31005",
    }
    assert port_variables(()) == {}


def test_labels_as_marathon_escapes_them() -> None:
    env = label_variables({"team": "infra", "com.example/tier": "gold", "x" * 600: "dropped"})
    assert env == {
        "MARATHON_APP_LABELS": "TEAM COM_EXAMPLE_TIER",
        "MARATHON_APP_LABEL_TEAM": "infra",
        "MARATHON_APP_LABEL_COM_EXAMPLE_TIER": "gold",
    }


def test_full_environment_and_precedence() -> None:
    spec = make_spec(
        "web.7",
        app_id="/prod/web",
        app_version="2024-05-01T00:00:00.000Z",
        cpu_milli=500,
        mem_mib=64,
        ports=(31000,),
        port_names=("http",),
        labels={"tier": "web"},
        env={
            "GREETING": "hi",
            "PORT": "8080",  # the app may override Marathon's variables ...
            "PALLET_TASK_ID": "spoofed",  # ... but not what Pallet owns
            "MESOS_SANDBOX": "/elsewhere",
        },
    )
    env = task_environment(
        spec, node_id="node-1", host="host-1", sandbox="/sbx/web.7", base={"PATH": "/bin"}
    )
    assert env == {
        "PATH": "/bin",
        "MESOS_TASK_ID": "web.7",
        "MARATHON_APP_ID": "/prod/web",
        "MARATHON_APP_VERSION": "2024-05-01T00:00:00.000Z",
        "MARATHON_APP_RESOURCE_CPUS": "0.5",
        "MARATHON_APP_RESOURCE_MEM": "64.0",
        "MARATHON_APP_RESOURCE_DISK": "0.0",
        "MARATHON_APP_RESOURCE_GPUS": "0",
        "MARATHON_APP_LABELS": "TIER",
        "MARATHON_APP_LABEL_TIER": "web",
        "PORT0": "31000",
        "PORT": "8080",
        "PORTS": "31000",
        "PORT_HTTP": "31000",
        "HOST": "host-1",
        "GREETING": "hi",
        "PALLET_TASK_ID": "web.7",
        "PALLET_APP_ID": "/prod/web",
        "PALLET_NODE_ID": "node-1",
        "MESOS_SANDBOX": "/sbx/web.7",
    }
