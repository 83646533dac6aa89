"""This machine's GPUs through ``moon gpu ls|labels`` and ``moon.gpus()``, from a static
inventory (MOON_GPU_INVENTORY): the example DGX H100 of moon-gpu, whose GPU 2 has
uncorrectable ECC errors and GPU 5 has fallen off the bus. Without NVML and without
the variable, both say so, and the CLI exits 7."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT, RunCli

import moon

EXAMPLE = REPO_ROOT / "moon-gpu" / "examples" / "inventory-h100x8.yaml"
OK = 0
INVALID_INPUT = 2
NO_GPUS = 7
ECC_BROKEN = "GPU-c47b2e91-0f3d-48a6-b5e2-96d1e0a7c3f4"
OFF_THE_BUS = "GPU-7c18a3d5-9e4f-42b0-b6a1-3f8d2e5c7091"


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "gpus.yaml"
    shutil.copyfile(EXAMPLE, path)
    return path


@pytest.fixture
def gpu_cli(run_cli: RunCli, tmp_path: Path, inventory: Path) -> RunCli:
    """``moon`` with MOON_GPU_INVENTORY naming the example, unless ``env`` says otherwise."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {"MOON_GPU_INVENTORY": str(inventory), **(env or {})}
        return run_cli(*args, home=tmp_path / "home", env=full_env, timeout=30)

    return run


# --------------------------------------------------------------------------- the CLI


def test_ls_shows_every_device_and_the_unhealthy_ones_with_their_reason(gpu_cli: RunCli) -> None:
    result = gpu_cli("gpu", "ls")
    assert result.returncode == OK, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Host:", "dgx-h100-017"]
    header = next(at for at, line in enumerate(lines) if line.startswith("INDEX"))
    assert lines[header].split() == [
        *("INDEX", "UUID", "MODEL", "MEMORY", "TEMP", "UTIL", "HEALTH", "REASON"),
    ]
    rows = {line.split()[0]: line for line in lines[header + 1 :]}
    assert sorted(rows) == [str(index) for index in range(8)]
    assert rows["0"].split()[1] == "GPU-8f3a1c2e"
    assert "71243/81559 MiB  64°C  97%   healthy" in rows["0"]
    assert "unhealthy  2 volatile uncorrectable ECC errors (+1 more)" in rows["2"]
    assert rows["5"].endswith("unhealthy  XID 79: GPU has fallen off the bus")
    # An application XID leaves the device healthy.
    assert rows["3"].endswith("healthy    -")


def test_ls_json_and_yaml_are_the_whole_inventory(gpu_cli: RunCli, tmp_path: Path) -> None:
    result = gpu_cli("gpu", "ls", "-o", "json")
    assert result.returncode == OK, result.stderr
    inventory = json.loads(result.stdout)
    whole = json.loads(result.stdout)
    assert (inventory["hostname"], inventory["driverVersion"]) == ("dgx-h100-017", "550.54.15")
    devices = {device["uuid"]: device for device in inventory["devices"]}
    assert len(devices) == 8
    assert devices[ECC_BROKEN]["health"] == {
        "status": "unhealthy",
        "reasons": [
            "2 volatile uncorrectable ECC errors",
            "a row remapping is pending; a GPU reset applies it",
        ],
    }
    assert devices[OFF_THE_BUS]["temperatureC"] is None
    assert devices[OFF_THE_BUS]["counters"]["xidErrors"] == [{"xid": 79, "timeMs": 1732881529644}]

    as_yaml = gpu_cli("gpu", "ls", "-o", "yaml")
    assert as_yaml.returncode == OK, as_yaml.stderr
    # PyYAML reads YAML 1.1, where an unquoted 00000000:43:00.0 is a base-60 number;
    # moon writes YAML 1.2, where it is the string it reads back below.
    read = yaml.safe_load(as_yaml.stdout)
    for device in [*read["devices"], *inventory["devices"]]:
        del device["pciBusId"]
    assert read == inventory
    # What -o yaml prints is an inventory file: read back, it gives the same.
    copy = tmp_path / "copy.yaml"
    copy.write_text(as_yaml.stdout)
    again = gpu_cli("gpu", "ls", "-o", "json", env={"MOON_GPU_INVENTORY": str(copy)})
    assert json.loads(again.stdout) == whole


def test_labels_are_key_value_lines_or_json(gpu_cli: RunCli) -> None:
    result = gpu_cli("gpu", "labels")
    assert result.returncode == OK, result.stderr
    labels = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["moon.dev/gpu-health"] == "unhealthy"
    assert labels["moon.dev/gpu-healthy-count"] == "6"
    as_json = gpu_cli("gpu", "labels", "-o", "json")
    assert json.loads(as_json.stdout) == labels


def test_without_nvml_or_an_inventory_the_cli_says_so_and_exits_7(gpu_cli: RunCli) -> None:
    # An empty MOON_GPU_INVENTORY counts as unset.
    result = gpu_cli("gpu", "ls", env={"MOON_GPU_INVENTORY": ""})
    if result.returncode == OK:
        pytest.skip("this machine has NVML")
    assert result.returncode == NO_GPUS, result.stderr
    assert result.stdout == ""
    first, hint = result.stderr.splitlines()[:2]
    assert first.startswith("error: no NVML on this machine: "), result.stderr
    assert hint.startswith("hint: "), result.stderr
    assert "MOON_GPU_INVENTORY" in result.stderr


def test_a_broken_inventory_is_invalid_input_naming_the_field(
    gpu_cli: RunCli, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("devices:\n  - {index: 0, uuid: GPU-1, name: A100, memoryTotalMib: lots}\n")
    result = gpu_cli("gpu", "labels", env={"MOON_GPU_INVENTORY": str(broken)})
    assert result.returncode == INVALID_INPUT, result.stderr
    assert result.stderr.startswith(f'error: GPU inventory "{broken}", devices[0].memoryTotalMib: ')
    missing = gpu_cli("gpu", "ls", env={"MOON_GPU_INVENTORY": str(tmp_path / "none.yaml")})
    assert missing.returncode == INVALID_INPUT, missing.stderr


# --------------------------------------------------------------------------- Python


@pytest.fixture
def example(inventory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOON_GPU_INVENTORY", str(inventory))
    return inventory


def test_gpus_are_dataclasses_with_their_health(example: Path) -> None:
    inventory = moon.gpus()
    assert isinstance(inventory, moon.GpuInventory)
    assert (inventory.hostname, inventory.cuda_version) == ("dgx-h100-017", "12.4")
    assert [device.index for device in inventory.devices] == list(range(8))
    first = inventory.devices[0]
    assert isinstance(first, moon.GpuDevice)
    assert (first.name, first.memory_total_mib, first.compute_capability) == (
        "NVIDIA H100 80GB HBM3",
        81559,
        (9, 0),
    )
    assert first.throttle_reasons == ["sw-power-cap"]
    assert first.health == moon.gpu.GpuHealth("healthy", [])

    broken = inventory.device(ECC_BROKEN)
    assert broken is not None
    assert broken.health.status == "unhealthy"
    assert broken.health.reasons[0] == "2 volatile uncorrectable ECC errors"
    assert broken.counters.ecc_volatile_uncorrected == 2
    gone = inventory.device(OFF_THE_BUS)
    assert gone is not None
    assert (gone.temperature_c, gone.power_watts) == (None, None)
    assert gone.counters.ecc_volatile_uncorrected is None
    assert [event.xid for event in gone.counters.xid_errors] == [79]
    assert gone.counters.xid_errors[0].time.year == 2024

    assert inventory.worst_health == "unhealthy"
    assert len(inventory.usable) == 6
    assert inventory.device("GPU-nope") is None


def test_python_and_the_cli_read_the_same_inventory(example: Path, gpu_cli: RunCli) -> None:
    seen = json.loads(gpu_cli("gpu", "ls", "-o", "json").stdout)
    assert moon.gpus() == moon.GpuInventory.from_dict(seen)


def test_without_nvml_or_an_inventory_gpus_raise_gpu_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MOON_GPU_INVENTORY", raising=False)
    try:
        moon.gpus()
    except moon.GpuError as error:
        assert isinstance(error, moon.MoonError)
        assert error.kind == "no-nvml"
        assert str(error).startswith("no NVML on this machine: ")
    else:
        pytest.skip("this machine has NVML")


def test_a_broken_inventory_raises_gpu_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOON_GPU_INVENTORY", str(tmp_path / "none.yaml"))
    with pytest.raises(moon.GpuError, match=r"^GPU inventory ") as raised:
        moon.gpus()
    assert raised.value.kind == "inventory"


def test_gpu_errors_pickle_with_their_kind() -> None:
    error = pickle.loads(pickle.dumps(moon.GpuError("no NVML on this machine: x", kind="no-nvml")))
    assert (type(error), str(error), error.kind) == (
        moon.GpuError,
        "no NVML on this machine: x",
        "no-nvml",
    )


# --------------------------------------------------------------------------- scripts/gpu-check.py

GPU_CHECK = REPO_ROOT / "scripts" / "gpu-check.py"

# Enough of torch for the check's replica: the GPUs CUDA_VISIBLE_DEVICES names, with
# their UUIDs as torch prints them (no "GPU-"; upper case here, to be sure it is ignored).
FAKE_TORCH = """
import os, uuid

__version__ = "0.0+fake"


def _visible():
    return [entry for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry]


class _Uuid:
    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text.upper()

    @property
    def bytes(self):
        return uuid.UUID(self.text).bytes


class _Properties:
    def __init__(self, entry):
        self.name = "Fake GPU"
        self.uuid = _Uuid(entry[len("GPU-"):])


class _Tensor:
    def __init__(self, value):
        self.value = value

    def add_(self, other):
        self.value += other
        return self

    def item(self):
        return self.value


class cuda:
    is_available = staticmethod(lambda: bool(_visible()))
    device_count = staticmethod(lambda: len(_visible()))
    get_device_properties = staticmethod(lambda index: _Properties(_visible()[index]))


def ones(size, device=None):
    return _Tensor(1.0)
"""


def run_gpu_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GPU_CHECK), "--no-venv", "--timeout", "60"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gpu_check_fails_at_the_nvml_step_without_nvml() -> None:
    done = run_gpu_check({"MOON_GPU_INVENTORY": ""})
    summary = json.loads(done.stdout.splitlines()[-1])
    if summary.get("step") != "inventory":
        pytest.skip("this machine has NVML")
    assert done.returncode == 1, done.stderr
    assert summary["ok"] is False
    assert summary["error"].startswith("reading this machine's GPUs failed: no NVML on this ")
    assert "needs a machine with an NVIDIA GPU" in done.stderr


def test_gpu_check_runs_a_one_gpu_job_and_matches_torch_to_moon(
    inventory: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "fake-torch"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text(FAKE_TORCH)
    done = run_gpu_check({"MOON_GPU_INVENTORY": str(inventory), "PYTHONPATH": str(fake)})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    printed = json.loads("\n".join(lines[:-1]))
    assert len(printed["devices"]) == 8
    summary = json.loads(lines[-1])
    assert summary["ok"] is True, summary
    assert summary["inventorySource"] == f"MOON_GPU_INVENTORY={inventory}"
    assigned = summary["replica"]["cudaVisibleDevices"]
    assert assigned.startswith("GPU-") and "," not in assigned
    assert summary["inventory"]["health"][assigned] != "unhealthy"
    assert [check["ok"] for check in summary["checks"]] == [True] * 5


def load_gpu_check() -> Any:
    spec = importlib.util.spec_from_file_location("gpu_check", GPU_CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_fails_each_mismatch(example: Path) -> None:
    gpu_check = load_gpu_check()
    inventory = moon.gpus()
    good = "GPU-8f3a1c2e-5b7d-4e19-a0c6-2d9e71b4f305"
    seen = {"deviceCount": 1, "uuid": good[4:].upper(), "computed": True, "name": "H100"}

    def failed(report: dict[str, Any]) -> list[str]:
        return [item["check"] for item in gpu_check.judge(report, inventory) if not item["ok"]]

    assert failed({"cudaVisibleDevices": good, **seen}) == []
    assert failed({"cudaVisibleDevices": None, **seen}) == [
        "moon assigned one GPU by UUID",
        "the assigned GPU is a usable device of the inventory",
        "torch's GPU is the one moon assigned",
    ]
    two = f"{good},{OFF_THE_BUS}"
    assert "moon assigned one GPU by UUID" in failed({"cudaVisibleDevices": two, **seen})
    assert failed({"cudaVisibleDevices": ECC_BROKEN, **seen}) == [
        "the assigned GPU is a usable device of the inventory",
        "torch's GPU is the one moon assigned",
    ]
    assert failed({"cudaVisibleDevices": good, **seen, "deviceCount": 2}) == [
        "torch sees exactly one GPU"
    ]
    # Old torch has no uuid; its bytes alone do.
    no_text = {**seen, "uuid": None, "uuidBytes": list(uuid.UUID(good[4:]).bytes)}
    assert failed({"cudaVisibleDevices": good, **no_text}) == []
