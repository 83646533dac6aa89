"""Local job start: a trivial job, submitted to observed completion.

moon runs `python -c pass` as a one-replica job through its Python API (submit,
then `wait()`, which is woken by the agent's events) and is compared with a bare
`subprocess.run` of the same command, alternating the two so that both see the
same machine. Kubeflow's LocalProcessBackend running a trivial function is
reported beside them when the `kubeflow` package is installed, without gating
on it.

    .venv/bin/python benchmarks/local_job_start.py [--rounds 20] [--kubeflow-rounds 3]

The last line is the ratio of medians, moon / subprocess (target: at most 3x).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import moon

TRIVIAL = [sys.executable, "-c", "pass"]


def moon_round(client: moon.Client, index: int) -> float:
    job = moon.Job(
        f"trivial-{index}",
        tenant="bench",
        framework="custom",
        roles=[moon.Role("main", command=TRIVIAL, cpus="100m", memory="64Mi")],
    )
    started = time.perf_counter()
    handle = client.submit(job)
    status = handle.wait(timeout=60)
    elapsed = time.perf_counter() - started
    if status.phase != "Succeeded":
        raise SystemExit(f"benchmark job ended {status.phase}: {status.message}")
    return elapsed


def subprocess_round() -> float:
    started = time.perf_counter()
    subprocess.run(TRIVIAL, check=True)
    return time.perf_counter() - started


def kubeflow_rounds(rounds: int) -> list[float] | str:
    try:
        from kubeflow.trainer import CustomTrainer, LocalProcessBackendConfig, TrainerClient
        from kubeflow.trainer.backends.localprocess import constants as local_constants
    except ImportError as error:
        return f"not measured ({error.name} is not installed: pip install kubeflow)"

    # Its one built-in runtime installs torch into a fresh virtual environment
    # per job and starts it with torchrun; asking only for pip, which every venv
    # has, and plain python measures the backend's own cost (venv, script,
    # subprocess, status polling) without a download.
    for runtime in local_constants.local_runtimes:
        runtime.trainer.packages = ["pip"]
        runtime.trainer.framework = "python"

    def trivial() -> None:
        pass

    client = TrainerClient(backend_config=LocalProcessBackendConfig())
    runtime = client.list_runtimes()[0]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        name = client.train(runtime=runtime, trainer=CustomTrainer(func=trivial))
        job = client.wait_for_job_status(name, status={"Complete", "Failed"}, timeout=120)
        if job.status != "Complete":
            return f"not measured (the Kubeflow job ended {job.status})"
        times.append(time.perf_counter() - started)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="alternated rounds (default 20)")
    parser.add_argument(
        "--kubeflow-rounds", type=int, default=3, help="Kubeflow runs, 0 to skip (default 3)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="moon-bench-") as home:
        client = moon.Client(home=home)
        client.create_tenant("bench")
        # The first job starts the agent; that start-up is not what is measured.
        moon_round(client, 0)
        moon_times, bare_times = [], []
        for index in range(1, args.rounds + 1):
            moon_times.append(moon_round(client, index))
            bare_times.append(subprocess_round())

    moon_median = statistics.median(moon_times)
    bare_median = statistics.median(bare_times)
    print(f"rounds: {args.rounds}, alternated")
    print(f"subprocess.run       median {ms(bare_median)}  (min {ms(min(bare_times))})")
    print(f"moon submit -> done  median {ms(moon_median)}  (min {ms(min(moon_times))})")
    if args.kubeflow_rounds > 0:
        kubeflow = kubeflow_rounds(args.kubeflow_rounds)
        if isinstance(kubeflow, str):
            print(f"kubeflow LocalProcessBackend: {kubeflow}")
        else:
            median = statistics.median(kubeflow)
            print(
                f"kubeflow LocalProcessBackend median {ms(median)} "
                f"({median / moon_median:.1f}x moon's)"
            )
    ratio = moon_median / bare_median
    print(f"moon / subprocess.run: {ratio:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
