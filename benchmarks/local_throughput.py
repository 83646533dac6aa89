"""Local throughput: many trivial jobs from many submitters to one MOON_HOME.

Each side submits jobs of `true` through moon's Python API from several processes,
each with several threads; every thread submits a job, waits for it (by events),
and submits the next. The small side (200 jobs from 8 processes x 5 threads) is
the peer of the large one (2,000 jobs from 8 processes x 25 threads): the rate
must not fall as the queue and the history grow. Each round uses a fresh home;
the sides alternate.

    .venv/bin/python benchmarks/local_throughput.py [--rounds 3] [--quick]

Checked on every round, and fatal when broken: every job Succeeded, none is
missing, and every replica ran exactly once (one attempt, one start event).
Reported: jobs/s of each side (median over rounds), the agent's peak RSS
(VmHWM), and on the last line the ratio large/small (target: >= 0.9, with
>= 25 jobs/s and <= 100 MiB).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moon

TRUE = "/bin/true"


@dataclass(frozen=True)
class Load:
    name: str
    jobs: int
    processes: int
    threads: int


def submitter(home: str, process: int, threads: int, per_thread: int, ready: Any) -> None:
    """One submitting process: `threads` threads, each submitting and waiting in turn."""
    client = moon.Client(home=home)
    failures: list[str] = []

    def run(thread: int) -> None:
        for index in range(per_thread):
            job = moon.Job(
                f"t-{process}-{thread}-{index}",
                tenant="load",
                framework="custom",
                roles=[moon.Role("main", command=[TRUE], cpus="10m", memory="1Mi")],
            )
            try:
                status = client.submit(job).wait(timeout=600)
            except moon.MoonError as error:
                failures.append(f"{job.name}: {error}")
                continue
            if status.phase != "Succeeded":
                failures.append(f"{job.name}: {status.phase} {status.message}")

    ready.wait()  # every process has started and imported moon
    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise SystemExit(f"{len(failures)} jobs failed, first: {failures[0]}")


def agent_peak_rss_kib(home: Path) -> int:
    pid = (home / "agent.pid").read_text().strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("the agent's status has no VmHWM line")


def check_exactly_once(home: Path, expected: int) -> None:
    """Nothing lost, nothing run twice, read from the state database itself."""
    db = sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True)
    phases = dict(db.execute("SELECT phase, COUNT(*) FROM jobs GROUP BY phase").fetchall())
    if phases != {"Succeeded": expected}:
        raise SystemExit(f"expected {expected} Succeeded jobs, found {phases}")
    twice = db.execute(
        "SELECT COUNT(*) FROM (SELECT job_id FROM attempts GROUP BY job_id, role, idx "
        "HAVING COUNT(*) != 1)"
    ).fetchone()[0]
    starts = db.execute(
        "SELECT COUNT(*) FROM (SELECT job_id FROM events WHERE kind = 'ReplicaStarted' "
        "GROUP BY job_id HAVING COUNT(*) != 1)"
    ).fetchone()[0]
    if twice or starts:
        raise SystemExit(f"{twice} replicas with other than one attempt, {starts} restarted")
    db.close()


@dataclass(frozen=True)
class Side:
    rate: float  # jobs per second
    rss_kib: int  # the agent's peak
    agent_cpu_ms: float  # the agent's CPU time per job


def agent_cpu_seconds(home: Path) -> float:
    pid = (home / "agent.pid").read_text().strip()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_side(load: Load) -> Side:
    """Runs one side in a fresh home."""
    with tempfile.TemporaryDirectory(prefix="moon-load-") as directory:
        home = Path(directory)
        client = moon.Client(home=str(home))
        client.create_tenant("load")
        per_thread, rest = divmod(load.jobs, load.processes * load.threads)
        if rest:
            raise SystemExit(
                f"{load.jobs} jobs do not divide among {load.processes}x{load.threads}"
            )
        # Start the agent first: its start-up is not what is measured.
        client.submit(
            moon.Job(
                "warm-up",
                tenant="load",
                framework="custom",
                roles=[moon.Role("main", command=[TRUE], cpus="10m", memory="1Mi")],
            )
        ).wait(timeout=60)
        context = multiprocessing.get_context("spawn")
        ready = context.Barrier(load.processes + 1)
        processes = [
            context.Process(target=submitter, args=(str(home), p, load.threads, per_thread, ready))
            for p in range(load.processes)
        ]
        for process in processes:
            process.start()
        ready.wait()
        started = time.perf_counter()
        agent_cpu = agent_cpu_seconds(home)
        for process in processes:
            process.join()
        elapsed = time.perf_counter() - started
        agent_cpu = agent_cpu_seconds(home) - agent_cpu
        if any(process.exitcode != 0 for process in processes):
            raise SystemExit(f"{load.name}: a submitting process failed")
        rss = agent_peak_rss_kib(home)
        check_exactly_once(home, load.jobs + 1)  # and the warm-up job
        return Side(load.jobs / elapsed, rss, agent_cpu * 1000 / load.jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round of 400 vs 80 jobs")
    args = parser.parse_args()

    small = Load("200 jobs, 8x5 threads", 200, 8, 5)
    large = Load("2000 jobs, 8x25 threads", 2000, 8, 25)
    if args.quick:
        small = Load("80 jobs, 8x5 threads", 80, 8, 5)
        large = Load("400 jobs, 8x25 threads", 400, 8, 25)
        args.rounds = 1

    rates: dict[str, list[float]] = {small.name: [], large.name: []}
    peak = 0
    for round_index in range(args.rounds):
        for load in (small, large):
            side = run_side(load)
            rates[load.name].append(side.rate)
            peak = max(peak, side.rss_kib)
            print(
                f"round {round_index + 1}: {load.name}: {side.rate:.1f} jobs/s, "
                f"agent {side.agent_cpu_ms:.1f} ms CPU per job, "
                f"peak RSS {side.rss_kib // 1024} MiB",
                flush=True,
            )

    small_rate = statistics.median(rates[small.name])
    large_rate = statistics.median(rates[large.name])
    print(f"cpus: {os.cpu_count()}, rounds: {args.rounds}, sides alternated, medians below")
    print(f"{small.name}: {small_rate:.1f} jobs/s")
    print(f"{large.name}: {large_rate:.1f} jobs/s (target >= 25)")
    print(f"agent peak RSS: {peak / 1024:.0f} MiB (target <= 100)")
    print(f"large / small: {large_rate / small_rate:.2f}x (target >= 0.9)")


if __name__ == "__main__":
    main()
