"""The Kubernetes backend against the real test cluster (scripts/k8s/up.sh):
tenants as rendered, quotas with the cluster's own words, RBAC through moon,
placement on GPU and CPU nodes, rendezvous names that the headless Service
really publishes, and a wait that outlives an apiserver restart.

What every backend does alike is in test_behaviour.py; this file holds what
only a cluster can show.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RunCli

import moon

pytestmark = pytest.mark.kubernetes

WAIT_S = 60.0
KWOK_TAINT = "kwok.x-k8s.io/node:NoSchedule"
_names = itertools.count()


def env_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set; run ./scripts/test.sh --only kubernetes")
    return Path(value)


def client_as(user: str) -> moon.Client:
    return moon.Client(
        "kubernetes",
        kubeconfig=env_path(f"MOON_TEST_KUBECONFIG_{user.upper()}"),
        tolerations=[KWOK_TAINT],
    )


def cli_as(user: str) -> tuple[str, ...]:
    """The CLI's flags that make it ``user`` on the test cluster."""
    kubeconfig = str(env_path(f"MOON_TEST_KUBECONFIG_{user.upper()}"))
    return ("--backend", "kubernetes", "--kubeconfig", kubeconfig)


def kubectl(*args: str, input: str | None = None) -> str:
    """kubectl as the cluster's admin; its output."""
    done = subprocess.run(
        [
            str(env_path("MOON_TEST_KUBECTL")),
            "--kubeconfig",
            str(env_path("MOON_TEST_KUBECONFIG_ADMIN")),
            *args,
        ],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def kubectl_apply(manifest: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(manifest))


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


def job(
    tenant: str,
    prefix: str,
    *,
    workers: int = 1,
    gpus: int = 0,
    env: dict[str, str] | None = None,
    framework: str = "pytorch",
) -> moon.Job:
    command = [sys.executable, "-c", "pass"]
    roles = {
        "pytorch": [moon.Role("master", command=command, env=env, cpus="100m", memory="64Mi")],
        "tensorflow": [],
    }[framework]
    roles.append(
        moon.Role(
            "worker",
            replicas=workers,
            command=command,
            env=env,
            cpus="100m",
            memory="64Mi",
            gpus=gpus,
        )
    )
    return moon.Job(name=unique(prefix), tenant=tenant, framework=framework, roles=roles)


@pytest.fixture(scope="module")
def admin() -> moon.Client:
    return client_as("admin")


@pytest.fixture(scope="module")
def team_a(admin: moon.Client) -> str:
    admin.create_tenant(
        "kube-a",
        quota=moon.Quota(cpus=16, memory="16Gi", gpus=2, jobs=20),
        groups=["team-a"],
    )
    return "kube-a"


@pytest.fixture(scope="module")
def team_b(admin: moon.Client) -> str:
    admin.create_tenant("kube-b", quota=moon.Quota(cpus=4, memory="4Gi"), groups=["team-b"])
    return "kube-b"


def pods_of(tenant: str, name: str) -> list[dict[str, Any]]:
    return kubectl_json("get", "pods", "-n", tenant, "-l", f"moon.dev/job={name}")["items"]


def wait_for_event(handle: moon.JobHandle, matches: Any, timeout: float = WAIT_S) -> moon.Event:
    deadline = time.monotonic() + timeout
    with handle.watch() as events:
        for event in events:
            if matches(event):
                return event
            assert time.monotonic() < deadline, f"no matching event within {timeout}s"
    pytest.fail(f"the job ended without a matching event: {handle.events()}")


# --------------------------------------------------------------------------- tenants


def test_a_tenant_is_onboarded_as_rendered_and_again_without_change(admin: moon.Client) -> None:
    tenant = moon.Tenant(
        unique("onboard"),
        moon.Quota(cpus=8, memory="16Gi", gpus=4, jobs=3),
        users=["carol"],
        groups=["team-a"],
    )
    assert admin.apply_tenant(tenant) == "created"
    assert admin.apply_tenant(tenant) == "unchanged"

    rendered = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in yaml.safe_load_all(moon.render(tenant))
        if doc
    }
    quota = kubectl_json("get", "resourcequota", "moon-quota", "-n", tenant.name)
    assert quota["spec"] == rendered[("ResourceQuota", "moon-quota")]["spec"]
    binding = kubectl_json("get", "rolebinding", "moon-tenant-user", "-n", tenant.name)
    assert binding["subjects"] == rendered[("RoleBinding", "moon-tenant-user")]["subjects"]
    role = kubectl_json("get", "role", "moon-tenant-user", "-n", tenant.name)
    assert role["rules"] == rendered[("Role", "moon-tenant-user")]["rules"]
    policies = kubectl_json("get", "networkpolicy", "-n", tenant.name)["items"]
    assert {p["metadata"]["name"]: p["spec"] for p in policies} == {
        name: doc["spec"] for (kind, name), doc in rendered.items() if kind == "NetworkPolicy"
    }

    status = admin.tenant(tenant.name)
    assert status.spec == tenant
    assert tenant.name in [t.spec.name for t in admin.tenants()]


# --------------------------------------------------------------------------- quotas


def test_a_job_over_the_gpu_quota_is_held_with_the_quotas_message(
    admin: moon.Client, team_a: str
) -> None:
    handle = admin.submit(job(team_a, "greedy", gpus=4))
    event = wait_for_event(handle, lambda e: e.kind == "Pending" and "exceeded quota" in e.message)
    assert "requests.nvidia.com/gpu=4" in event.message, event.message
    assert "limited: requests.nvidia.com/gpu=2" in event.message, event.message
    status = handle.status()
    assert status.phase == "Pending"
    assert status.reason == "Quota"
    assert status.message is not None and "exceeded quota: moon-quota" in status.message
    handle.cancel()
    assert handle.status().phase == "Cancelled"


def test_the_jobs_quota_refuses_with_the_numbers(admin: moon.Client) -> None:
    tenant = unique("one-job")
    admin.create_tenant(tenant, quota=moon.Quota(cpus=4, memory="4Gi", jobs=1))
    first = admin.submit(job(tenant, "first", env={"MOON_TEST_DURATION": "60s"}))
    with pytest.raises(moon.QuotaExceeded, match=f"tenant {tenant}: jobs 1 of 1 in use"):
        admin.submit(job(tenant, "second"))
    first.cancel()
    admin.submit(job(tenant, "third")).wait(timeout=WAIT_S)


# --------------------------------------------------------------------------- RBAC


def test_one_tenants_credentials_get_a_permission_error_on_anothers_jobs(
    admin: moon.Client, team_a: str, team_b: str
) -> None:
    theirs = admin.submit(job(team_b, "private"))
    alice = client_as("alice")
    # The server's sentence names the user, the verb, the resource and the namespace.
    refused = (
        f'User "alice" cannot (get|list|watch|create) resource "[a-z]+" .*namespace "{team_b}"'
    )
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.job(team_b, theirs.name).status()
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.job(team_b, theirs.name).wait(timeout=WAIT_S)
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.submit(job(team_b, "intruder"))
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.jobs(team_b)
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.job(team_b, theirs.name).cancel()
    # Her own tenant works.
    mine = alice.submit(job(team_a, "mine"))
    assert mine.wait(timeout=WAIT_S).phase == "Succeeded"


@pytest.fixture(scope="module")
def viewed(admin: moon.Client) -> str:
    """A tenant where bob holds only the cluster's built-in `view` role (his
    group, team-b, has rights in kube-b alone)."""
    tenant = "kube-view"
    admin.create_tenant(tenant, quota=moon.Quota(cpus=4, memory="4Gi"), groups=["kube-view"])
    kubectl_apply({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "bob-views", "namespace": tenant},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
    })  # fmt: skip
    return tenant


def recorded_phase(tenant: str, name: str) -> str | None:
    """The outcome written on the job's anchor, if anyone has written it."""
    anchor = kubectl_json("get", "configmap", name, "-n", tenant)
    return (anchor["metadata"].get("annotations") or {}).get("moon.dev/phase")


def replica_suspended(tenant: str, replica_job: str) -> bool:
    return bool(kubectl_json("get", "job", replica_job, "-n", tenant)["spec"].get("suspend"))


def test_a_user_who_may_only_view_reads_ended_jobs_and_leaves_the_record_to_writers(
    admin: moon.Client, viewed: str, run_cli: RunCli, tmp_path: Path
) -> None:
    command = [sys.executable, "-c", "pass"]
    role = {"command": command, "cpus": "100m", "memory": "64Mi"}
    # Submitted and forgotten: nobody with write rights reads them after their end.
    succeeded = admin.submit(job(viewed, "viewed"))
    failed = admin.submit(
        moon.Job(
            name=unique("viewed-failed"),
            tenant=viewed,
            framework="pytorch",
            roles=[
                moon.Role("master", env={"MOON_TEST_FAIL": "1"}, **role),
                moon.Role("worker", env={"MOON_TEST_DURATION": "600s"}, **role),
            ],
        )
    )
    bob = client_as("bob")

    assert bob.job(viewed, succeeded.name).wait(timeout=WAIT_S).phase == "Succeeded"
    with pytest.raises(moon.JobFailed):
        bob.job(viewed, failed.name).wait(timeout=WAIT_S)
    for handle, phase in [(succeeded, "Succeeded"), (failed, "Failed")]:
        viewing = bob.job(viewed, handle.name)
        assert viewing.status().phase == phase
        events = viewing.events()
        assert events[0].kind == "Submitted" and events[-1].phase == phase
        replicas = {line.replica for line in viewing.log_lines()}
        assert replicas == {"master-0", "worker-0"}
    listed = {status.name: status.phase for status in bob.jobs(viewed)}
    assert listed[succeeded.name] == "Succeeded" and listed[failed.name] == "Failed"
    followed = list(bob.job(viewed, succeeded.name).log_lines(follow=True))
    assert {line.replica for line in followed} == {"master-0", "worker-0"}

    cli = {"home": tmp_path}
    as_bob = cli_as("bob")
    for handle, phase in [(succeeded, "Succeeded"), (failed, "Failed")]:
        key = f"{viewed}/{handle.name}"
        got = run_cli(*as_bob, "-o", "json", "job", "get", key, **cli)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["phase"] == phase
        told = run_cli(*as_bob, "-o", "json", "job", "events", key, **cli)
        assert told.returncode == 0, told.stderr
        assert json.loads(told.stdout.splitlines()[-1])["phase"] == phase
        logged = run_cli(*as_bob, "job", "logs", key, **cli)
        assert logged.returncode == 0, logged.stderr
        assert "[master-0] moon-test log line 1" in logged.stdout.splitlines()
    listed_cli = run_cli(*as_bob, "-o", "json", "job", "ls", "--tenant", viewed, **cli)
    assert listed_cli.returncode == 0, listed_cli.stderr
    phases = {status["name"]: status["phase"] for status in json.loads(listed_cli.stdout)}
    assert (phases[succeeded.name], phases[failed.name]) == ("Succeeded", "Failed")

    # Reading wrote nothing: the outcome and the stop of the worker still running
    # wait for a reader who may write.
    worker = f"{failed.name}-worker-0"
    assert recorded_phase(viewed, succeeded.name) is None
    assert recorded_phase(viewed, failed.name) is None
    assert not replica_suspended(viewed, worker)
    assert succeeded.status().phase == "Succeeded"
    assert recorded_phase(viewed, succeeded.name) == "Succeeded"
    assert {status.name for status in admin.jobs(viewed)} >= {failed.name}
    assert recorded_phase(viewed, failed.name) == "Failed"
    assert replica_suspended(viewed, worker)


def test_a_user_who_may_only_view_may_not_submit_or_cancel(
    admin: moon.Client, viewed: str, run_cli: RunCli, tmp_path: Path
) -> None:
    running = admin.submit(job(viewed, "viewer-cancels", env={"MOON_TEST_DURATION": "600s"}))
    wait_for_event(running, lambda e: e.phase == "Running")
    bob = client_as("bob")
    refused = f'User "bob" cannot (create|patch) resource "configmaps" .*namespace "{viewed}"'
    with pytest.raises(moon.PermissionDenied, match=refused):
        bob.job(viewed, running.name).cancel()
    with pytest.raises(moon.PermissionDenied, match=refused):
        bob.submit(job(viewed, "viewer-submits"))
    cancelled = run_cli(*cli_as("bob"), "job", "cancel", f"{viewed}/{running.name}", home=tmp_path)
    assert cancelled.returncode == 5, cancelled.stderr
    assert 'User "bob" cannot patch resource "configmaps"' in cancelled.stderr
    assert running.status().phase == "Running"
    assert running.cancel().phase == "Cancelled"


# --------------------------------------------------------------------------- placement


def test_a_gpu_job_lands_on_gpu_nodes_and_cpu_jobs_never_do(
    admin: moon.Client, team_a: str
) -> None:
    gpu = admin.submit(job(team_a, "gpu", gpus=1))
    cpu = admin.submit(job(team_a, "cpu", workers=6))
    assert gpu.wait(timeout=WAIT_S).phase == "Succeeded"
    assert cpu.wait(timeout=WAIT_S).phase == "Succeeded"

    gpu_nodes = {p["spec"]["nodeName"] for p in pods_of(team_a, gpu.name)}
    workers = [
        p
        for p in pods_of(team_a, gpu.name)
        if p["metadata"]["name"].startswith(f"{gpu.name}-worker")
    ]
    assert workers and all(p["spec"]["nodeName"].startswith("gpu-") for p in workers), gpu_nodes
    cpu_nodes = {p["spec"]["nodeName"] for p in pods_of(team_a, cpu.name)}
    assert len(pods_of(team_a, cpu.name)) == 7
    assert cpu_nodes and all(node.startswith("cpu-") for node in cpu_nodes), cpu_nodes


# --------------------------------------------------------------------------- rendezvous


def test_rendezvous_names_are_the_hostnames_the_headless_service_publishes(
    admin: moon.Client, team_a: str
) -> None:
    handle = admin.submit(
        job(team_a, "dns", workers=2, framework="tensorflow", env={"MOON_TEST_DURATION": "60s"})
    )
    wait_for_event(handle, lambda e: e.phase == "Running")
    try:
        published: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(published) < 2:
            slices = kubectl_json(
                "get", "endpointslices", "-n", team_a,
                "-l", f"kubernetes.io/service-name={handle.name}",
            )["items"]  # fmt: skip
            published = {
                f"{endpoint['hostname']}.{handle.name}.{team_a}.svc"
                for item in slices
                for endpoint in item.get("endpoints") or []
                if endpoint.get("hostname")
            }
            time.sleep(0.2)
        for pod in pods_of(team_a, handle.name):
            env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
            cluster = json.loads(env["TF_CONFIG"])["cluster"]
            hosts = {address.rsplit(":", 1)[0] for address in cluster["worker"]}
            assert hosts == published, (hosts, published)
    finally:
        handle.cancel()


# --------------------------------------------------------------------------- ownership


def test_deleting_the_anchor_removes_the_whole_job(admin: moon.Client, team_a: str) -> None:
    handle = admin.submit(job(team_a, "owned", workers=2, env={"MOON_TEST_DURATION": "60s"}))
    wait_for_event(handle, lambda e: e.phase == "Running")
    selector = f"moon.dev/job={handle.name}"
    owned = kubectl_json("get", "jobs,services,pods", "-n", team_a, "-l", selector)["items"]
    assert len(owned) == 7, [o["metadata"]["name"] for o in owned]  # 3 Jobs, 3 pods, 1 Service
    deleted = subprocess.run(
        [
            str(env_path("MOON_TEST_KUBECTL")),
            "--kubeconfig", str(env_path("MOON_TEST_KUBECONFIG_ADMIN")),
            "-n", team_a, "delete", "configmap", handle.name,
            "--cascade=foreground", "--timeout=60s",
        ],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    left = kubectl_json("get", "jobs,services,pods", "-n", team_a, "-l", selector)["items"]
    assert left == []
    with pytest.raises(moon.NotFound):
        handle.status()


def test_moon_delete_leaves_nothing_of_the_job_in_the_cluster(
    admin: moon.Client, team_a: str
) -> None:
    handle = admin.submit(job(team_a, "deleted", workers=1, env={"MOON_TEST_DURATION": "60s"}))
    wait_for_event(handle, lambda e: e.phase == "Running")
    handle.delete(force=True)
    selector = f"moon.dev/job={handle.name}"
    # Gone by the time delete returns: the anchor went last, after what it owns.
    left = kubectl_json("get", "configmaps,jobs,services,pods", "-n", team_a, "-l", selector)
    assert left["items"] == []


def test_a_time_to_live_is_not_supported_and_nothing_is_made(
    admin: moon.Client, team_a: str
) -> None:
    spec = job(team_a, "ttl")
    spec.ttl_seconds_after_finished = 60
    with pytest.raises(
        moon.NotSupported, match="ttlSecondsAfterFinished on the kubernetes"
    ) as refused:
        admin.submit(spec)
    assert isinstance(refused.value, NotImplementedError)
    with pytest.raises(moon.NotFound):
        admin.job(team_a, spec.name)


# --------------------------------------------------------------------------- CLI


def test_the_cli_drives_the_cluster_with_one_switch(
    run_cli: RunCli, tmp_path: Path, team_a: str
) -> None:
    spec = job(team_a, "cli", workers=2)
    env = {
        "MOON_BACKEND": "kubernetes",
        "MOON_TOLERATIONS": KWOK_TAINT,
    }
    kubeconfig = str(env_path("MOON_TEST_KUBECONFIG_ADMIN"))
    submitted = run_cli(
        "--kubeconfig", kubeconfig, "job", "submit", "-f", "-", "--wait",
        home=tmp_path, input=json.dumps(spec.to_dict()), env=env,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert f"job {team_a}/{spec.name} succeeded" in submitted.stdout
    listed = run_cli(
        "--backend", "kubernetes", "--kubeconfig", kubeconfig, "-o", "json",
        "job", "ls", "--tenant", team_a,
        home=tmp_path, env={"MOON_TOLERATIONS": KWOK_TAINT},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert spec.name in [status["name"] for status in json.loads(listed.stdout)]
    refused = run_cli(*cli_as("bob"), "job", "get", f"{team_a}/{spec.name}", home=tmp_path)
    assert refused.returncode == 5, refused.stderr
    assert 'User "bob" cannot' in refused.stderr
    assert not list(tmp_path.iterdir()), "the kubernetes backend leaves no MOON_HOME behind"


# --------------------------------------------------------------------------- secrets


def test_a_tenants_secret_reaches_its_roles_pods_by_reference_only(team_a: str) -> None:
    # A tenant member, not an administrator, manages the tenant's secrets.
    alice = client_as("alice")
    name = unique("wandb")
    value = f"kube-{secrets.token_hex(16)}"
    assert alice.create_secret(team_a, name, {"WANDB_API_KEY": value}) == "created"
    assert alice.create_secret(team_a, name, {"WANDB_API_KEY": value}) == "unchanged"
    stored = kubectl_json("get", "secret", name, "-n", team_a)
    assert stored["type"] == "Opaque"
    assert base64.b64decode(stored["data"]["WANDB_API_KEY"]).decode() == value
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "moon"
    assert moon.SecretInfo(team_a, name, ["WANDB_API_KEY"]) in alice.secrets(team_a)

    spec = job(team_a, "secret")
    spec.roles[0].env_from = [name]
    handle = alice.submit(spec)
    assert handle.wait(timeout=WAIT_S).phase == "Succeeded"
    pods = pods_of(team_a, spec.name)
    containers = {
        pod["metadata"]["labels"]["moon.dev/role"]: pod["spec"]["containers"][0] for pod in pods
    }
    assert containers["master"]["envFrom"] == [{"secretRef": {"name": name}}]
    assert "envFrom" not in containers["worker"]
    anchor = kubectl_json("get", "configmap", spec.name, "-n", team_a)
    jobs = kubectl_json("get", "jobs", "-n", team_a, "-l", f"moon.dev/job={spec.name}")
    for objects in (anchor, jobs, pods):
        assert value not in json.dumps(objects)
    assert all(value not in event.message for event in handle.events())

    missing = job(team_a, "missing")
    missing.roles[0].env_from = [f"{name}-gone"]
    with pytest.raises(moon.NotFound, match=f'secret "{team_a}/{name}-gone" not found'):
        alice.submit(missing)
    assert missing.name not in [status.name for status in alice.jobs(team_a)]

    alice.delete_secret(team_a, name)
    with pytest.raises(moon.NotFound, match=f'secret "{team_a}/{name}" not found'):
        alice.delete_secret(team_a, name)


def test_the_cli_creates_a_secret_in_the_tenants_namespace(
    run_cli: RunCli, tmp_path: Path, team_a: str
) -> None:
    name = unique("hf")
    value = f"cli-{secrets.token_hex(16)}"
    kubeconfig = str(env_path("MOON_TEST_KUBECONFIG_ALICE"))
    created = run_cli(
        "--backend", "kubernetes", "--kubeconfig", kubeconfig,
        "secret", "create", name, "--tenant", team_a, "--from-env-file", "-",
        home=tmp_path, input=f"HF_TOKEN={value}\n",
    )  # fmt: skip
    assert (created.returncode, created.stdout) == (0, f"secret {team_a}/{name} created\n")
    stored = kubectl_json("get", "secret", name, "-n", team_a)
    assert base64.b64decode(stored["data"]["HF_TOKEN"]).decode() == value
    listed = run_cli(
        "--backend", "kubernetes", "--kubeconfig", kubeconfig,
        "secret", "ls", "--tenant", team_a,
        home=tmp_path,
    )  # fmt: skip
    assert f"{name}  HF_TOKEN" in listed.stdout
    assert value not in created.stdout + created.stderr + listed.stdout + listed.stderr


def test_a_secret_moon_did_not_make_is_usable_but_not_deleted_by_moon(
    admin: moon.Client, team_a: str
) -> None:
    name = unique("synced")
    done = subprocess.run(
        [
            str(env_path("MOON_TEST_KUBECTL")),
            "--kubeconfig", str(env_path("MOON_TEST_KUBECONFIG_ADMIN")),
            "create", "secret", "generic", name, "-n", team_a, "--from-literal=TOKEN=x",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    spec = job(team_a, "synced")
    spec.roles[0].env_from = [name]
    assert admin.submit(spec).wait(timeout=WAIT_S).phase == "Succeeded"
    assert name not in [secret.name for secret in admin.secrets(team_a)]
    with pytest.raises(moon.Conflict, match="not made by moon"):
        admin.delete_secret(team_a, name)


def test_inherit_env_is_refused_on_a_cluster(admin: moon.Client, team_a: str) -> None:
    spec = job(team_a, "inherit")
    spec.roles[0].inherit_env = ["HOME"]
    with pytest.raises(moon.InvalidSpec, match=r"roles\[0\]\.inheritEnv: has no meaning"):
        admin.submit(spec)


# --------------------------------------------------------------------------- logs


def test_logs_come_from_every_replica_prefixed_and_follow_ends_with_the_job(
    admin: moon.Client, team_a: str
) -> None:
    # KWOK serves the same three lines for every container ("moon-test log line 1".."3").
    handle = admin.submit(job(team_a, "logs", workers=2, env={"MOON_TEST_DURATION": "3s"}))
    followed = list(handle.log_lines(follow=True))
    assert handle.status().phase == "Succeeded"
    by_replica: dict[str, list[str]] = {}
    for line in followed:
        by_replica.setdefault(line.replica, []).append(line.line)
    expected = [f"moon-test log line {n}" for n in (1, 2, 3)]
    assert by_replica == {name: expected for name in ["master-0", "worker-0", "worker-1"]}
    assert all(line.time.year >= 2026 for line in followed)

    tail = [str(line) for line in handle.logs(tail=1, replica="worker-1")]
    assert tail == ["[worker-1] moon-test log line 3"]
    with pytest.raises(moon.NotFound):
        list(handle.logs(replica="worker-7"))


# --------------------------------------------------------------------------- watches


def test_wait_returns_the_right_result_across_an_apiserver_restart(
    admin: moon.Client, team_a: str
) -> None:
    handle = admin.submit(job(team_a, "restart", env={"MOON_TEST_DURATION": "8s"}))
    wait_for_event(handle, lambda e: e.phase == "Running")
    outcome: dict[str, Any] = {}

    def waiting() -> None:
        try:
            outcome["status"] = handle.wait(timeout=120)
        except Exception as error:  # reported by the assertion below
            outcome["error"] = error

    waiter = threading.Thread(target=waiting)
    waiter.start()
    restart = subprocess.run(
        [
            str(Path(__file__).parents[2] / "scripts/k8s/restart-apiserver.sh"),
            "--dir",
            str(env_path("MOON_TEST_CLUSTER_DIR")),
            "--down-seconds",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert restart.returncode == 0, restart.stderr
    waiter.join(timeout=150)
    assert not waiter.is_alive()
    assert "error" not in outcome, outcome
    assert outcome["status"].phase == "Succeeded"
    assert [r.phase for r in outcome["status"].replicas] == ["Succeeded", "Succeeded"]


# --------------------------------------------------------------------------- GPU selectors


@pytest.fixture(scope="module")
def placement_team(admin: moon.Client) -> str:
    """A tenant whose GPU quota never holds a placement test back.

    Placement tests run back to back; sharing team-a's quota of 2 GPUs, each
    one waited for the quota controller to count the last one's pods as
    ended, and the Job controller's backoff on the refused pods could then
    outlast the test's wait.
    """
    admin.create_tenant("kube-placement", quota=moon.Quota(cpus=16, memory="16Gi", gpus=16))
    return "kube-placement"


@pytest.mark.parametrize(
    ("gpus", "pool"),
    [("A100:1", "gpu-a100-"), ("80GB+:1", "gpu-h100-"), ("H100,cc9.0+:1", "gpu-h100-")],
)
def test_a_gpu_selector_lands_only_on_nodes_of_that_model_and_memory(
    admin: moon.Client, placement_team: str, gpus: str, pool: str
) -> None:
    spec = job(placement_team, "model", workers=2)
    spec.roles[-1].gpus = gpus
    handle = admin.submit(spec)
    try:
        assert handle.wait(timeout=WAIT_S).phase == "Succeeded"
    except moon.Timeout:
        pytest.fail(f"still {handle.status().phase} after {WAIT_S}s: {handle.events()}")
    workers = [
        p for p in pods_of(placement_team, handle.name) if "-worker-" in p["metadata"]["name"]
    ]
    assert len(workers) == 2
    assert all(p["spec"]["nodeName"].startswith(pool) for p in workers), [
        p["spec"]["nodeName"] for p in workers
    ]


def test_a_selector_no_node_matches_is_held_with_the_schedulers_words(
    admin: moon.Client, team_a: str
) -> None:
    spec = job(team_a, "nomatch")
    spec.roles[-1].gpus = "B200:1"
    handle = admin.submit(spec)
    event = wait_for_event(
        handle, lambda e: e.kind == "Pending" and "nodes are available" in e.message
    )
    assert "didn't match Pod's node affinity" in event.message, event.message
    assert handle.status().reason == "Unschedulable"
    handle.cancel()


# --------------------------------------------------------------------------- services


@pytest.fixture(scope="module")
def serving(admin: moon.Client) -> str:
    """A tenant of its own for services, team-a's users among its members."""
    admin.create_tenant("kube-serve", quota=moon.Quota(cpus=8, memory="8Gi"), groups=["team-a"])
    return "kube-serve"


def service(tenant: str, prefix: str, replicas: int = 2, **fields: Any) -> moon.Service:
    return moon.Service(
        name=unique(prefix),
        tenant=tenant,
        command=[sys.executable, "-m", "http.server"],
        replicas=replicas,
        cpus="100m",
        memory="64Mi",
        readiness={"httpPath": "/healthz"},
        **fields,
    )


def rendered(spec: moon.Service) -> dict[str, dict[str, Any]]:
    """What moon renders of ``spec``, by kind."""
    return {
        doc["kind"]: doc
        for doc in yaml.safe_load_all(moon.render(spec, tolerations=[KWOK_TAINT]))
        if doc
    }


def of_service(kinds: str, tenant: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl_json(
        "get", kinds, "-n", tenant, "-l", f"moon.dev/service={name}"
    )["items"]
    return items


def ready_addresses(tenant: str, name: str) -> list[str]:
    """The addresses the Service's EndpointSlices list as ready."""
    slices = kubectl_json(
        "get", "endpointslices", "-n", tenant, "-l", f"kubernetes.io/service-name={name}"
    )["items"]
    return sorted(
        address
        for piece in slices
        for endpoint in piece.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    )


def test_a_service_is_applied_as_rendered_and_ready_with_endpoint_slices_of_its_replicas(
    admin: moon.Client, serving: str
) -> None:
    spec = service(serving, "web")
    svc = admin.serve(spec)
    status = svc.wait_ready(timeout=WAIT_S)
    assert status.url == f"http://{spec.name}.{serving}.svc:8080"
    assert (status.desired_replicas, status.ready_replicas) == (2, 2)

    expected = rendered(spec)
    deployment = kubectl_json("get", "deployment", spec.name, "-n", serving)
    assert deployment["spec"]["strategy"] == expected["Deployment"]["spec"]["strategy"]
    assert deployment["spec"]["selector"] == expected["Deployment"]["spec"]["selector"]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/healthz"
    cluster_service = kubectl_json("get", "service", spec.name, "-n", serving)
    assert cluster_service["spec"]["selector"] == expected["Service"]["spec"]["selector"]
    budget = kubectl_json("get", "poddisruptionbudget", spec.name, "-n", serving)
    assert budget["spec"] == expected["PodDisruptionBudget"]["spec"]

    pods = of_service("pods", serving, spec.name)
    pod_ips = sorted(pod["status"]["podIP"] for pod in pods)
    assert len(pod_ips) == 2 and all(pod["spec"]["nodeName"] for pod in pods)
    assert ready_addresses(serving, spec.name) == pod_ips
    assert sorted(r.address or "" for r in status.replicas) == [f"{ip}:8080" for ip in pod_ips]
    assert [s.name for s in admin.list_services(serving)] == [spec.name]
    assert admin.serve(spec) is not None  # applied again: nothing changes
    assert (
        kubectl_json("get", "deployment", spec.name, "-n", serving)["metadata"]["generation"]
        == deployment["metadata"]["generation"]
    )
    svc.delete()


def test_a_service_scales_through_the_scale_subresource_and_its_slices_follow(
    admin: moon.Client, serving: str
) -> None:
    spec = service(serving, "scaled")
    svc = admin.serve(spec)
    svc.wait_ready(timeout=WAIT_S)
    assert svc.scale(3).desired_replicas == 3
    status = svc.wait_ready(timeout=WAIT_S)
    assert status.ready_replicas == 3
    deployment = kubectl_json(
        "get", "deployment", spec.name, "-n", serving, "--show-managed-fields"
    )
    assert deployment["spec"]["replicas"] == 3
    # The count was written through the scale subresource, by moon.
    scaled_by = [
        entry["manager"]
        for entry in deployment["metadata"]["managedFields"]
        if entry.get("subresource") == "scale"
    ]
    assert scaled_by == ["moon"], deployment["metadata"]["managedFields"]
    deadline = time.monotonic() + WAIT_S
    while len(ready_addresses(serving, spec.name)) != 3:
        assert time.monotonic() < deadline, ready_addresses(serving, spec.name)
        time.sleep(0.2)

    svc.scale(1)
    deadline = time.monotonic() + WAIT_S
    while len(of_service("pods", serving, spec.name)) != 1:
        assert time.monotonic() < deadline, of_service("pods", serving, spec.name)
        time.sleep(0.2)
    assert svc.wait_ready(timeout=WAIT_S).desired_replicas == 1
    svc.delete()


def test_autoscaling_renders_an_hpa_or_a_scaled_object_that_the_server_accepts(
    admin: moon.Client, serving: str
) -> None:
    spec = service(
        serving, "scaling", autoscale={"minReplicas": 1, "maxReplicas": 4, "targetInFlight": 2}
    )
    svc = admin.serve(spec)
    svc.wait_ready(timeout=WAIT_S)
    hpa = kubectl_json("get", "horizontalpodautoscaler", spec.name, "-n", serving)["spec"]
    want = rendered(spec)["HorizontalPodAutoscaler"]["spec"]
    for field in ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics"):
        assert hpa[field] == want[field], field
    # The server fills in the scaling policies beside the windows moon sets.
    for direction in ("scaleUp", "scaleDown"):
        assert (
            hpa["behavior"][direction]["stabilizationWindowSeconds"]
            == want["behavior"][direction]["stabilizationWindowSeconds"]
        )

    # To zero: KEDA's ScaledObject takes over from the HPA, which is pruned.
    spec.autoscale = {"minReplicas": 0, "maxReplicas": 4, "targetInFlight": 2}
    admin.serve(spec)
    scaled = kubectl_json("get", "scaledobject", spec.name, "-n", serving)
    assert scaled["spec"] == rendered(spec)["ScaledObject"]["spec"]
    assert of_service("horizontalpodautoscalers", serving, spec.name) == []
    svc.delete()
    assert of_service("scaledobjects", serving, spec.name) == []


def test_a_deleted_service_leaves_nothing_and_is_not_found(
    admin: moon.Client, serving: str
) -> None:
    spec = service(serving, "gone")
    svc = admin.serve(spec)
    svc.wait_ready(timeout=WAIT_S)
    svc.delete()
    assert of_service("deployments,services,poddisruptionbudgets", serving, spec.name) == []
    with pytest.raises(moon.NotFound):
        svc.status()
    with pytest.raises(moon.NotFound):
        admin.service(serving, spec.name).scale(2)


def test_another_tenants_user_may_not_read_serve_or_scale_its_services(
    admin: moon.Client, serving: str, team_b: str
) -> None:
    theirs = admin.serve(service(team_b, "private", replicas=1))
    alice = client_as("alice")
    refused = f'User "alice" cannot (get|list|patch) resource "[a-z]+" .*namespace "{team_b}"'
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.service(team_b, theirs.name).status()
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.serve(service(team_b, "intruder", replicas=1))
    with pytest.raises(moon.PermissionDenied, match=refused):
        alice.service(team_b, theirs.name).scale(3)
    # In her own tenant she serves and scales.
    mine = alice.serve(service(serving, "mine", replicas=1))
    assert mine.wait_ready(timeout=WAIT_S).ready_replicas == 1
    assert mine.scale(2).desired_replicas == 2
    mine.delete()
    theirs.delete()
