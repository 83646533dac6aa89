"""GPUs on the local backend from a static inventory (MOON_GPU_INVENTORY): each
replica gets its devices by UUID in CUDA_VISIBLE_DEVICES, a replica without GPUs
sees none, unhealthy devices are never handed out, and a job whose GPUs are
taken waits with the reason."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

import moon

A100 = "GPU-aaaaaaaa-0000-4000-8000-000000000000"
H100 = "GPU-bbbbbbbb-1111-4000-8000-000000000001"
H100_BROKEN = "GPU-cccccccc-2222-4000-8000-000000000002"

INVENTORY = f"""\
hostname: test-box
driverVersion: "550.54.15"
cudaVersion: "12.4"
nvmlVersion: "12.550.54.15"
devices:
  - {{index: 0, uuid: {A100}, name: NVIDIA A100-SXM4-40GB, memoryTotalMib: 40960,
     computeCapability: {{major: 8, minor: 0}}, pciBusId: "00000000:07:00.0"}}
  - {{index: 1, uuid: {H100}, name: NVIDIA H100 80GB HBM3, memoryTotalMib: 81559,
     computeCapability: {{major: 9, minor: 0}}, pciBusId: "00000000:1B:00.0"}}
  - {{index: 2, uuid: {H100_BROKEN}, name: NVIDIA H100 80GB HBM3, memoryTotalMib: 81559,
     computeCapability: {{major: 9, minor: 0}}, pciBusId: "00000000:43:00.0",
     counters: {{eccVolatileUncorrected: 2}}}}
"""
WAIT_S = 30.0
SHOW_DEVICES = "import os; print(repr(os.environ.get('CUDA_VISIBLE_DEVICES')))"


@pytest.fixture
def client(moon_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> moon.Client:
    inventory = tmp_path / "gpus.yaml"
    inventory.write_text(INVENTORY)
    # The agent this client starts inherits it.
    monkeypatch.setenv("MOON_GPU_INVENTORY", str(inventory))
    client = moon.Client("local", home=moon_home)
    client.create_tenant("vision", quota=moon.Quota(cpus=4, memory="4Gi", gpus=2))
    return client


def role(name: str, gpus: int | str, code: str = SHOW_DEVICES) -> moon.Role:
    return moon.Role(
        name, command=[sys.executable, "-c", code], gpus=gpus, cpus="100m", memory="64Mi"
    )


def devices_seen(handle: moon.JobHandle) -> dict[str, str]:
    return {line.replica: line.line for line in handle.log_lines() if line.stream == "stdout"}


def test_replicas_get_their_devices_by_uuid_and_others_see_none(client: moon.Client) -> None:
    handle = client.submit(
        moon.Job(
            "placed",
            tenant="vision",
            roles=[role("train", "H100:1"), role("small", "40GB+:1"), role("cpu", 0)],
        )
    )
    assert handle.wait(timeout=WAIT_S).phase == "Succeeded"
    # The healthy H100, the A100 (the smallest device that fits 40GB+), and none.
    assert devices_seen(handle) == {
        "train-0": repr(H100),
        "small-0": repr(A100),
        "cpu-0": "''",
    }


def test_a_job_whose_gpus_are_taken_waits_with_the_reason(
    client: moon.Client, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    hold = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)"
    first = client.submit(moon.Job("first", tenant="vision", roles=[role("train", "H100:1", hold)]))
    deadline = time.monotonic() + WAIT_S
    while first.status().phase != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    second = client.submit(moon.Job("second", tenant="vision", roles=[role("train", "H100:1")]))
    deadline = time.monotonic() + WAIT_S
    while (status := second.status()).reason != "Capacity":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status.phase == "Pending"
    assert status.message == (
        "machine: train-0 asks H100:1: 3 devices, 1 is another model, 1 unhealthy, 1 in use, 0 left"
    )

    go.touch()
    assert first.wait(timeout=WAIT_S).phase == "Succeeded"
    assert second.wait(timeout=WAIT_S).phase == "Succeeded"
    # The device it waited for; never the unhealthy one.
    assert devices_seen(second) == {"train-0": repr(H100)}


def test_a_job_no_set_of_healthy_devices_could_serve_is_refused(client: moon.Client) -> None:
    with pytest.raises(moon.QuotaExceeded, match="could never run here") as refused:
        client.submit(moon.Job("greedy", tenant="vision", roles=[role("train", "H100:2")]))
    assert "1 unhealthy" in str(refused.value)


def test_a_device_that_fails_while_a_job_waits_is_not_handed_out(
    client: moon.Client, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    hold = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)"
    first = client.submit(
        moon.Job("holder", tenant="vision", roles=[role("train", "H100:1", hold)])
    )
    waiting = client.submit(moon.Job("waiter", tenant="vision", roles=[role("train", "H100:1")]))
    deadline = time.monotonic() + WAIT_S
    while waiting.status().reason != "Capacity":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # The healthy H100 reports uncorrectable ECC errors now (NVML would say so
    # through the agent's next read); then the job holding it ends.
    inventory = Path(os.environ["MOON_GPU_INVENTORY"])
    inventory.write_text(
        INVENTORY.replace(
            'pciBusId: "00000000:1B:00.0"}',
            'pciBusId: "00000000:1B:00.0", counters: {eccVolatileUncorrected: 1}}',
        )
    )
    go.touch()
    assert first.wait(timeout=WAIT_S).phase == "Succeeded"
    expected = "machine: train-0 asks H100:1: 3 devices, 1 is another model, 2 unhealthy, 0 left"
    deadline = time.monotonic() + WAIT_S
    while (status := waiting.status()).message != expected:
        assert status.phase == "Pending", status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    waiting.cancel()
