"""``moon.net``: the network-policy evaluator from Python, over the policies and pods of
``examples/network/`` (docs/network.md)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import moon

ROOT = Path(__file__).resolve().parents[2]
POLICIES = (ROOT / "examples" / "network" / "policies.yaml").read_text()
PODS = (ROOT / "examples" / "network" / "pods.yaml").read_text()


def test_check_answers_with_the_deciding_rules() -> None:
    verdict = moon.net.check(POLICIES, PODS, "shop/api", "shop/db", port=5432)
    assert verdict.allowed and bool(verdict)
    assert verdict.ingress.passed == ("security",)
    assert verdict.ingress.reason == {
        "kind": "rule",
        "policy": {"kind": "KubernetesNetworkPolicy", "namespace": "shop", "name": "db-from-api"},
        "tier": "default",
        "rule": 0,
        "action": "Allow",
    }
    denied = moon.net.check(POLICIES, PODS, "analytics/notebook", "shop/db", port=5432)
    assert not denied.allowed
    assert denied.egress.reason == {"kind": "notIsolated"}
    assert "security.no-analytics-to-databases rule ingress[0] in tier security" in str(denied)


def test_policies_as_mappings_and_pods_as_a_mapping() -> None:
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": "lab"},
        "spec": {"podSelector": {}},
    }
    pods = {"pods": [{"namespace": "lab", "name": "a"}, {"namespace": "lab", "name": "b"}]}
    verdict = moon.net.check([policy], pods, "lab/a", "lab/b", port=80, protocol="udp")
    assert not verdict.allowed
    assert verdict.ingress.reason["kind"] == "endOfTier"
    assert moon.net.check([], pods, "lab/a", "lab/b", port=80).allowed


def test_matrix_of_a_tenant() -> None:
    table = moon.net.matrix(POLICIES, PODS, "shop", port=5432)
    assert table.targets == ("shop/web", "shop/api", "shop/db")
    assert [row[2] for row in table.allowed] == [False, True, False, False]
    assert str(table).splitlines()[0].split() == ["shop/web", "shop/api", "shop/db"]


def test_invalid_input_raises_invalid_policy_with_the_field_and_column() -> None:
    broken = json.dumps(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "g"},
            "spec": {"egress": [{"action": "Deny", "destination": {"nets": ["10.0.0.0/99"]}}]},
        }
    )
    with pytest.raises(moon.InvalidPolicy) as raised:
        moon.net.check(broken, PODS, "shop/web", "shop/db", port=80)
    assert raised.value.field == "Calico GlobalNetworkPolicy g: spec.egress[0].destination.nets[0]"
    assert raised.value.column == 10
    assert isinstance(raised.value, ValueError)
    with pytest.raises(moon.InvalidPolicy, match="neither a pod"):
        moon.net.check(POLICIES, PODS, "shop/nobody", "shop/db", port=80)
    with pytest.raises(moon.InvalidPolicy, match="not tcp, udp or sctp"):
        moon.net.check(POLICIES, PODS, "shop/web", "shop/db", port=80, protocol="icmp")


def test_the_evaluator_runs_without_the_gil() -> None:
    # A cluster large enough that one matrix takes a while (0.1-2 s). The counting thread
    # needs the GIL for a moment every millisecond: a call that held it would see none.
    pods = {
        "pods": [
            {"namespace": f"n{i % 50}", "name": f"p{i}", "labels": {"x": str(i % 7)}}
            for i in range(4000)
        ]
    }
    policies = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"p{i}", "namespace": f"n{i % 50}"},
            "spec": {
                "ingress": [
                    {
                        "action": "Allow",
                        "source": {"selector": f"x == '{i % 7}'", "namespaceSelector": "all()"},
                    }
                ]
            },
        }
        for i in range(400)
    ]
    ticks = 0
    done = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            time.sleep(0.001)
            ticks += 1

    thread = threading.Thread(target=tick)
    thread.start()
    try:
        before, started = ticks, time.monotonic()
        moon.net.matrix(policies, pods, "n1", port=80)
        during, took = ticks - before, time.monotonic() - started
    finally:
        done.set()
        thread.join()
    assert during > 20, f"{during} ticks in {took:.2f} s"
