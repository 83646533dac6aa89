"""Rendering to Kubernetes objects without applying them, through Python and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

import moon

JOB = moon.Job(
    "resnet",
    tenant="vision",
    framework="pytorch",
    roles=[
        moon.Role("master", command=["python", "train.py"]),
        moon.Role("worker", replicas=2, command=["python", "train.py"], gpus=1),
    ],
)


def kinds_and_names(stream: str) -> list[tuple[str, str]]:
    return [(doc["kind"], doc["metadata"]["name"]) for doc in yaml.safe_load_all(stream) if doc]


def test_a_job_renders_to_an_anchor_a_service_and_a_job_per_replica() -> None:
    objects = kinds_and_names(moon.render(JOB, image="registry.example/train:1"))
    assert objects == [
        ("ConfigMap", "resnet"),
        ("Service", "resnet"),
        ("Job", "resnet-master-0"),
        ("Job", "resnet-worker-0"),
        ("Job", "resnet-worker-1"),
    ]
    docs = list(yaml.safe_load_all(moon.render(JOB, image="registry.example/train:1")))
    worker = docs[3]["spec"]["template"]["spec"]
    container = worker["containers"][0]
    assert container["image"] == "registry.example/train:1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["RANK"] == "1"
    assert env["WORLD_SIZE"] == "3"
    assert env["MASTER_ADDR"] == "resnet-master-0.resnet.vision.svc"


def test_a_tenant_renders_to_namespace_quota_rbac_and_policies() -> None:
    tenant = moon.Tenant("vision", quota=moon.Quota(cpus=8, memory="32Gi", gpus=4), users=["ana"])
    kinds = [kind for kind, _ in kinds_and_names(moon.render(tenant))]
    for kind in ["Namespace", "ResourceQuota", "LimitRange", "Role", "RoleBinding"]:
        assert kind in kinds
    assert kinds.count("NetworkPolicy") >= 2


def test_render_refuses_an_invalid_spec_with_its_errors() -> None:
    bad = {"name": "x", "tenant": "t", "framework": "pytorch", "roles": []}
    with pytest.raises(moon.InvalidSpec) as caught:
        moon.render(bad)
    assert "roles: must have at least one role" in caught.value.errors


def test_the_cli_prints_exactly_what_python_renders(
    run_cli: Callable[..., Any], moon_home: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(JOB.to_dict()))
    done = run_cli("render", "-f", str(spec), "--image", "train:2", home=moon_home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == moon.render(JOB, image="train:2").strip()
    assert moon.Client(home=moon_home).render(JOB, image="train:2") == moon.render(
        JOB, image="train:2"
    )


def test_the_cli_refuses_an_invalid_spec_with_exit_code_2(
    run_cli: Callable[..., Any], moon_home: Path
) -> None:
    done = run_cli(
        "render",
        "-f",
        "-",
        home=moon_home,
        input="name: x\ntenant: t\nframework: custom\nroles: []\n",
    )
    assert done.returncode == 2
    assert "roles: must have at least one role" in done.stderr


def pod_tolerations(stream: str) -> list[list[dict[str, Any]]]:
    return [
        doc["spec"]["template"]["spec"].get("tolerations", [])
        for doc in yaml.safe_load_all(stream)
        if doc and doc["kind"] == "Job"
    ]


def test_tolerations_render_as_the_backend_applies_them(
    run_cli: Callable[..., Any], moon_home: Path, tmp_path: Path
) -> None:
    taint = "dedicated=ml:NoSchedule"
    stream = moon.render(JOB, tolerations=[taint])
    dedicated = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    # The master asks for no GPU; the workers tolerate the GPU nodes' taint too.
    assert pod_tolerations(stream) == [[dedicated], [gpu, dedicated], [gpu, dedicated]]

    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(JOB.to_dict()))
    done = run_cli("render", "-f", str(spec), "--toleration", taint, home=moon_home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == stream.strip()

    # A Kubernetes client renders with its own settings; it connects only when used.
    cluster = moon.Client(
        "kubernetes", kubeconfig=tmp_path / "none", image="train:3", tolerations=[taint]
    )
    assert cluster.render(JOB) == moon.render(JOB, image="train:3", tolerations=[taint])

    with pytest.raises(moon.InvalidSpec, match="tolerations"):
        moon.render(JOB, tolerations=["dedicated=ml:Sometimes"])
    refused = run_cli("render", "-f", str(spec), "--toleration", "nope", home=moon_home)
    assert refused.returncode == 2
    assert "tolerations[0]" in refused.stderr


def test_node_selectors_are_set_alike_from_python_the_cli_and_the_environment(
    run_cli: Callable[..., Any], moon_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = moon.render(JOB, node_selector=["pool=ml", "zone=a"])
    selectors = [
        doc["spec"]["template"]["spec"].get("nodeSelector")
        for doc in yaml.safe_load_all(stream)
        if doc and doc["kind"] == "Job"
    ]
    assert selectors == [{"pool": "ml", "zone": "a"}] * 3
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(JOB.to_dict()))
    flags = ("--node-selector", "pool=ml", "--node-selector", "zone=a")
    done = run_cli("render", "-f", str(spec), *flags, home=moon_home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == stream.strip()
    # The environment sets the default for the CLI and for clients alike.
    monkeypatch.setenv("MOON_NODE_SELECTOR", "pool=ml,zone=a")
    from_env = run_cli("render", "-f", str(spec), home=moon_home)
    assert from_env.stdout.strip() == stream.strip()
    cluster = moon.Client("kubernetes", kubeconfig=tmp_path / "none")
    assert cluster.node_selector == ["pool=ml", "zone=a"]
    assert cluster.render(JOB) == stream
    with pytest.raises(moon.InvalidSpec) as caught:
        moon.Client("kubernetes", kubeconfig=tmp_path / "none", node_selector=["zone"])
    assert caught.value.details[0]["loc"] == ("nodeSelector", 0)
