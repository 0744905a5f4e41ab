"""Names, records, labels and HAProxy text from apps, table-driven; no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.discovery import (
    app_label,
    build_records,
    label_violations,
    lb_services,
    mesos_names,
    services_from_apps,
    vip_targets,
)
from pallet.discovery.haproxy import EdgeSettings, edge_config, split_servers, vip_config
from pallet.discovery.labels import vip_address
from pallet.discovery.records import diff_names


def task(
    i: int, *, state: str = "TASK_RUNNING", alive: bool | None = None, host: str = ""
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"web.t{i}",
        "host": host or f"127.0.0.{2 + i}",
        "ports": [31000 + i, 32000 + i],
        "state": state,
        "slaveId": f"node-{i}",
    }
    if alive is not None:
        doc["healthCheckResults"] = [{"alive": alive}]
    return doc


def app(
    app_id: str = "/prod/web", tasks: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": app_id,
        "labels": {},
        "portDefinitions": [
            {"port": 10000, "protocol": "tcp", "labels": {}},
            {"port": 10001, "protocol": "udp,tcp", "labels": {}},
        ],
        "tasks": tasks if tasks is not None else [task(0), task(1)],
        **extra,
    }


@pytest.mark.parametrize(
    ("app_id", "label"),
    [
        ("/web", "web"),
        ("/prod/web", "web-prod"),  # Marathon's task name web.prod, dots folded
        ("/a/b/c", "c-b-a"),
        ("/Prod/Web_1", "web-1-prod"),  # RFC 1123: lower case, _ becomes -
        ("/x" * 40, "-".join(["x"] * 32)[:63].rstrip("-")),  # at most 63 characters
    ],
)
def test_group_paths_fold_as_mesos_dns_does(app_id: str, label: str) -> None:
    assert app_label(app_id) == label


def test_ready_tasks_answer_and_others_do_not() -> None:
    apps = [
        app(tasks=[task(0), task(1, state="TASK_STAGING"), task(2, state="TASK_KILLING")]),
        app(
            "/checked",
            tasks=[task(3, alive=True), task(4, alive=False), task(5)],
            healthChecks=[{}],
        ),
        app("/idle", tasks=[]),
    ]
    table = build_records(services_from_apps(apps))
    assert [r.data for r in table["web-prod.marathon.mesos"]] == ["127.0.0.2"]
    assert [r.data for r in table["web-prod.pallet"]] == ["127.0.0.2"]
    srv = [r.data for r in table["_web-prod._tcp.marathon.mesos"]]
    # both ports of the one ready task, the second also under _udp
    assert [s.split()[2] for s in srv] == ["31000", "32000"]
    assert [r.data.split()[2] for r in table["_web-prod._udp.marathon.mesos"]] == ["32000"]
    target = srv[0].split()[3]
    assert [r.data for r in table[target]] == ["127.0.0.2"]
    # healthy only: t3 (alive) answers, t4 (failing) and t5 (no verdict yet) do not
    assert [r.data for r in table["checked.marathon.mesos"]] == ["127.0.0.5"]
    assert "idle.marathon.mesos" not in table


def test_names_follow_changes() -> None:
    before = build_records(services_from_apps([app(tasks=[task(0)])]))
    after = build_records(services_from_apps([app(tasks=[task(1)])]))
    removed, added = diff_names(before, after)
    assert "web-prod.marathon.mesos" in removed and "web-prod.marathon.mesos" in added
    assert all(n in after for n in added)


def test_vip_names_and_addresses() -> None:
    ports = [
        {"port": 0, "labels": {"VIP_0": "/prod/web:80"}},
        {"port": 0, "labels": {"VIP_1": "10.1.2.3:5432"}},
    ]
    apps = [app(portDefinitions=ports), app("/other", tasks=[task(4)], portDefinitions=[ports[0]])]
    vips = vip_targets(services_from_apps(apps))
    named, address = (v for v in vips if v.name), (v for v in vips if not v.name)
    (web,) = named
    assert web.fqdn == "prodweb.marathon.l4lb.thisdcos.directory" and web.port == 80
    assert web.address == vip_address("prodweb") and web.address.startswith("127.11.")
    # two apps behind one VIP: every ready task of both
    assert [b[2] for b in web.backends] == [31000, 31001, 31004]
    (db,) = address
    assert (db.address, db.port, [b[2] for b in db.backends]) == ("10.1.2.3", 5432, [32000, 32001])
    table = build_records(services_from_apps(apps), vips)
    assert [r.data for r in table[web.fqdn]] == [web.address]


@pytest.mark.parametrize(
    ("labels", "ports", "errors"),
    [
        ({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example.com,b.example.com"}, 1, []),
        ({"HAPROXY_0_VHOST": "a.example.com b"}, 1, ["/labels/HAPROXY_0_VHOST"]),
        ({"HAPROXY_0_PATH": "api"}, 1, ["/labels/HAPROXY_0_PATH"]),
        ({"HAPROXY_0_PORT": "70000"}, 1, ["/labels/HAPROXY_0_PORT"]),
        ({"HAPROXY_0_MODE": "udp"}, 1, ["/labels/HAPROXY_0_MODE"]),
        ({"HAPROXY_0_BALANCE": "fastest"}, 1, ["/labels/HAPROXY_0_BALANCE"]),
        ({"HAPROXY_0_STICKY": "maybe"}, 1, ["/labels/HAPROXY_0_STICKY"]),
        ({"HAPROXY_0_SSL_CERT": "cert.pem"}, 1, ["/labels/HAPROXY_0_SSL_CERT"]),
        ({"HAPROXY_2_PORT": "80"}, 2, ["/labels/HAPROXY_2_PORT"]),  # no third port
        ({"HAPROXY_0_BACKEND_HEAD": "x"}, 1, ["/labels/HAPROXY_0_BACKEND_HEAD"]),  # templates
        ({"HAPROXY_GROUP": "a b"}, 1, ["/labels/HAPROXY_GROUP"]),
        ({"OTHER": "anything"}, 1, []),
    ],
)
def test_marathon_lb_labels_are_checked(
    labels: dict[str, str], ports: int, errors: list[str]
) -> None:
    found = label_violations(labels, [(f"/portDefinitions({i})", {}) for i in range(ports)])
    assert [e.path for e in found] == errors


@pytest.mark.parametrize(
    ("vip", "ok"),
    [
        ("/web:80", True),
        ("web:80", True),
        ("/prod/web:8080", True),
        ("1.2.3.4:80", True),
        ("/web", False),
        ("/web:", False),
        ("/web:0", False),
        ("/web:http", False),
        (":80", False),
        ("/we b:80", False),
    ],
)
def test_vip_labels_are_checked(vip: str, ok: bool) -> None:
    found = label_violations({}, [("/portDefinitions(0)", {"VIP_0": vip})])
    assert (not found) == ok
    if not ok:
        assert found[0].path == "/portDefinitions(0)/labels/VIP_0"


def _edge(apps: list[dict[str, Any]], groups: tuple[str, ...] = ("external",)) -> str:
    served = lb_services(services_from_apps(apps), groups)
    return edge_config(served, EdgeSettings(bind="127.0.0.9", state_dir="/run/lb", version=3))


def test_the_edge_config_follows_the_labels() -> None:
    labels = {
        "HAPROXY_GROUP": "external",
        "HAPROXY_0_VHOST": "Web.Example.com",
        "HAPROXY_0_PATH": "/api",
        "HAPROXY_0_BALANCE": "leastconn",
        "HAPROXY_0_STICKY": "true",
    }
    text = _edge([app(labels=labels, tasks=[task(0), task(1, state="TASK_STAGING")])])
    assert "frontend marathon_http_in" in text
    assert "acl host_prod_web_10000 hdr(host),field(1,:),lower -m str web.example.com" in text
    assert "acl path_prod_web_10000 path_beg /api" in text
    assert "use_backend prod_web_10000 if host_prod_web_10000 path_prod_web_10000" in text
    assert "backend prod_web_10000\n  mode http\n  balance leastconn" in text
    assert "cookie mesosphere_server_id insert indirect nocache" in text
    assert "server web.t0 127.0.0.2:31000 check" in text and "web.t1" not in text  # ready only
    assert "frontend prod_web_10000\n  bind 127.0.0.9:10000\n  mode http" in text
    assert "monitor-uri /_haproxy_health_check" in text and "stats uri /haproxy?stats" in text
    assert "marathon_https_in" not in text  # no certificate, no HTTPS frontend


def test_groups_filter_apps() -> None:
    apps = [
        app("/ext", labels={"HAPROXY_GROUP": "external"}),
        app("/int", labels={"HAPROXY_GROUP": "internal"}),
        app("/none"),
    ]
    ext = _edge(apps)
    assert "backend ext_10000" in ext and "int_10000" not in ext and "none_10000" not in ext
    every = _edge(apps, ("*",))
    assert all(f"backend {n}_10000" in every for n in ("ext", "int", "none"))


def test_port_label_mode_and_https_redirect() -> None:
    labels = {
        "HAPROXY_GROUP": "external",
        "HAPROXY_0_PORT": "8080",
        "HAPROXY_0_MODE": "http",
        "HAPROXY_1_ENABLED": "false",
        "HAPROXY_0_VHOST": "a.example.com",
        "HAPROXY_0_REDIRECT_TO_HTTPS": "true",
        "HAPROXY_0_SSL_CERT": "/etc/ssl/a.pem",
    }
    text = _edge([app(labels=labels)])
    assert "bind 127.0.0.9:8080" in text and "10001" not in text
    assert "bind 127.0.0.9:443 ssl crt /etc/ssl/a.pem" in text
    assert "redirect scheme https code 301 if host_prod_web_8080 !{ ssl_fc }" in text


def test_vip_config_binds_each_vip() -> None:
    ports = [{"port": 0, "labels": {"VIP_0": "/web:80"}}]
    vips = vip_targets(services_from_apps([app(portDefinitions=ports)]))
    text = vip_config(vips, "/run/vip", 1)
    assert f"bind {vips[0].address}:80" in text and "mode tcp" in text
    assert "server web.t0 127.0.0.2:31000" in text and "server web.t1 127.0.0.3:31001" in text


def test_mesos_names_of_an_app() -> None:
    assert mesos_names("/prod/web") == {
        "a": "web-prod.marathon.mesos",
        "slave": "web-prod.marathon.slave.mesos",
        "srv": "_web-prod._tcp.marathon.mesos",
        "containerip": "web-prod.marathon.containerip.dcos.thisdcos.directory",
        "pallet": "web-prod.pallet",
        "pallet_srv": "_web-prod._tcp.pallet",
    }


def test_servers_split_from_the_rest_of_the_config() -> None:
    one = _edge([app(labels={"HAPROXY_GROUP": "external"}, tasks=[task(0)])])
    two = _edge([app(labels={"HAPROXY_GROUP": "external"}, tasks=[task(0), task(1)])])
    s1, servers1 = split_servers(one)
    s2, servers2 = split_servers(two)
    assert s1 == s2  # only servers differ: the runtime API can change them
    assert set(servers2) - set(servers1) == {
        ("prod_web_10000", "web.t1"),
        ("prod_web_10001", "web.t1"),
    }
    assert servers2[("prod_web_10000", "web.t1")].startswith("127.0.0.3:31001 check")
    other = _edge(
        [app(labels={"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.b"}, tasks=[task(0)])]
    )
    assert split_servers(other)[0] != s1


def test_tasks_on_a_container_network_are_reached_at_their_own_ip_and_container_port() -> None:
    # Mesos-DNS with IP sources netinfo first, and Marathon-LB for IP-per-task apps.
    def on_network(i: int, ip: str | None) -> dict[str, Any]:
        doc = task(i)
        doc["ports"] = []  # no hostPort in the mapping: no host port
        doc["ipAddresses"] = [{"ipAddress": ip, "protocol": "IPv4"}] if ip else []
        return doc

    cnet = {
        "id": "/db",
        "labels": {"HAPROXY_GROUP": "external"},
        "networks": [{"mode": "container", "name": "dcos"}],
        "container": {"portMappings": [{"containerPort": 5432, "servicePort": 10100}]},
        # t2 runs but its address is not known yet: reached at its agent, on no port
        "tasks": [on_network(0, "9.0.0.2"), on_network(1, "9.0.1.2"), on_network(2, None)],
    }
    bridged = app(
        "/web",
        networks=[{"mode": "container/bridge"}],
        tasks=[{**task(3), "ipAddresses": [{"ipAddress": "127.0.0.5", "protocol": "IPv4"}]}],
    )
    table = build_records(services_from_apps([cnet, bridged]))
    assert [r.data for r in table["db.marathon.mesos"]] == ["127.0.0.4", "9.0.0.2", "9.0.1.2"]
    assert [r.data for r in table["db.marathon.slave.mesos"]] == [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
    ]
    srv = sorted(r.data for r in table["_db._tcp.marathon.mesos"])
    assert [s.split()[2] for s in srv] == ["5432", "5432"]  # the container port
    assert sorted(table[s.split()[3]][0].data for s in srv) == ["9.0.0.2", "9.0.1.2"]
    # a bridged task keeps its agent's address and host ports
    assert [r.data for r in table["web.marathon.mesos"]] == ["127.0.0.5"]
    assert [r.data.split()[2] for r in table["_web._tcp.marathon.mesos"]] == ["31003", "32003"]
    text = _edge([cnet])
    assert "server web.t0 9.0.0.2:5432 check" in text
    assert "server web.t1 9.0.1.2:5432 check" in text and "web.t2" not in text
