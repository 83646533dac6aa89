"""Services on the local backend through the Python API: served at a URL by every
replica, seen in status, events and logs, and gone once deleted.

Replicas are ``sys.executable`` running a tiny HTTP server that answers with its pid.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import PID_SERVER

import moon

TENANT = "team"
WAIT_S = 60.0


def pid_service(name: str, replicas: int) -> moon.Service:
    return moon.Service(
        name=name,
        tenant=TENANT,
        command=[sys.executable, "-c", PID_SERVER],
        replicas=replicas,
        cpus="100m",
        memory="64Mi",
        readiness={"httpPath": "/healthz"},
    )


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


@pytest.fixture
def client(moon_home: Path) -> moon.Client:
    client = moon.Client()
    client.apply_tenant(moon.Tenant(TENANT))
    return client


def test_a_service_is_served_at_its_url_by_every_replica_until_deleted(
    client: moon.Client,
) -> None:
    svc = client.serve(pid_service("echo", 2))
    status = svc.wait_ready(timeout=WAIT_S)
    assert status.ready_replicas == 2 and status.desired_replicas == 2
    assert status.url is not None and status.url.startswith("http://127.0.0.1:")
    assert {r.name for r in status.replicas} == {"replica-0", "replica-1"}
    assert all(r.address is not None for r in status.replicas)

    with ThreadPoolExecutor(max_workers=8) as pool:
        pids = set(pool.map(fetch, [status.url] * 40))
    assert len(pids) == 2, pids

    client.serve(pid_service("echo", 2))  # the same spec again changes nothing
    assert [s.name for s in client.list_services(TENANT)] == ["echo"]
    kinds = {event.kind for event in svc.events()}
    assert "ReplicaStarted" in kinds, kinds
    lines = list(svc.logs())
    assert any(line.startswith("[replica-0] listening on") for line in lines), lines
    with pytest.raises(moon.NotFound):
        client.job(TENANT, "echo")

    svc.delete()
    with pytest.raises(moon.NotFound):
        svc.status()
    with pytest.raises(urllib.error.URLError):
        fetch(status.url)


def test_a_service_spec_that_breaks_a_rule_is_refused_with_its_field(
    client: moon.Client,
) -> None:
    with pytest.raises(moon.InvalidSpec) as refused:
        client.serve({"kind": "Service", "name": "bad", "tenant": TENANT, "port": 0})
    fields = {error.split(":")[0] for error in refused.value.errors}
    assert {"command", "port"} <= fields, refused.value.errors


def test_a_service_scales_up_and_down(client: moon.Client) -> None:
    svc = client.serve(pid_service("elastic", 1))
    url = svc.wait_ready(timeout=WAIT_S).url
    assert svc.scale(3).desired_replicas == 3
    assert svc.wait_ready(timeout=WAIT_S).url == url
    # Side by side, as the balancer spreads load that is in flight at once.
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(fetch, [url] * 60))) == 3
    client.serve(pid_service("elastic", 1))  # a spec that differs only in its count scales
    deadline = time.monotonic() + WAIT_S
    while len(svc.status().replicas) != 1:
        assert time.monotonic() < deadline, svc.status()
        time.sleep(0.1)
    assert len({fetch(url) for _ in range(10)}) == 1
    svc.delete()


def test_a_running_service_with_another_spec_is_a_conflict(client: moon.Client) -> None:
    svc = client.serve(pid_service("fixed", 1))
    svc.wait_ready(timeout=WAIT_S)
    changed = pid_service("fixed", 1)
    changed.env = {"MODE": "other"}
    with pytest.raises(moon.Conflict, match="delete it and apply again"):
        client.serve(changed)
    svc.delete()


def test_an_idle_service_scales_to_zero_and_its_url_brings_a_replica_back(
    client: moon.Client,
) -> None:
    spec = pid_service("napper", 1)
    spec.autoscale = {
        "minReplicas": 0,
        "maxReplicas": 2,
        "targetInFlight": 1,
        "scaleDownStabilizationSeconds": 1,
    }
    svc = client.serve(spec)
    url = svc.wait_ready(timeout=WAIT_S).url
    assert url is not None
    first = fetch(url)
    deadline = time.monotonic() + WAIT_S
    while svc.status().replicas:
        assert time.monotonic() < deadline, svc.status()
        time.sleep(0.1)
    assert svc.status().desired_replicas == 0

    assert fetch(url) != first  # held while a new replica started, then answered
    deadline = time.monotonic() + WAIT_S
    while "ColdStart" not in {event.kind for event in svc.events()}:
        assert time.monotonic() < deadline, svc.events()
        time.sleep(0.1)
    scaled = [event.message for event in svc.events() if event.kind == "Autoscaled"]
    assert scaled[0].startswith("1 -> 0 replicas"), scaled
    assert scaled[1].startswith("0 -> 1 replicas"), scaled
    svc.delete()


def test_a_services_client_balances_over_its_replicas_and_follows_its_scale(
    client: moon.Client,
) -> None:
    svc = client.serve(pid_service("direct", 2))
    url = svc.wait_ready(timeout=WAIT_S).url
    assert url is not None
    direct = svc.client()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: direct.get("/"), range(40)))
        proxied = set(pool.map(fetch, [url] * 40))
    assert all(answer.status == 200 for answer in answers)
    by_client = {answer.text for answer in answers}
    assert by_client == proxied, "the same two replicas as the proxy's"
    assert len(by_client) == 2
    assert {r["state"] for r in direct.replicas()} == {"ready"}

    # Threads are answered side by side: each request releases the GIL.
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(lambda _: direct.get("/").text, range(64)))
    assert set(texts) == by_client

    svc.scale(3)
    svc.wait_ready(timeout=WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while len({direct.get("/").text for _ in range(30)}) != 3:
        assert time.monotonic() < deadline, direct.replicas()
    svc.delete()
    with pytest.raises(moon.ServiceUnavailable):
        direct.get("/")


def test_a_services_client_of_an_unknown_service_is_not_found(client: moon.Client) -> None:
    with pytest.raises(moon.NotFound):
        client.service(TENANT, "nobody").client()
