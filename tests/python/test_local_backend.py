"""The local backend's promises (docs/local-backend.md), shown through the Python API.

Admission by quota and by machine, restarts with backoff, deadlines, rendezvous ports,
cancel, and crash safety: moon's agent is SIGKILLed at the three points where a crash
could lose or repeat work, each through the Python API and through the CLI, and a
client is SIGKILLed right after it submits. Every replica of a crash test appends
``$MOON_REPLICA $$`` to a marker file, so a replica that ran twice leaves two lines.

Jobs run ``sh`` or ``sys.executable`` only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from conftest import RunCli, _pid_alive

import moon

TENANT = "team"
# Upper bound for one wait; a hang still ends well inside pytest's own timeout.
WAIT_S = 30.0
# The machine every test's backend sees, whatever runs the tests; a test that needs
# a smaller one writes its own.
CAPACITY = "capacity: {cpus: 8, memory: 16Gi}\n"
# A replica that waits for the file named by $GO, for WAIT_S at most.
WAIT_FOR_GO = (
    'i=0; while [ ! -e "$GO" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done; echo done'
)


# --------------------------------------------------------------------------- helpers


def shell_job(name: str, script: str, *, tenant: str = TENANT, **job: Any) -> moon.Job:
    return moon.Job(
        name=name, tenant=tenant, roles=[moon.Role("main", command=["sh", "-c", script])], **job
    )


def marked_job(name: str, marker: Path, roles: list[tuple[str, str]]) -> moon.Job:
    """One replica per role: it appends ``$MOON_REPLICA $$`` to ``marker``, then runs ``rest``."""
    return moon.Job(
        name=name,
        tenant=TENANT,
        roles=[
            moon.Role(role, command=["sh", "-c", f'echo $MOON_REPLICA $$ >> "{marker}"; {rest}'])
            for role, rest in roles
        ],
    )


def marker_lines(marker: Path) -> list[str]:
    try:
        return marker.read_text().splitlines()
    except FileNotFoundError:
        return []


def agent_pid(home: Path) -> int | None:
    try:
        return int((home / "agent.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def arm_fault(home: Path, point: str) -> Path:
    """Makes the agent SIGKILL itself at ``point``, once; it removes the file when it does."""
    fault = home / "faults" / point
    fault.parent.mkdir(exist_ok=True)
    fault.touch()
    return fault


def wait_ended(job: moon.JobHandle) -> moon.JobStatus:
    """The job's final state, whether it succeeded or not."""
    with contextlib.suppress(moon.JobFailed):
        job.wait(timeout=WAIT_S)
    status = job.status()
    assert status.done, status
    return status


@pytest.fixture
def home(moon_home: Path) -> Path:
    (moon_home / "config.yaml").write_text(CAPACITY)
    return moon_home


@pytest.fixture
def client(home: Path) -> Iterator[moon.Client]:
    client = moon.Client(home=home)
    try:
        yield client
    finally:
        # No replica outlives the test, whatever it left behind.
        for status in client.jobs():
            if not status.done:
                with contextlib.suppress(moon.MoonError):
                    client.job(status.tenant, status.name).cancel()
                    client.job(status.tenant, status.name).wait(timeout=15)


@pytest.fixture
def team(client: moon.Client) -> moon.Client:
    """``client`` with tenant ``team`` (no quota) created."""
    client.create_tenant(TENANT)
    return client


# --------------------------------------------------------------------------- admission


def test_a_job_waits_for_its_quota_with_the_numbers(client: moon.Client, tmp_path: Path) -> None:
    client.create_tenant(TENANT, quota=moon.Quota(cpus=2))
    go = tmp_path / "go"
    big = shell_job("big", WAIT_FOR_GO)
    big.roles[0].cpus = 2
    big.roles[0].env = {"GO": str(go)}
    first = client.submit(big)
    # Only once the first job holds the quota is the second bound to wait for it.
    with first.watch() as events:
        assert any(event.phase == "Running" for event in events)

    second = client.submit(shell_job("small", "true"))
    with second.watch() as events:
        pending = next((event for event in events if event.kind == "Pending"), None)
    reason = "tenant team: cpus 2 of 2 in use, job asks 1"
    assert pending is not None and pending.message == reason, pending
    status = second.status()
    assert (status.phase, status.reason, status.message) == ("Pending", "Quota", reason)
    usage = client.tenant(TENANT)
    assert (usage.running_jobs, usage.pending_jobs, usage.used_cpus) == (1, 1, 2)

    go.touch()
    assert second.wait(timeout=WAIT_S).phase == "Succeeded"
    ended, admitted = first.status(), second.status()
    assert ended.phase == "Succeeded"
    assert ended.finished is not None and admitted.started is not None
    assert admitted.started >= ended.finished


def test_tenants_take_turns_when_the_machine_is_full(home: Path, client: moon.Client) -> None:
    (home / "config.yaml").write_text("capacity: {cpus: 1, memory: 16Gi}\n")
    for tenant in ("alpha", "beta"):
        client.create_tenant(tenant)
    jobs = [
        client.submit(shell_job(name, "sleep 0.3", tenant=tenant))
        for tenant, name in (("alpha", "a1"), ("alpha", "a2"), ("beta", "b1"), ("beta", "b2"))
    ]
    statuses = [job.wait(timeout=WAIT_S) for job in jobs]
    assert all(status.phase == "Succeeded" for status in statuses), statuses
    started = sorted((status.started, status.name) for status in statuses)
    assert [name for _, name in started] == ["a1", "b1", "a2", "b2"]
    # One at a time: the machine holds one CPU and each job asks for it.
    for (_, before), (_, after) in zip(started, started[1:]):
        earlier = next(s for s in statuses if s.name == before)
        later = next(s for s in statuses if s.name == after)
        assert earlier.finished is not None and later.started is not None
        assert later.started >= earlier.finished, (earlier, later)
    b2 = [event.message for event in jobs[3].events()]
    assert any(message.startswith("machine: ") for message in b2), b2


# --------------------------------------------------------------------------- restarts and deadlines


def test_on_failure_restarts_with_doubling_backoff(team: moon.Client, tmp_path: Path) -> None:
    tries = tmp_path / "tries"
    # Fails until its third attempt.
    script = f'echo $$ >> "{tries}"; test $(wc -l < "{tries}") -ge 3 || exit 7'
    job = team.submit(shell_job("flaky", script, restart_policy="on-failure", backoff_limit=3))
    status = job.wait(timeout=WAIT_S)
    assert status.phase == "Succeeded", status
    assert status.restarts == 2
    assert (status.replicas[0].attempts, status.replicas[0].exit_code) == (3, 0)
    assert len(marker_lines(tries)) == 3

    events = job.events()
    restarts = [event for event in events if event.kind == "Restarting"]
    assert len(restarts) == 2, events
    assert "in 1.0s" in restarts[0].message, restarts[0]
    assert "in 2.0s" in restarts[1].message, restarts[1]
    # The backoff is really waited out before the next attempt starts.
    for restart, backoff in zip(restarts, (1.0, 2.0)):
        start = next(e for e in events if e.kind == "ReplicaStarted" and e.seq > restart.seq)
        assert start.time - restart.time >= timedelta(seconds=backoff - 0.05), (restart, start)


def test_the_backoff_limit_ends_retries(team: moon.Client) -> None:
    job = team.submit(shell_job("hopeless", "exit 5", restart_policy="on-failure", backoff_limit=1))
    with pytest.raises(moon.JobFailed) as caught:
        job.wait(timeout=WAIT_S)
    assert caught.value.phase == "failed"
    status = job.status()
    assert (status.phase, status.reason, status.restarts) == ("Failed", "BackoffLimitExceeded", 1)
    assert (status.replicas[0].attempts, status.replicas[0].exit_code) == (2, 5)


def test_the_active_deadline_stops_a_job(team: moon.Client) -> None:
    job = team.submit(shell_job("slow", "sleep 30", active_deadline_seconds=1))
    started = time.monotonic()
    with pytest.raises(moon.JobFailed) as caught:
        job.wait(timeout=WAIT_S)
    # `sleep` dies of the SIGTERM to its group, well before its 30 seconds.
    assert time.monotonic() - started < 10
    assert not isinstance(caught.value, moon.JobCancelled)
    status = job.status()
    assert (status.phase, status.reason) == ("Failed", "DeadlineExceeded")
    assert status.replicas[0].phase == "Stopped"
    assert status.started is not None and status.finished is not None
    assert status.finished - status.started >= timedelta(seconds=1)


# --------------------------------------------------------------------------- distributed jobs


def test_two_distributed_jobs_run_at_once_on_different_ports(team: moon.Client) -> None:
    script = "echo $MASTER_ADDR:$MASTER_PORT; sleep 1"
    jobs = [
        team.submit(
            moon.Job(
                name=name,
                tenant=TENANT,
                framework="pytorch",
                roles=[
                    moon.Role(role, command=["sh", "-c", script], cpus="100m")
                    for role in ("master", "worker")
                ],
            )
        )
        for name in ("one", "two")
    ]
    statuses = [job.wait(timeout=WAIT_S) for job in jobs]
    assert [status.phase for status in statuses] == ["Succeeded", "Succeeded"], statuses
    addresses = []
    for job in jobs:
        said = {line.replica: line.line for line in job.log_lines()}
        assert sorted(said) == ["master-0", "worker-0"], said
        # Master and worker of one job meet at one address.
        assert len(set(said.values())) == 1, said
        host, port = said["master-0"].rsplit(":", 1)
        assert host and port.isdigit(), said
        addresses.append(said["master-0"])
    assert addresses[0] != addresses[1], "two running jobs got the same rendezvous address"
    one, two = statuses
    assert one.started and one.finished and two.started and two.finished
    assert one.started < two.finished and two.started < one.finished, "the jobs did not overlap"


# --------------------------------------------------------------------------- cancel


# The replica's shell starts a child that ignores SIGTERM, which starts a `sleep` that
# inherits the ignored SIGTERM; each records its pid in $PIDS. "started" comes once
# all three are recorded.
STUBBORN = """
sh -c 'trap "" TERM; echo $$ >> "$PIDS"; sleep 1000 & echo $! >> "$PIDS"; wait' &
echo $$ >> "$PIDS"
i=0
while [ "$(wc -l < "$PIDS")" -lt 3 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
echo started
wait
"""


def test_cancel_leaves_no_process_even_one_that_ignores_sigterm(
    team: moon.Client, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    job = shell_job("stubborn", STUBBORN)
    job.roles[0].env = {"PIDS": str(pids_file)}
    handle = team.submit(job)
    with handle.logs(follow=True) as lines:
        assert next(lines) == "[main-0] started"
    pids = [int(word) for word in pids_file.read_text().split()]
    assert len(pids) == 3 and all(_pid_alive(pid) for pid in pids), pids

    assert handle.cancel().phase in ("Running", "Cancelled")
    with pytest.raises(moon.JobCancelled):
        handle.wait(timeout=WAIT_S)
    status = handle.status()
    assert (status.phase, status.replicas[0].phase) == ("Cancelled", "Stopped")
    # The supervisor kills and reaps everything before the end is recorded.
    assert [pid for pid in pids if _pid_alive(pid)] == []


# --------------------------------------------------------------------------- crash safety


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as the Python API or the CLI reports it."""

    phase: str
    # (role, phase, exit code, attempts) of each replica, in spec order.
    replicas: list[tuple[str, str, int | None, int]]


class Via(Protocol):
    """Submits, watches and waits for jobs through the Python API or through the CLI."""

    name: str

    def submit(self, job: moon.Job) -> None: ...

    def wait_until_started(self, name: str, replicas: int) -> None:
        """Returns once ``replicas`` ReplicaStarted events of job ``name`` have been seen."""
        ...

    def wait(self, name: str) -> Outcome: ...


class ViaApi:
    name = "api"

    def __init__(self, client: moon.Client) -> None:
        self.client = client

    def submit(self, job: moon.Job) -> None:
        self.client.submit(job)

    def wait_until_started(self, name: str, replicas: int) -> None:
        started = 0
        with self.client.job(TENANT, name).watch() as events:
            for event in events:
                started += event.kind == "ReplicaStarted"
                if started == replicas:
                    return
        pytest.fail(f"job {name} ended before {replicas} replicas started")

    def wait(self, name: str) -> Outcome:
        status = wait_ended(self.client.job(TENANT, name))
        return Outcome(
            status.phase, [(r.role, r.phase, r.exit_code, r.attempts) for r in status.replicas]
        )


class ViaCli:
    name = "cli"

    def __init__(self, run_cli: RunCli, binary: Path, home: Path, workdir: Path) -> None:
        self.run_cli = run_cli
        self.binary = binary
        self.home = home
        self.workdir = workdir

    def moon(self, *args: Any) -> subprocess.CompletedProcess[str]:
        return self.run_cli(*args, home=self.home, timeout=WAIT_S + 10, cwd=self.workdir)

    def submit(self, job: moon.Job) -> None:
        spec = self.workdir / f"{job.name}.yaml"
        spec.write_text(yaml.safe_dump(job.to_dict(), sort_keys=False))
        result = self.moon("job", "submit", "-f", spec)
        assert result.returncode == 0, result

    def wait_until_started(self, name: str, replicas: int) -> None:
        args = ["job", "events", f"{TENANT}/{name}", "-w", "-o", "json"]
        env = dict(os.environ, MOON_HOME=str(self.home))
        with subprocess.Popen(
            [self.binary, *args], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
        ) as proc:
            try:
                started = 0
                for line in read_lines(proc, WAIT_S):
                    started += json.loads(line)["kind"] == "ReplicaStarted"
                    if started == replicas:
                        return
                pytest.fail(f"job {name} ended before {replicas} replicas started")
            finally:
                proc.kill()
                proc.wait(timeout=WAIT_S)

    def wait(self, name: str) -> Outcome:
        waited = self.moon("job", "wait", f"{TENANT}/{name}", "--timeout", int(WAIT_S))
        # 0 succeeded, 1 failed or cancelled; anything else did not see the end.
        assert waited.returncode in (0, 1), waited
        got = self.moon("job", "get", f"{TENANT}/{name}", "-o", "json")
        assert got.returncode == 0, got
        status = json.loads(got.stdout)
        replicas = status["replicas"]
        return Outcome(
            status["phase"],
            [(r["role"], r["phase"], r.get("exitCode"), r["attempts"]) for r in replicas],
        )


def read_lines(proc: subprocess.Popen[bytes], timeout: float) -> Iterator[str]:
    """``proc``'s stdout, line by line, until it closes; fails the test after ``timeout``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode()
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no whole line within {timeout}s; stdout so far: {buffer!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buffer += chunk


@pytest.fixture(params=["api", "cli"])
def via(
    request: pytest.FixtureRequest,
    team: moon.Client,
    run_cli: RunCli,
    moon_bin: Path,
    home: Path,
    tmp_path: Path,
) -> Via:
    if request.param == "api":
        return ViaApi(team)
    workdir = tmp_path / "work"
    workdir.mkdir()
    return ViaCli(run_cli, moon_bin, home, workdir)


@pytest.fixture
def crash_points(crash_agent: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients made after it (request it before ``via``) start the agent with crash points
    built in, through the API and the CLI alike."""
    monkeypatch.setenv("MOON_AGENT_PROGRAM", str(crash_agent))


def crash_at(via: Via, home: Path, point: str, job: moon.Job) -> Outcome:
    """Submits `job` with the agent's crash point armed, then waits for it
    through a new agent; checks that the crash happened and a new agent took over."""
    fault = arm_fault(home, point)
    via.submit(job)
    crashed = agent_pid(home)
    outcome = via.wait(job.name)
    assert not fault.exists(), "the crash point never fired"
    assert crashed is not None and not _pid_alive(crashed)
    assert agent_pid(home) not in (None, crashed), "no new agent took over"
    return outcome


def test_killed_after_recording_an_attempt_before_starting_it(
    crash_points: None, via: Via, home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    # The wait starts a new agent, which finds the attempt unclaimed, abandons it
    # and starts the replica again, once.
    job = marked_job("once", marker, [("main", "exit 0")])
    outcome = crash_at(via, home, "before-spawn", job)
    assert outcome == Outcome("Succeeded", [("main", "Succeeded", 0, 1)])
    lines = marker_lines(marker)
    assert len(lines) == 1 and lines[0].startswith("main-0 "), lines


def test_killed_while_replicas_run(via: Via, home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    roles = [("fine", "sleep 1; exit 0"), ("broken", "sleep 2; exit 3")]
    via.submit(marked_job("busy", marker, roles))
    via.wait_until_started("busy", 2)
    agent = agent_pid(home)
    assert agent is not None
    os.kill(agent, signal.SIGKILL)
    # The supervisors outlive the agent; a new agent adopts them and records
    # the exits they saw.
    outcome = via.wait("busy")
    assert not _pid_alive(agent)
    assert agent_pid(home) not in (None, agent), "no new agent took over"
    assert outcome == Outcome("Failed", [("fine", "Succeeded", 0, 1), ("broken", "Failed", 3, 1)])
    assert sorted(line.split()[0] for line in marker_lines(marker)) == ["broken-0", "fine-0"]


def test_killed_while_a_replica_exits(
    crash_points: None, via: Via, home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    # The new agent finds the claim and the supervisor's exit.json and records
    # that exit as if it had seen it.
    job = marked_job("ending", marker, [("main", "exit 3")])
    outcome = crash_at(via, home, "exit-observed", job)
    assert outcome == Outcome("Failed", [("main", "Failed", 3, 1)])
    assert len(marker_lines(marker)) == 1, marker_lines(marker)


def test_the_moon_that_ships_has_no_crash_points(via: Via, home: Path) -> None:
    # The agent of the wheel's bundled moon and of the CLI passes armed crash points by.
    faults = [arm_fault(home, point) for point in ("before-spawn", "exit-observed")]
    via.submit(shell_job("armed", "exit 0"))
    agent = agent_pid(home)
    assert via.wait("armed") == Outcome("Succeeded", [("main", "Succeeded", 0, 1)])
    assert agent is not None and agent_pid(home) == agent, "the agent was replaced"
    assert all(fault.exists() for fault in faults)


# Submits a 2-second job and SIGKILLs itself the moment submit() returns.
SUBMIT_THEN_DIE = """
import os, signal, sys
import moon
client = moon.Client(home=sys.argv[1])
client.submit(
    moon.Job(name="orphan", tenant="team", roles=[moon.Role("main", command=sys.argv[2:])])
)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_job_outlives_its_killed_submitter(team: moon.Client, home: Path, tmp_path: Path) -> None:
    done = tmp_path / "done"
    command = ["sh", "-c", f'sleep 2; touch "{done}"; echo done']
    submitter = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SUBMIT_THEN_DIE), str(home), *command],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert submitter.returncode == -signal.SIGKILL, submitter.stderr
    fresh = moon.Client(home=home)
    job = fresh.job(TENANT, "orphan")
    assert not job.status().done, "the job ended before its submitter died"
    status = job.wait(timeout=WAIT_S)
    assert status.phase == "Succeeded", status
    assert status.replicas[0].attempts == 1
    assert list(job.logs()) == ["[main-0] done"]
    assert done.exists()


# --------------------------------------------------------------------------- time to live


def test_a_job_is_deleted_once_its_time_to_live_has_passed(team: moon.Client, home: Path) -> None:
    job = team.submit(shell_job("brief", "echo hi", ttl_seconds_after_finished=2))
    final = job.wait(timeout=WAIT_S)
    assert final.finished is not None
    (job_dir,) = (home / "jobs").iterdir()
    # The agent deletes it by itself. Watched on disk, not through the client,
    # whose reads would delete an expired job themselves.
    deadline = time.monotonic() + WAIT_S
    while job_dir.exists():
        assert time.monotonic() < deadline, "the expired job was not deleted"
        time.sleep(0.05)
    assert datetime.now(timezone.utc) - final.finished >= timedelta(seconds=2)
    with pytest.raises(moon.NotFound):
        job.status()
    assert team.jobs() == []
