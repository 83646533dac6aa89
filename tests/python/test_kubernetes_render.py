"""Rendered objects against the real test cluster (scripts/k8s/up.sh): the
apiserver accepts them, applying a tenant twice changes nothing, and the
tenant's RBAC lets its own users in and keeps others out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import moon

pytestmark = pytest.mark.kubernetes


def env_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set; run through ./scripts/test.sh --only kubernetes")
    return Path(value)


def kubectl(*args: str, kubeconfig: Path | None = None, stdin: str | None = None):
    command = [
        str(env_path("MOON_TEST_KUBECTL")),
        "--kubeconfig",
        str(kubeconfig or env_path("MOON_TEST_KUBECONFIG_ADMIN")),
        *args,
    ]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def apply(stream: str, *extra: str, kubeconfig: Path | None = None):
    return kubectl(
        "apply", "--server-side", "--field-manager=moon", "-f", "-", *extra,
        kubeconfig=kubeconfig, stdin=stream,
    )  # fmt: skip


TENANT = moon.Tenant(
    "render-a",
    quota=moon.Quota(cpus=16, memory="64Gi", gpus=8, jobs=4),
    groups=["team-a"],
)


@pytest.fixture(scope="module")
def tenant() -> moon.Tenant:
    applied = apply(moon.render(TENANT))
    assert applied.returncode == 0, applied.stderr
    return TENANT


VERSIONS = "{range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}\n{end}"


def resource_versions(namespace: str) -> dict[str, str]:
    versions = {}
    for what in [
        ["namespace", "--field-selector", f"metadata.name={namespace}"],
        ["resourcequota,limitrange,role,rolebinding,networkpolicy,serviceaccount", "-n", namespace],
    ]:
        listed = kubectl("get", *what, "-o", "jsonpath=" + VERSIONS)
        assert listed.returncode == 0, listed.stderr
        versions.update(line.split("=", 1) for line in listed.stdout.splitlines() if "=" in line)
    return versions


def test_applying_a_rendered_tenant_twice_changes_nothing(tenant: moon.Tenant) -> None:
    before = resource_versions(tenant.name)
    expected = {"Namespace/render-a", "ResourceQuota/moon-quota", "RoleBinding/moon-tenant-user"}
    assert expected <= set(before), before
    again = apply(moon.render(tenant))
    assert again.returncode == 0, again.stderr
    assert resource_versions(tenant.name) == before


def test_the_rendered_quota_is_the_tenants(tenant: moon.Tenant) -> None:
    quota = kubectl(
        "get", "resourcequota/moon-quota", "-n", tenant.name,
        "-o", "jsonpath={.spec.hard.requests\\.nvidia\\.com/gpu} {.spec.hard.requests\\.cpu}",
    )  # fmt: skip
    assert quota.returncode == 0, quota.stderr
    assert quota.stdout.split() == ["8", "16"]


@pytest.mark.parametrize(
    "job",
    [
        moon.Job("pt", tenant="render-a", framework="pytorch", roles=[
            moon.Role("master", command=["python", "train.py"]),
            moon.Role("worker", replicas=2, command=["python", "train.py"]),
        ]),
        moon.Job("tf", tenant="render-a", framework="tensorflow", roles=[
            moon.Role("chief", command=["python", "train.py"]),
            moon.Role("worker", replicas=2, command=["python", "train.py"]),
            moon.Role("ps", command=["python", "train.py"]),
        ]),
        moon.Job("xgb", tenant="render-a", framework="xgboost", roles=[
            moon.Role("worker", replicas=2, command=["python", "train.py"]),
        ]),
        moon.Job("mx", tenant="render-a", framework="mxnet", roles=[
            moon.Role("scheduler", command=["python", "train.py"]),
            moon.Role("server", command=["python", "train.py"]),
            moon.Role("worker", replicas=2, command=["python", "train.py"]),
        ]),
        moon.Job("gpu", tenant="render-a", framework="custom", restart_policy="on-failure",
                 active_deadline_seconds=600, roles=[
            moon.Role("main", command=["python", "train.py"], gpus=2, cpus="500m"),
        ]),
    ],
    ids=lambda job: job.name,
)  # fmt: skip
def test_rendered_jobs_pass_server_side_dry_run(tenant: moon.Tenant, job: moon.Job) -> None:
    dry_run = apply(moon.render(job), "--dry-run=server")
    assert dry_run.returncode == 0, dry_run.stderr
    assert "created (server dry run)" in dry_run.stdout or "serverside-applied" in dry_run.stdout


def test_the_tenants_group_may_create_jobs_and_others_may_not(tenant: moon.Tenant) -> None:
    job = moon.Job("rbac", tenant=tenant.name, roles=[moon.Role("main", command=["true"])])
    stream = moon.render(job)
    alice = apply(stream, "--dry-run=server", kubeconfig=env_path("MOON_TEST_KUBECONFIG_ALICE"))
    assert alice.returncode == 0, alice.stderr
    bob = apply(stream, "--dry-run=server", kubeconfig=env_path("MOON_TEST_KUBECONFIG_BOB"))
    assert bob.returncode != 0
    assert "forbidden" in bob.stderr.lower(), bob.stderr
