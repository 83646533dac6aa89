#!/usr/bin/env python3
"""Checks moon on a machine with an NVIDIA GPU, from a prebuilt wheel; no compiler needed.

    python scripts/gpu-check.py [--wheel PATH] [--venv DIR] [--timeout SECS] [--no-venv]

1. Finds an interpreter with moon: this one, if it imports moon and torch and no
   --wheel is given; else a virtual environment (--venv, default
   ~/.cache/moon/gpu-check/pyX.Y) that sees this interpreter's packages, with the
   wheel installed (--wheel, else the newest target/wheels/moon_ml-*.whl of this
   checkout).
2. Prints ``moon.gpus()``, the NVML inventory with each device's health, as JSON.
3. Installs torch there with pip if it is missing (pip picks the CPU or CUDA wheel).
4. Runs a job of one replica with ``gpus: 1`` on the local backend, in a fresh
   MOON_HOME: this Python, printing CUDA_VISIBLE_DEVICES and what torch.cuda sees.
5. Checks that moon assigned exactly one usable device of the inventory, by UUID
   (``GPU-<uuid>``), and that torch sees exactly one GPU, with that UUID, and
   computes on it.

The last line of stdout is a JSON summary; progress goes to stderr. Exits 0 only if
every check passed, 1 if one failed, 2 if the interpreter could not be set up.
MOON_GPU_INVENTORY, when set, replaces NVML as everywhere in moon (the summary
says so): that is for trying the script on a machine without GPUs.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
OK, FAILED, SETUP_FAILED = 0, 1, 2
MARKER = "moon-gpu-check "
TENANT = "gpu-check"
JOB = "gpu-check"
# Run by the replica: what it was given, and what torch.cuda makes of it.
REPLICA = r"""
import json, os
report = {"cudaVisibleDevices": os.environ.get("CUDA_VISIBLE_DEVICES")}
try:
    import torch
    report["torch"] = torch.__version__
    report["cudaAvailable"] = torch.cuda.is_available()
    report["deviceCount"] = torch.cuda.device_count()
    if report["deviceCount"] > 0:
        properties = torch.cuda.get_device_properties(0)
        report["name"] = properties.name
        raw = getattr(properties, "uuid", None)  # torch >= 2.0: a _CUuuid, no "GPU-"
        report["uuid"] = None if raw is None else str(raw)
        if raw is not None and hasattr(raw, "bytes"):
            report["uuidBytes"] = list(bytes(raw.bytes))
        try:
            report["computed"] = torch.ones(1, device="cuda").add_(1).item() == 2.0
        except Exception as error:
            report["computeError"] = f"{type(error).__name__}: {error}"
except Exception as error:
    report["error"] = f"{type(error).__name__}: {error}"
print("moon-gpu-check " + json.dumps(report), flush=True)
"""


def say(message: str) -> None:
    print(f"gpu-check: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- interpreter


def imports(python: str, *modules: str) -> bool:
    code = "; ".join(f"import {module}" for module in modules)
    done = subprocess.run([python, "-c", code], capture_output=True, check=False)
    return done.returncode == 0


def newest_wheel() -> Path | None:
    wheels = glob.glob(str(REPO_ROOT / "target" / "wheels" / "moon_ml-*.whl"))
    return Path(max(wheels, key=os.path.getmtime)) if wheels else None


def pip(python: str, *args: str) -> None:
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", *args]
    say(" ".join(command))
    subprocess.run(command, check=True)


def prepare_venv(venv: Path, wheel: Path | None) -> str:
    """A venv that sees this interpreter's packages (torch, perhaps moon), with the
    wheel installed over them; returns its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        say(f"creating a virtual environment in {venv}")
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
        if made.returncode != 0:
            # No ensurepip (Debian's python3 without python3-venv): the venv runs the
            # pip it inherits from this interpreter instead.
            say("retrying without pip of its own")
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # This interpreter's site-packages come after the venv's own: an installed wheel
    # wins over the moon seen here, a torch seen here needs no download.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    inherited = [path for path in sys.path if path.endswith(("site-packages", "dist-packages"))]
    Path(site, "_gpu_check_inherited.pth").write_text("".join(f"{p}\n" for p in inherited))
    if wheel is not None:
        pip(str(python), "--no-deps", "--force-reinstall", str(wheel))
    else:
        # The moon of this interpreter, not one a --wheel left in the venv before.
        for stale in [Path(site, "moon"), *Path(site).glob("moon_ml-*.dist-info")]:
            shutil.rmtree(stale, ignore_errors=True)
    return str(python)


def reexec_in_venv(args: argparse.Namespace) -> int:
    wheel = args.wheel
    if wheel is None and not imports(sys.executable, "moon"):
        wheel = newest_wheel()
        if wheel is None:
            say("this Python has no moon and no --wheel was given (nor target/wheels/*.whl)")
            return SETUP_FAILED
    venv = args.venv or default_venv()
    try:
        python = prepare_venv(venv, wheel)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as error:
        say(f"setting up {venv} failed: {error}")
        return SETUP_FAILED
    argv = [python, str(Path(__file__).resolve()), "--no-venv", "--timeout", str(args.timeout)]
    if args.keep:
        argv.append("--keep")
    env = {**os.environ, "MOON_GPU_CHECK_VENV": str(venv)}
    sys.stdout.flush()
    os.execve(python, argv, env)
    return SETUP_FAILED  # not reached


def default_venv() -> Path:
    cache = Path(os.environ.get("MOON_CACHE_DIR") or Path.home() / ".cache" / "moon")
    return cache / "gpu-check" / f"py{sys.version_info[0]}.{sys.version_info[1]}"


def ensure_torch() -> str | None:
    """None when this interpreter imports torch (installing it into the script's own
    venv if needed); else why not."""
    if imports(sys.executable, "torch"):
        return None
    if not os.environ.get("MOON_GPU_CHECK_VENV"):
        return "torch is not installed for this Python; install it, or run without --no-venv"
    try:
        pip(sys.executable, "torch")
    except subprocess.CalledProcessError as error:
        return f"pip install torch failed: {error}"
    return None if imports(sys.executable, "torch") else "torch does not import after pip"


# --------------------------------------------------------------------------- judging


def bare_uuid(value: str | None) -> str | None:
    """``GPU-8F3A...`` or ``8f3a...`` → ``8f3a...``: torch prints no ``GPU-`` prefix,
    and case is not significant; None when it is no UUID."""
    if not value:
        return None
    text = value.strip()
    if text[:4].upper() == "GPU-":
        text = text[4:]
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def torch_uuid(report: dict[str, Any]) -> str | None:
    found = bare_uuid(report.get("uuid"))
    raw = report.get("uuidBytes")
    if found is None and isinstance(raw, list) and len(raw) == 16:
        found = str(uuid.UUID(bytes=bytes(raw)))
    return found


def judge(report: dict[str, Any], inventory: Any) -> list[dict[str, Any]]:
    """Each check on the replica's report against the inventory: name, ok, detail."""
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    visible = report.get("cudaVisibleDevices")
    assigned = [entry for entry in (visible or "").split(",") if entry]
    check(
        "moon assigned one GPU by UUID",
        len(assigned) == 1 and assigned[0].startswith("GPU-"),
        f"CUDA_VISIBLE_DEVICES={visible!r}"
        + ("" if visible is not None else " (unset: this moon assigns no GPUs)"),
    )
    by_uuid = {bare_uuid(device.uuid): device for device in inventory.devices}
    device = by_uuid.get(bare_uuid(assigned[0])) if len(assigned) == 1 else None
    check(
        "the assigned GPU is a usable device of the inventory",
        device is not None and device.health.usable,
        "not in the inventory"
        if device is None
        else f"index {device.index}, {device.name}, {device.health.status}",
    )
    if "error" in report:
        check("torch runs in the replica", False, report["error"])
    count = report.get("deviceCount")
    check("torch sees exactly one GPU", count == 1, f"torch.cuda.device_count() = {count}")
    seen = torch_uuid(report)
    expected = bare_uuid(assigned[0]) if len(assigned) == 1 else None
    check(
        "torch's GPU is the one moon assigned",
        seen is not None and seen == expected,
        f"torch: {report.get('uuid')!r}, moon: {assigned[0] if assigned else None!r}"
        + ("" if "uuid" in report else f" (torch {report.get('torch')} has no device uuid)"),
    )
    check(
        "torch computes on it",
        report.get("computed") is True,
        report.get("computeError") or f"{report.get('name')}",
    )
    return checks


# --------------------------------------------------------------------------- the job


def stop_agent(home: Path) -> None:
    """Stops the agent this check's client started in ``home``, if it still runs."""
    try:
        pid = int((home / "agent.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if os.fsencode(str(home)) not in cmdline:
        return  # a recycled pid: not ours
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)


def run_job(moon: Any, home: Path, timeout: float) -> tuple[dict[str, Any] | None, list[str]]:
    """Runs the one-GPU job; returns the replica's report (None if it printed none)
    and every line the replica printed."""
    client = moon.Client("local", home=home)
    client.create_tenant(TENANT)
    role = moon.Role("check", command=[sys.executable, "-c", REPLICA], gpus=1, memory="1Gi")
    job = client.submit(moon.Job(JOB, tenant=TENANT, roles=[role]))
    say(f"submitted {job.key} (gpus: 1) to the local backend in {home}")
    try:
        status = job.wait(timeout=timeout)
        say(f"{job.key} {status.phase}")
    except moon.Timeout:
        job.cancel()
        raise
    except moon.JobFailed as error:
        say(str(error))
    log = list(job.log_lines())
    reports = [
        json.loads(line.line[len(MARKER) :])
        for line in log
        if line.stream == "stdout" and line.line.startswith(MARKER)
    ]
    return (reports[-1] if reports else None), [str(line) for line in log]


def run_checks(args: argparse.Namespace) -> int:
    summary: dict[str, Any] = {"ok": False, "python": sys.executable}
    source = os.environ.get("MOON_GPU_INVENTORY")
    summary["inventorySource"] = f"MOON_GPU_INVENTORY={source}" if source else "NVML"
    if source:
        say(f"MOON_GPU_INVENTORY is set: GPUs come from {source}, not from NVML")

    def finish(step: str, error: str | None = None) -> int:
        summary["step"] = step
        if error:
            summary["error"] = error
            say(f"{step}: {error}")
        print(json.dumps(summary), flush=True)
        return OK if summary["ok"] else FAILED

    try:
        import moon
    except ImportError as error:
        finish("setup", f"this Python cannot import moon: {error}")
        return SETUP_FAILED

    summary["moon"] = moon.__version__
    say(f"moon {moon.__version__} from {Path(moon.__file__).parent}")
    try:
        inventory = moon.gpus()
    except moon.GpuError as error:
        hint = "this check needs a machine with an NVIDIA GPU and its driver"
        return finish("inventory", f"reading this machine's GPUs failed: {error}; {hint}")
    print(json.dumps(dataclasses.asdict(inventory), indent=2, default=str), flush=True)
    summary["inventory"] = {
        "hostname": inventory.hostname,
        "driver": inventory.driver_version,
        "cuda": inventory.cuda_version,
        "devices": len(inventory.devices),
        "usable": len(inventory.usable),
        "health": {device.uuid: device.health.status for device in inventory.devices},
    }
    if not inventory.usable:
        return finish("inventory", "no usable GPU: every device is unhealthy, or there is none")

    problem = ensure_torch()
    if problem:
        return finish("torch", problem)

    home = Path(tempfile.mkdtemp(prefix="moon-gpu-check-"))
    try:
        report, lines = run_job(moon, home, args.timeout)
    except moon.QuotaExceeded as error:
        return finish("job", f"moon refused the one-GPU job: {error}")
    except moon.MoonError as error:
        return finish("job", f"{type(error).__name__}: {error}")
    finally:
        stop_agent(home)
        if args.keep:
            say(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    summary["replica"] = report
    if report is None:
        summary["output"] = lines[-20:]
        return finish("job", "the replica printed no report")
    checks = judge(report, inventory)
    summary["checks"] = checks
    for item in checks:
        say(f"{'ok  ' if item['ok'] else 'FAIL'} {item['check']}: {item['detail']}")
    summary["ok"] = all(item["ok"] for item in checks)
    return finish("checks")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="the moon_ml-*.whl to install and check")
    parser.add_argument("--venv", type=Path, help="where to make the virtual environment")
    parser.add_argument(
        "--no-venv", action="store_true", help="check with this Python as it is (needs moon)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds the job may take (default 300)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the job's MOON_HOME")
    args = parser.parse_args()
    if args.no_venv:
        return run_checks(args)
    if args.wheel is None and imports(sys.executable, "moon", "torch"):
        return run_checks(args)
    return reexec_in_venv(args)


if __name__ == "__main__":
    sys.exit(main())
