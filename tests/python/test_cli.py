"""End-to-end tests of the ``moon`` CLI: the release binary against a fresh MOON_HOME per test.

Each test checks something a pipeline author relies on: exit codes, the JSON that
``-o json`` prints, and what the local backend does to the jobs' processes. Jobs run
``sh`` or ``sys.executable`` only. A job that must stay running waits for a file the test
creates, so that no test depends on how long anything takes; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PID_SERVER, RunCli, _pid_alive

# Exit codes, as documented by `moon --help` (moon-cli/src/exit.rs).
OK = 0
JOB_FAILED = 1
INVALID_INPUT = 2
NOT_FOUND = 3
TIMED_OUT = 4
REFUSED = 5
NOT_SUPPORTED = 8

TENANT = "team"
# Upper bound for one CLI call or one wait; generous so that a loaded machine does
# not fail a test, while a hang still ends well inside pytest's own timeout.
CLI_TIMEOUT = 30.0
# The same bound as a `--timeout` argument.
WAIT_LIMIT = "30"
# The machine size every test's backend sees, whatever runs the tests.
CAPACITY = "capacity: {cpus: 4, memory: 8Gi}\n"

# A replica that prints a line, then waits for the file named by $GO.
WAIT_FOR_GO = 'echo started; while [ ! -e "$GO" ]; do sleep 0.02; done; echo done'


# --------------------------------------------------------------------------- helpers


def job_spec(
    name: str,
    command: list[str],
    *,
    tenant: str = TENANT,
    role: str = "main",
    **fields: Any,
) -> dict[str, Any]:
    """A custom job of one role; ``fields`` are the role's other keys (cpus, env...)."""
    return {
        "name": name,
        "tenant": tenant,
        "framework": "custom",
        "roles": [{"name": role, "command": command, **fields}],
    }


def wait_for(predicate: Any, what: str, timeout: float = CLI_TIMEOUT) -> Any:
    """Polls ``predicate`` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def read_pids(path: Path) -> list[int]:
    try:
        return [int(word) for word in path.read_text().split()]
    except FileNotFoundError:
        return []


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{result.args}\nexit {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


class Moon:
    """The ``moon`` binary bound to one MOON_HOME, run from the test's directory."""

    def __init__(self, run_cli: RunCli, binary: Path, home: Path, workdir: Path) -> None:
        self._run_cli = run_cli
        self.binary = binary
        self.home = home
        self.workdir = workdir
        self._specs = 0

    def __call__(
        self, *args: Any, input: str | None = None, timeout: float = CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return self._run_cli(*args, home=self.home, input=input, timeout=timeout, cwd=self.workdir)

    def expect(self, code: int, *args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Runs the command and asserts its exit code."""
        result = self(*args, **kwargs)
        assert result.returncode == code, _describe(result)
        return result

    def json(self, *args: Any) -> Any:
        """Runs the command with ``-o json``, asserts it succeeded and parses its output."""
        return json.loads(self.expect(OK, *args, "-o", "json").stdout)

    def job(self, key: str) -> dict[str, Any]:
        status: dict[str, Any] = self.json("job", "get", key)
        return status

    def write_spec(self, spec: dict[str, Any], suffix: str = ".yaml") -> Path:
        self._specs += 1
        path = self.workdir / f"spec-{self._specs}-{spec.get('name', 'unnamed')}{suffix}"
        text = json.dumps(spec) if suffix == ".json" else yaml.safe_dump(spec, sort_keys=False)
        path.write_text(text)
        return path

    def submit(
        self, spec: dict[str, Any], *flags: str, code: int = OK
    ) -> subprocess.CompletedProcess[str]:
        return self.expect(code, "job", "submit", "-f", self.write_spec(spec), *flags)

    def wait_for_phase(self, key: str, phase: str) -> dict[str, Any]:
        status: dict[str, Any] = wait_for(
            lambda: (current := self.job(key))["phase"] == phase and current,
            f"{key} to be {phase}",
        )
        return status

    def popen(self, *args: Any) -> subprocess.Popen[bytes]:
        """Starts the command with unbuffered binary pipes, for reading output as it comes."""
        env = dict(os.environ, MOON_HOME=str(self.home))
        return subprocess.Popen(
            [
                os.fspath(self.binary),
                *(os.fspath(a) if isinstance(a, Path) else str(a) for a in args),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=env,
            cwd=self.workdir,
        )

    def cancel_unfinished(self) -> None:
        """Cancels every job still pending or running and deletes every service, so that no
        replica outlives the test."""
        services = self("svc", "ls", "-o", "json")
        if services.returncode == OK:
            for service in json.loads(services.stdout):
                self("svc", "delete", f"{service['tenant']}/{service['name']}")
        result = self("job", "ls", "-o", "json")
        if result.returncode != OK:
            return
        for job in json.loads(result.stdout):
            if job["phase"] in ("Pending", "Running"):
                key = f"{job['tenant']}/{job['name']}"
                self("job", "cancel", key)
                self("job", "wait", key, "--timeout", "15")


@pytest.fixture
def moon(run_cli: RunCli, moon_bin: Path, moon_home: Path, tmp_path: Path) -> Iterator[Moon]:
    (moon_home / "config.yaml").write_text(CAPACITY)
    workdir = tmp_path / "work"
    workdir.mkdir()
    cli = Moon(run_cli, moon_bin, moon_home, workdir)
    try:
        yield cli
    finally:
        cli.cancel_unfinished()


@pytest.fixture
def team(moon: Moon) -> Moon:
    """``moon`` with tenant ``team`` (no quota) created."""
    moon.expect(OK, "tenant", "create", TENANT)
    return moon


@contextlib.contextmanager
def running(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Yields ``proc``; kills it if the test leaves it running, and always reaps it."""
    with proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=CLI_TIMEOUT)


def read_until_line(
    proc: subprocess.Popen[bytes], wanted: str, timeout: float = CLI_TIMEOUT
) -> str:
    """What ``proc`` has written to stdout once a whole line equal to ``wanted`` has arrived."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout
    while wanted not in buffer.decode().splitlines():
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line {wanted!r} within {timeout}s; stdout so far: {buffer!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"stdout closed before a line {wanted!r}; stdout: {buffer!r}"
            buffer += chunk
    return buffer.decode()


# --------------------------------------------------------------------------- invalid specs


def _assert_reports(result: subprocess.CompletedProcess[str], kind: str, errors: list[str]) -> None:
    """Exit 2, and stderr lists exactly the expected errors, one per line, in order."""
    assert result.returncode == INVALID_INPUT, _describe(result)
    lines = result.stderr.splitlines()
    assert lines[:1] == [f"error: invalid {kind}:"], _describe(result)
    assert lines[1:] == [f"  {error}" for error in errors], _describe(result)


def test_invalid_spec_is_refused_with_every_error(
    invalid_spec: dict[str, Any], run_cli: RunCli, moon_home: Path, tmp_path: Path
) -> None:
    kind, spec, errors = invalid_spec["kind"], invalid_spec["spec"], invalid_spec["errors"]

    validated = run_cli(
        "validate", "-f", "-", home=moon_home, input=yaml.safe_dump(spec, sort_keys=False)
    )
    _assert_reports(validated, kind, errors)
    assert validated.stdout == ""

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    if kind == "job":
        applied = run_cli("job", "submit", "-f", spec_file, home=moon_home)
    elif kind == "service":
        applied = run_cli("svc", "create", "-f", spec_file, home=moon_home)
    else:
        applied = run_cli("tenant", "apply", "-f", spec_file, home=moon_home)
    _assert_reports(applied, kind, errors)
    # A refused spec is checked before the backend is opened: nothing was created.
    assert list(moon_home.iterdir()) == []


# --------------------------------------------------------------------------- tenants


def test_tenants_are_created_applied_listed_and_shown(moon: Moon) -> None:
    created = moon.json("tenant", "create", TENANT, "--cpus", "2", "--memory", "4Gi", "--jobs", "3")
    assert created == {"kind": "tenant", "name": TENANT, "outcome": "created"}
    again = moon.json("tenant", "create", TENANT, "--cpus", "2", "--memory", "4Gi", "--jobs", "3")
    assert again["outcome"] == "unchanged"
    # The same tenant written as a file is the same spec.
    same_as_flags = {"name": TENANT, "quota": {"cpus": 2, "memory": "4Gi", "jobs": 3}}
    applied = moon.json("tenant", "apply", "-f", moon.write_spec(same_as_flags))
    assert applied["outcome"] == "unchanged"

    vision: dict[str, Any] = {
        "name": "vision",
        "quota": {"cpus": "1500m", "gpus": 2},
        "users": ["ann", "bo"],
        "labels": {"cost-center": "42"},
    }
    path = moon.write_spec(vision)
    assert moon.json("tenant", "apply", "-f", path) == {
        "kind": "tenant",
        "name": "vision",
        "outcome": "created",
    }
    assert moon.json("tenant", "apply", "-f", path)["outcome"] == "unchanged"
    # Table output says the same in words.
    assert moon.expect(OK, "tenant", "apply", "-f", path).stdout == "tenant vision unchanged\n"
    vision["quota"]["gpus"] = 4
    assert moon.json("tenant", "apply", "-f", moon.write_spec(vision))["outcome"] == "updated"

    listed = moon.json("tenant", "ls")
    assert [t["spec"]["name"] for t in listed] == ["team", "vision"]
    idle = {"runningJobs": 0, "pendingJobs": 0, "usedMillicores": 0, "usedBytes": 0, "usedGpus": 0}
    for tenant in listed:
        assert {key: tenant[key] for key in idle} == idle
    assert listed[0]["spec"]["quota"] == {"cpus": 2, "memory": "4Gi", "jobs": 3}

    shown = moon.json("tenant", "get", "vision")
    # The spec as applied, which now names its kind.
    assert shown["spec"] == {"kind": "Tenant", **vision}
    assert shown["runningJobs"] == 0


# --------------------------------------------------------------------------- submit and wait


def test_submit_wait_exits_0_when_every_replica_succeeds(team: Moon) -> None:
    result = team.submit(job_spec("ok", ["sh", "-c", "exit 0"], replicas=2), "--wait")
    lines = result.stdout.splitlines()
    assert lines[0] == "job team/ok submitted"
    assert lines[1].startswith("job team/ok succeeded in ")

    status = team.job("team/ok")
    assert status["phase"] == "Succeeded"
    replicas = [(r["role"], r["index"], r["phase"], r["exitCode"]) for r in status["replicas"]]
    assert replicas == [("main", 0, "Succeeded", 0), ("main", 1, "Succeeded", 0)]


def test_submit_wait_exits_1_with_the_exit_code_when_a_replica_fails(team: Moon) -> None:
    result = team.submit(job_spec("fail", ["sh", "-c", "exit 3"]), "--wait", code=JOB_FAILED)
    assert result.stderr == "error: job team/fail failed: replica main-0 exited with code 3\n"

    status = team.job("team/fail")
    assert status["phase"] == "Failed"
    assert status["reason"] == "ReplicaFailed"
    assert "exited with code 3" in status["message"]
    [replica] = status["replicas"]
    assert (replica["phase"], replica["exitCode"], replica["signal"]) == ("Failed", 3, None)
    # `job wait` on an ended job reports the same outcome.
    assert team.expect(JOB_FAILED, "job", "wait", "team/fail").stderr == result.stderr


def test_follow_streams_lines_while_the_job_runs(team: Moon) -> None:
    go = team.workdir / "go"
    spec = job_spec("follow", ["sh", "-c", WAIT_FOR_GO], env={"GO": str(go)})
    with running(team.popen("job", "submit", "-f", team.write_spec(spec), "--follow")) as proc:
        first = read_until_line(proc, "[main-0] started")
        # The line came through while the replica was still waiting for us.
        assert team.job("team/follow")["phase"] == "Running"
        assert proc.poll() is None
        go.touch()
        rest, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        assert proc.returncode == OK, stderr
    lines = (first + rest.decode()).splitlines()
    assert lines[:3] == ["job team/follow submitted", "[main-0] started", "[main-0] done"]
    assert lines[3].startswith("job team/follow succeeded in ")
    assert len(lines) == 4


def test_a_job_over_quota_waits_with_the_numbers_then_runs(moon: Moon) -> None:
    moon.expect(OK, "tenant", "create", TENANT, "--cpus", "2")
    go = moon.workdir / "go"
    moon.submit(job_spec("big", ["sh", "-c", WAIT_FOR_GO], cpus=2, env={"GO": str(go)}))
    moon.wait_for_phase("team/big", "Running")

    moon.submit(job_spec("small", ["sh", "-c", "echo small"], cpus=1))
    # A submission starts out "Queued"; the agent's admission pass gives the real reason.
    small = wait_for(
        lambda: (s := moon.job("team/small"))["reason"] not in (None, "Queued") and s,
        "a pending reason from admission",
    )
    assert small["phase"] == "Pending"
    assert small["reason"] == "Quota"
    assert small["message"] == "tenant team: cpus 2 of 2 in use, job asks 1"
    tenant = moon.json("tenant", "get", TENANT)
    assert (tenant["runningJobs"], tenant["pendingJobs"], tenant["usedMillicores"]) == (1, 1, 2000)

    go.touch()
    moon.expect(OK, "job", "wait", "team/small", "--timeout", WAIT_LIMIT)
    big, small = moon.job("team/big"), moon.job("team/small")
    assert big["phase"] == small["phase"] == "Succeeded"
    assert small["startedMs"] >= big["finishedMs"]


# A replica whose children ignore SIGTERM, one of them in a session of its own; every
# process appends its pid to $PIDS.
STUBBORN = """
echo $$ >> "$PIDS"
sh -c 'trap "" TERM; echo $$ >> "$PIDS"; sleep 1000 & echo $! >> "$PIDS"; wait' &
"$PYTHON" -c '
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.setsid()
with open(os.environ["PIDS"], "a") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(1000)
' &
wait
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie counts as dead (its exit cannot be undone)."""
    return Path(f"/proc/{pid}").exists() and _pid_alive(pid)


def test_cancel_stops_every_process_of_the_job(team: Moon) -> None:
    pids_file = team.workdir / "pids"
    spec = job_spec(
        "stubborn",
        ["sh", "-c", STUBBORN],
        env={"PIDS": str(pids_file), "PYTHON": sys.executable},
    )
    team.submit(spec)
    pids = wait_for(lambda: len(p := read_pids(pids_file)) == 4 and p, "4 pids recorded")
    assert all(_alive(pid) for pid in pids)

    cancelled = team.expect(OK, "job", "cancel", "team/stubborn")
    # "cancelled" at once only if it had not started; this one was running.
    assert cancelled.stdout == "job team/stubborn cancel requested\n"
    waited = team.expect(JOB_FAILED, "job", "wait", "team/stubborn", "--timeout", WAIT_LIMIT)
    assert waited.stderr == "error: job team/stubborn cancelled: cancelled by a user\n"

    status = team.job("team/stubborn")
    assert (status["phase"], status["reason"]) == ("Cancelled", "Cancelled")
    assert status["replicas"][0]["phase"] == "Stopped"
    # The supervisor kills and reaps everything before the end is recorded.
    assert [pid for pid in pids if _alive(pid)] == []


def test_cancel_gives_the_replica_sigterm_first(team: Moon) -> None:
    # A training script saves its checkpoint on SIGTERM, so it must start with the
    # signal deliverable and get it before the SIGKILL.
    ready, graceful = team.workdir / "ready", team.workdir / "graceful"
    code = (
        "import pathlib, signal, sys, time\n"
        f"on_term = lambda *_: (pathlib.Path({str(graceful)!r}).touch(), sys.exit(0))\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "blocked = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))\n"
        f"pathlib.Path({str(ready)!r}).write_text(repr(blocked))\n"
        "time.sleep(1000)\n"
    )
    team.submit(job_spec("graceful", [sys.executable, "-c", code]))
    blocked = wait_for(lambda: ready.exists() and ready.read_text(), "the replica to start")
    assert blocked == "[]", f"the replica started with signals {blocked} blocked"

    team.expect(OK, "job", "cancel", "team/graceful")
    team.expect(JOB_FAILED, "job", "wait", "team/graceful", "--timeout", WAIT_LIMIT)
    assert graceful.exists(), "the replica's SIGTERM handler did not run"
    replica = team.job("team/graceful")["replicas"][0]
    # It left by itself, within the grace period.
    assert (replica["exitCode"], replica["signal"]) == (0, None)


# --------------------------------------------------------------------------- exit codes


def test_unknown_things_exit_3(team: Moon) -> None:
    for args in (
        ("job", "get", "team/nope"),
        ("job", "wait", "team/nope"),
        ("job", "logs", "team/nope"),
        ("job", "cancel", "team/nope"),
    ):
        assert team.expect(NOT_FOUND, *args).stderr == 'error: job "team/nope" not found\n'
    no_tenant = 'error: tenant "ghost" not found\n'
    assert team.expect(NOT_FOUND, "tenant", "get", "ghost").stderr == no_tenant
    assert (
        team.submit(job_spec("lost", ["true"], tenant="ghost"), code=NOT_FOUND).stderr == no_tenant
    )


def test_waiting_past_the_timeout_exits_4_and_leaves_the_job_running(team: Moon) -> None:
    go = team.workdir / "go"
    spec = job_spec("sleepy", ["sh", "-c", WAIT_FOR_GO], env={"GO": str(go)})
    started = time.monotonic()
    submitted = team.submit(spec, "--wait", "--timeout", "1", code=TIMED_OUT)
    assert submitted.stderr == "error: timed out after 1.0s waiting for job team/sleepy\n"
    waited = team.expect(TIMED_OUT, "job", "wait", "team/sleepy", "--timeout", "1")
    assert waited.stderr == submitted.stderr
    assert time.monotonic() - started < 10
    assert team.job("team/sleepy")["phase"] == "Running"


def test_a_job_that_can_never_fit_is_refused_with_5(moon: Moon) -> None:
    moon.expect(OK, "tenant", "create", TENANT, "--cpus", "2")
    over_quota = moon.submit(job_spec("huge", ["true"], cpus=3), code=REFUSED)
    assert over_quota.stderr == "error: refused: tenant team: job asks cpus 3, quota is cpus 2\n"

    moon.expect(OK, "tenant", "create", "roomy")
    over_machine = moon.submit(job_spec("huge", ["true"], tenant="roomy", cpus=8), code=REFUSED)
    assert over_machine.stderr == "error: refused: machine: job asks cpus 8, capacity is cpus 4\n"
    # Refused jobs are not recorded.
    assert moon.json("job", "ls") == []


def test_a_taken_job_name_is_refused_with_5(team: Moon) -> None:
    go = team.workdir / "go"
    spec = job_spec("dup", ["sh", "-c", WAIT_FOR_GO], env={"GO": str(go)})
    team.submit(spec)
    result = team.submit(spec, code=REFUSED)
    assert result.stderr == 'error: job "team/dup" already exists\n'
    assert len(team.json("job", "ls")) == 1


# --------------------------------------------------------------------------- the job's life


def test_jobs_outlive_the_submitting_process(team: Moon) -> None:
    go, done = team.workdir / "go", team.workdir / "done"
    command = WAIT_FOR_GO + f"; touch {done}"
    spec = job_spec("bg", ["sh", "-c", command], env={"GO": str(go)})
    submitted = team.json("job", "submit", "-f", team.write_spec(spec))
    # `submit` has returned and its process is gone; the job goes on without it.
    assert (submitted["tenant"], submitted["name"]) == (TENANT, "bg")
    assert submitted["phase"] in ("Pending", "Running")
    team.wait_for_phase("team/bg", "Running")
    assert not done.exists()

    go.touch()
    waited = team.expect(OK, "job", "wait", "team/bg", "--timeout", WAIT_LIMIT)
    assert waited.stdout.startswith("job team/bg succeeded in ")
    assert team.job("team/bg")["phase"] == "Succeeded"
    assert done.exists()


def test_logs_and_events(team: Moon) -> None:
    # stderr first and apart, so that the last line of the log is "three".
    command = "echo oops >&2; sleep 0.2; echo one; echo two; echo three"
    team.submit(job_spec("chatty", ["sh", "-c", command]), "--wait")

    everything = team.expect(OK, "job", "logs", "team/chatty")
    assert everything.stdout == "[main-0] one\n[main-0] two\n[main-0] three\n"
    assert everything.stderr == "[main-0] oops\n"
    tail = team.expect(OK, "job", "logs", "team/chatty", "--tail", "1")
    assert (tail.stdout, tail.stderr) == ("[main-0] three\n", "")

    output = team.expect(OK, "job", "events", "team/chatty", "-o", "json").stdout
    events = [json.loads(line) for line in output.splitlines()]
    kinds = [event["kind"] for event in events]
    expected = ["Submitted", "Admitted", "ReplicaStarted", "ReplicaExited", "Succeeded"]
    assert [kind for kind in kinds if kind in expected] == expected, kinds
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(set(seqs))
    assert all((event["tenant"], event["job"]) == (TENANT, "chatty") for event in events)
    by_kind = {event["kind"]: event for event in events}
    assert by_kind["ReplicaStarted"]["replica"] == by_kind["ReplicaExited"]["replica"] == "main-0"
    assert by_kind["Submitted"]["phase"] == "Pending"
    assert events[-1]["phase"] == "Succeeded"


def test_pytorch_replicas_get_ranks_and_the_master_address(team: Moon) -> None:
    echo = ["sh", "-c", "echo $RANK $WORLD_SIZE $MASTER_ADDR:$MASTER_PORT"]
    spec = {
        "name": "ddp",
        "tenant": TENANT,
        "framework": "pytorch",
        "roles": [
            {"name": "master", "command": echo},
            {"name": "worker", "replicas": 1, "command": echo},
        ],
    }
    team.submit(spec, "--wait")

    lines = team.expect(OK, "job", "logs", "team/ddp").stdout.splitlines()
    said = dict(line.split(" ", 1) for line in lines)
    assert sorted(said) == ["[master-0]", "[worker-0]"], lines
    master_rank, master_world, master_addr = said["[master-0]"].split()
    worker_rank, worker_world, worker_addr = said["[worker-0]"].split()
    assert (master_rank, worker_rank) == ("0", "1")
    assert master_world == worker_world == "2"
    assert master_addr == worker_addr
    host, port = master_addr.rsplit(":", 1)
    assert host and port.isdigit() and 0 < int(port) < 65536, master_addr

    only_worker = team.expect(OK, "job", "logs", "team/ddp", "--replica", "worker-0").stdout
    assert only_worker == f"1 2 {master_addr}\n"


# --------------------------------------------------------------------------- delete


def test_delete_refuses_a_running_job_with_5_and_frees_its_name(team: Moon) -> None:
    go = team.workdir / "go"
    spec = job_spec("reused", ["sh", "-c", WAIT_FOR_GO], env={"GO": str(go)})
    team.submit(spec)
    team.wait_for_phase("team/reused", "Running")
    refused = team.expect(REFUSED, "job", "delete", "reused", "--tenant", TENANT)
    assert refused.stderr.startswith("error: conflict: job team/reused is Running; "), (
        refused.stderr
    )
    assert "--force" in refused.stderr
    assert team.job("team/reused")["phase"] == "Running"

    deleted = team.expect(OK, "job", "delete", "reused", "--tenant", TENANT, "--force")
    assert deleted.stdout == "job team/reused deleted\n"
    assert team.expect(NOT_FOUND, "job", "get", "team/reused").stderr == (
        'error: job "team/reused" not found\n'
    )
    assert team.expect(NOT_FOUND, "job", "delete", "team/reused").stderr == (
        'error: job "team/reused" not found\n'
    )

    # The name runs again, as a new job with only its own output.
    team.submit(job_spec("reused", ["echo", "second"]), "--wait")
    assert team.expect(OK, "job", "logs", "team/reused").stdout == "[main-0] second\n"
    assert team.json("job", "delete", "team/reused") == {
        "kind": "job",
        "name": "team/reused",
        "outcome": "deleted",
    }
    assert team.json("job", "ls") == []


def test_tenant_delete_refuses_unfinished_jobs_unless_forced(team: Moon) -> None:
    go = team.workdir / "go"
    team.submit(job_spec("finished", ["true"]), "--wait")
    team.submit(job_spec("waiting", ["sh", "-c", WAIT_FOR_GO], env={"GO": str(go)}))
    team.wait_for_phase("team/waiting", "Running")

    refused = team.expect(REFUSED, "tenant", "delete", TENANT)
    assert "tenant team has 1 unfinished job (waiting Running)" in refused.stderr, refused.stderr
    assert len(team.json("job", "ls")) == 2

    deleted = team.expect(OK, "tenant", "delete", TENANT, "--force")
    assert deleted.stdout == "tenant team deleted\n"
    assert team.json("tenant", "ls") == []
    assert team.json("job", "ls") == []
    assert team.expect(NOT_FOUND, "tenant", "delete", TENANT).stderr == (
        'error: tenant "team" not found\n'
    )
    # The name is free again.
    team.expect(OK, "tenant", "create", TENANT)
    team.submit(job_spec("waiting", ["true"]), "--wait")


def test_a_time_to_live_is_rendered_for_kubernetes_as_not_supported_with_8(moon: Moon) -> None:
    spec = {**job_spec("brief", ["true"]), "ttlSecondsAfterFinished": 60}
    rendered = moon.expect(NOT_SUPPORTED, "render", "-f", moon.write_spec(spec))
    assert rendered.stderr.startswith(
        "error: not supported: job team/brief: ttlSecondsAfterFinished on the kubernetes backend"
    ), rendered.stderr
    assert rendered.stdout == ""
    # The local backend takes it.
    moon.expect(OK, "tenant", "create", TENANT)
    moon.submit(spec, "--wait")


# --------------------------------------------------------------------------- services


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=CLI_TIMEOUT) as answer:
        return str(answer.read().decode())


def test_a_service_is_created_served_scaled_inspected_and_deleted(team: Moon) -> None:
    spec = {
        "kind": "Service",
        "name": "echo",
        "tenant": TENANT,
        "command": [sys.executable, "-c", PID_SERVER],
        "replicas": 2,
        "cpus": "100m",
        "memory": "64Mi",
        "readiness": {"httpPath": "/healthz"},
    }
    path = team.write_spec(spec)
    created = team.expect(OK, "svc", "create", "-f", path, "--wait", "--timeout", WAIT_LIMIT)
    first, url = created.stdout.splitlines()
    assert first == "service team/echo created"
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(fetch, [url] * 30))) == 2
    assert team.expect(OK, "svc", "create", "-f", path).stdout == "service team/echo unchanged\n"

    listed = team.json("svc", "ls")
    assert [(s["name"], s["readyReplicas"], s["url"]) for s in listed] == [("echo", 2, url)]
    table = team.expect(OK, "svc", "ls").stdout.splitlines()
    assert table[0].split() == ["TENANT", "NAME", "PHASE", "READY", "URL", "AGE", "MESSAGE"]
    assert table[1].split()[:5] == [TENANT, "echo", "Running", "2/2", url]
    details = team.expect(OK, "svc", "get", "echo", "--tenant", TENANT).stdout
    assert f"URL:       {url}" in details, details
    assert "replica-1  Running  yes" in details, details

    assert team.expect(OK, "svc", "scale", "team/echo", "3").stdout == (
        "service team/echo scaled to 3\n"
    )
    wait_for(lambda: team.json("svc", "get", "team/echo")["readyReplicas"] == 3, "3 ready")
    # Side by side, as the balancer spreads load that is in flight at once; one request at
    # a time may keep going to the replicas it already knows to be fast.
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(fetch, [url] * 60))) == 3

    logs = team.expect(OK, "svc", "logs", "team/echo", "--replica", "replica-2").stdout
    assert logs.startswith("listening on "), logs
    events = team.expect(OK, "svc", "events", "team/echo", "-o", "json").stdout
    kinds = {json.loads(line)["kind"] for line in events.splitlines()}
    assert {"ReplicaStarted", "Scaled"} <= kinds, kinds

    assert team.expect(OK, "svc", "delete", "team/echo").stdout == "service team/echo deleted\n"
    team.expect(NOT_FOUND, "svc", "get", "team/echo")
    with pytest.raises(urllib.error.URLError):
        fetch(url)


def test_service_commands_refuse_bad_input_with_their_codes(team: Moon) -> None:
    bad = team.write_spec({"kind": "Service", "name": "Bad_Name", "tenant": TENANT, "port": 0})
    refused = team.expect(INVALID_INPUT, "svc", "create", "-f", bad)
    assert "name:" in refused.stderr and "port:" in refused.stderr, refused.stderr
    assert team.expect(OK, "svc", "ls").stdout.splitlines()[1:] == []
    unnamed = team.expect(INVALID_INPUT, "svc", "get", "echo")
    assert "give it as TENANT/NAME" in unnamed.stderr, unnamed.stderr
    team.expect(NOT_FOUND, "svc", "scale", "team/nothing", "2")
    team.expect(NOT_FOUND, "svc", "ls", "--tenant", "nobody")
