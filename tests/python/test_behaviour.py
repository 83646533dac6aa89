"""One behaviour suite for every backend: what a user sees through the Python
API must not depend on where the job runs.

Each test runs once on the local backend (real processes) and once on the
Kubernetes test cluster (scripts/k8s/up.sh; KWOK plays the pods: they end
after 1-2 s, Failed when the container has MOON_TEST_FAIL=1, and run for
MOON_TEST_DURATION when it is set). A job's spec says both: its command
behaves as the env asks the fake pods to behave.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import moon

WAIT_S = 60.0
_names = itertools.count()


@dataclass
class Backend:
    name: str
    client: moon.Client
    tenant: str

    def job(
        self,
        prefix: str,
        *,
        fail: bool = False,
        seconds: int | None = None,
        workers: int = 1,
    ) -> moon.Job:
        """A PyTorch job, master and ``workers`` workers, that succeeds at once,
        fails (``fail``) or runs for ``seconds``."""
        if fail:
            code, env = "import sys; sys.exit(1)", {"MOON_TEST_FAIL": "1"}
        elif seconds is not None:
            code, env = f"import time; time.sleep({seconds})", {"MOON_TEST_DURATION": f"{seconds}s"}
        else:
            code, env = "pass", {}
        command = [sys.executable, "-c", code]
        return moon.Job(
            name=f"{prefix}-{os.getpid()}-{next(_names)}",
            tenant=self.tenant,
            framework="pytorch",
            roles=[
                moon.Role("master", command=command, env=env, cpus="100m", memory="64Mi"),
                moon.Role(
                    "worker", replicas=workers, command=command, env=env, cpus="100m", memory="64Mi"
                ),
            ],
        )


def kubernetes_client() -> moon.Client:
    kubeconfig = os.environ.get("MOON_TEST_KUBECONFIG_ADMIN")
    if not kubeconfig:
        pytest.fail(
            "MOON_TEST_KUBECONFIG_ADMIN is not set; run ./scripts/test.sh --only kubernetes"
        )
    return moon.Client(
        "kubernetes",
        kubeconfig=kubeconfig,
        # The test cluster's fake nodes carry KWOK's taint; real clusters do not.
        tolerations=["kwok.x-k8s.io/node:NoSchedule"],
    )


@pytest.fixture(
    params=["local", pytest.param("kubernetes", marks=pytest.mark.kubernetes)],
)
def backend(request: pytest.FixtureRequest, moon_home: Path) -> Iterator[Backend]:
    if request.param == "local":
        client = moon.Client("local", home=moon_home)
        tenant = "behaviour"
    else:
        client = kubernetes_client()
        tenant = "behaviour-k8s"
    client.create_tenant(tenant, quota=moon.Quota(cpus=8, memory="8Gi"))
    yield Backend(request.param, client, tenant)


def test_a_job_runs_to_success_and_wait_returns_it(backend: Backend) -> None:
    handle = backend.client.submit(backend.job("ok", workers=2))
    assert handle.status().phase in {"Pending", "Running", "Succeeded"}
    final = handle.wait(timeout=WAIT_S)
    assert final.phase == "Succeeded"
    assert [(r.name, r.phase, r.exit_code) for r in final.replicas] == [
        ("master-0", "Succeeded", 0),
        ("worker-0", "Succeeded", 0),
        ("worker-1", "Succeeded", 0),
    ]
    assert final.started is not None and final.finished is not None
    assert final.finished >= final.started


def test_events_tell_the_story_in_order(backend: Backend) -> None:
    handle = backend.client.submit(backend.job("story"))
    watched = list(handle.watch())
    assert watched[0].kind == "Submitted"
    assert watched[-1].kind == "Succeeded" and watched[-1].phase == "Succeeded"
    started = {e.replica for e in watched if e.kind == "ReplicaStarted"}
    assert started == {"master-0", "worker-0"}
    seqs = [e.seq for e in watched]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # The same history afterwards, and from a position on.
    listed = handle.events()
    assert listed[0].kind == "Submitted" and listed[-1].kind == "Succeeded"
    assert handle.events(after=listed[0].seq) == listed[1:]


def test_a_failing_replica_fails_the_job_with_the_reason(backend: Backend) -> None:
    handle = backend.client.submit(backend.job("fails", fail=True))
    with pytest.raises(moon.JobFailed) as failed:
        handle.wait(timeout=WAIT_S)
    assert failed.value.phase == "failed"
    status = handle.status()
    assert status.phase == "Failed"
    assert status.reason == "ReplicaFailed"
    assert status.message is not None and "exited with code 1" in status.message


def test_cancel_stops_a_running_job_and_a_finished_one_refuses(backend: Backend) -> None:
    handle = backend.client.submit(backend.job("long", seconds=60))
    with handle.watch() as events:
        for event in events:
            if event.phase == "Running":
                break
    # Asked, not necessarily done: the local backend's replicas get a grace period.
    assert handle.cancel().phase in {"Running", "Cancelled"}
    with pytest.raises(moon.JobCancelled):
        handle.wait(timeout=WAIT_S)
    assert all(r.phase in {"Stopped", "Failed"} for r in handle.status().replicas)

    done = backend.client.submit(backend.job("done"))
    done.wait(timeout=WAIT_S)
    with pytest.raises(moon.Conflict, match="already ended Succeeded"):
        done.cancel()


def test_names_are_unique_and_unknown_jobs_are_not_found(backend: Backend) -> None:
    job = backend.job("unique")
    backend.client.submit(job).wait(timeout=WAIT_S)
    with pytest.raises(moon.AlreadyExists):
        backend.client.submit(job)
    with pytest.raises(moon.NotFound):
        backend.client.job(backend.tenant, "no-such-job").status()


def test_jobs_are_listed_oldest_first(backend: Backend) -> None:
    # Named against the order they are submitted in, and submitted well
    # within one second: neither their names nor a clock that counts whole
    # seconds can put them in order, only when each was created.
    first = backend.client.submit(backend.job("list-b"))
    time.sleep(0.05)
    second = backend.client.submit(backend.job("list-a"))
    assert second.name < first.name
    second.wait(timeout=WAIT_S)
    first.wait(timeout=WAIT_S)
    ours = {first.name, second.name}
    listed = [status for status in backend.client.jobs(backend.tenant) if status.name in ours]
    assert [status.name for status in listed] == [first.name, second.name]
    assert listed[0].created < listed[1].created


def test_an_invalid_job_is_refused_before_anything_is_made(backend: Backend) -> None:
    job = backend.job("invalid")
    broken = moon.Job(name=job.name, tenant=job.tenant, framework="pytorch", roles=[])
    with pytest.raises(moon.InvalidSpec):
        backend.client.submit(broken)
    with pytest.raises(moon.NotFound):
        backend.client.job(job.tenant, job.name).status()


def test_applying_a_tenant_twice_changes_nothing(backend: Backend) -> None:
    tenant = moon.Tenant(backend.tenant, moon.Quota(cpus=8, memory="8Gi"))
    assert backend.client.apply_tenant(tenant) == "unchanged"
    changed = moon.Tenant(backend.tenant, moon.Quota(cpus=8, memory="8Gi", jobs=50))
    assert backend.client.apply_tenant(changed) == "updated"
    assert backend.client.tenant(backend.tenant).spec.quota.jobs == 50
    backend.client.apply_tenant(tenant)


def _until_running(handle: moon.JobHandle) -> None:
    with handle.watch() as events:
        for event in events:
            if event.phase == "Running":
                return
    pytest.fail(f"{handle.key} ended before it ran")


def test_a_deleted_job_is_gone_and_its_name_runs_again(backend: Backend) -> None:
    job = backend.job("reused")
    handle = backend.client.submit(job)
    handle.wait(timeout=WAIT_S)
    handle.delete()
    with pytest.raises(moon.NotFound):
        handle.status()
    with pytest.raises(moon.NotFound):
        handle.events()
    assert job.name not in [status.name for status in backend.client.jobs(backend.tenant)]
    with pytest.raises(moon.NotFound):
        handle.delete()

    again = backend.client.submit(job)
    final = again.wait(timeout=WAIT_S)
    assert final.phase == "Succeeded"
    # A new job: one submission in its history, not the old one's.
    assert [e.kind for e in again.events()].count("Submitted") == 1


def test_an_unfinished_job_is_deleted_only_by_force(backend: Backend) -> None:
    job = backend.job("busy", seconds=60)
    handle = backend.client.submit(job)
    _until_running(handle)
    with pytest.raises(moon.Conflict, match=rf"job {handle.key} is Running; .*force"):
        handle.delete()
    assert handle.status().phase == "Running"

    backend.client.delete_job(backend.tenant, job.name, force=True)
    with pytest.raises(moon.NotFound):
        handle.status()
    quick = backend.job("busy")
    quick.name = job.name
    assert backend.client.submit(quick).wait(timeout=WAIT_S).phase == "Succeeded"


def test_a_tenant_is_deleted_with_its_jobs_and_only_by_force_while_they_run(
    backend: Backend,
) -> None:
    tenant = f"gone-{os.getpid()}"
    client = backend.client
    client.create_tenant(tenant, quota=moon.Quota(cpus=4, memory="4Gi"))
    done, busy = backend.job("done"), backend.job("busy", seconds=60)
    done.tenant = busy.tenant = tenant
    client.submit(done).wait(timeout=WAIT_S)
    _until_running(client.submit(busy))

    with pytest.raises(moon.Conflict, match=rf"tenant {tenant} has 1 unfinished job .*force"):
        client.delete_tenant(tenant)
    assert len(client.jobs(tenant)) == 2

    client.delete_tenant(tenant, force=True)
    with pytest.raises(moon.NotFound):
        client.tenant(tenant)
    assert tenant not in [status.spec.name for status in client.tenants()]
    with pytest.raises(moon.NotFound):
        client.job(tenant, done.name)

    # The tenant's name and its jobs' names are free again.
    client.create_tenant(tenant, quota=moon.Quota(cpus=4, memory="4Gi"))
    try:
        assert client.submit(done).wait(timeout=WAIT_S).phase == "Succeeded"
    finally:
        client.delete_tenant(tenant, force=True)
