"""The Python API (the installed ``moon`` package) against the local backend."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import moon

# Jobs run this interpreter rather than whatever `python` is on PATH.
PYTHON = sys.executable
TENANT = "team"


@pytest.fixture
def client(moon_home: Path) -> moon.Client:
    return moon.Client()


@pytest.fixture
def tenant(client: moon.Client) -> str:
    assert client.create_tenant(TENANT) == "created"
    return TENANT


def python_job(name: str, code: str, **job: Any) -> moon.Job:
    role = moon.Role("main", command=[PYTHON, "-u", "-c", code])
    return moon.Job(name=name, tenant=TENANT, roles=[role], **job)


@pytest.fixture
def sleeping_job(client: moon.Client, tenant: str, tmp_path: Path) -> Iterator[moon.JobHandle]:
    """A job that runs until the test ends (a minute at most).

    Every job is over before the fixture returns: a wait or a watch the test
    abandoned may still be following the job, and would start a new agent for
    it after ``moon_home`` stopped the old one.
    """
    stop = tmp_path / "stop"
    code = (
        "import os, time\n"
        "deadline = time.monotonic() + 60\n"
        f"while not os.path.exists({str(stop)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
    )
    job = client.submit(python_job("sleeper", code))
    yield job
    stop.touch()
    with contextlib.suppress(moon.JobFailed):
        job.wait(timeout=30)


def dumped(entry: dict[str, Any], form: str) -> str:
    dump = yaml.safe_dump if form == "yaml" else json.dumps
    return str(dump(entry["spec"]))


# --------------------------------------------------------------------------- exceptions


def test_exception_hierarchy() -> None:
    assert issubclass(moon.Timeout, TimeoutError)
    assert issubclass(moon.NotFound, LookupError)
    assert issubclass(moon.InvalidSpec, ValueError)
    assert issubclass(moon.PermissionDenied, PermissionError)
    assert issubclass(moon.NotSupported, NotImplementedError)
    assert issubclass(moon.JobCancelled, moon.JobFailed)
    for name in moon.errors.__all__:
        assert issubclass(getattr(moon, name), moon.MoonError), name
    assert issubclass(moon.MoonError, Exception)


def test_exceptions_pickle_with_their_details() -> None:
    error = moon.JobCancelled("job a/b cancelled: x", job="a/b", phase="cancelled", reason="x")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is moon.JobCancelled
    assert (str(copy), copy.job, copy.phase, copy.reason) == (str(error), "a/b", "cancelled", "x")
    details: list[moon.ErrorDetails] = [{"loc": ("a",), "type": "format", "msg": "b"}]
    invalid = moon.InvalidSpec("bad", errors=["a: b"], details=details, kind="job")
    copy_invalid = pickle.loads(pickle.dumps(invalid))
    assert (copy_invalid.errors, copy_invalid.details, copy_invalid.kind) == (
        ["a: b"],
        details,
        "job",
    )


def test_unknown_backend_is_invalid_config(moon_home: Path) -> None:
    with pytest.raises(moon.InvalidSpec) as caught:
        moon.Client("nimbus")
    assert caught.value.kind == "config"
    assert caught.value.errors[0].startswith('backend: unknown backend "nimbus"')


# --------------------------------------------------------------------------- specs


def test_invalid_specs_table_covers_every_kind(invalid_specs: list[dict[str, Any]]) -> None:
    assert {entry["kind"] for entry in invalid_specs} == {"job", "tenant", "service"}


@pytest.mark.parametrize("form", ["yaml", "json"])
def test_load_spec_reports_the_table_errors(invalid_spec: dict[str, Any], form: str) -> None:
    with pytest.raises(moon.InvalidSpec) as caught:
        moon.load_spec(dumped(invalid_spec, form))
    assert caught.value.errors == invalid_spec["errors"]
    assert caught.value.kind == invalid_spec["kind"]


def test_submit_reports_the_table_errors(client: moon.Client, invalid_spec: dict[str, Any]) -> None:
    with pytest.raises(moon.InvalidSpec) as caught:
        if invalid_spec["kind"] == "job":
            client.submit(invalid_spec["spec"])
        elif invalid_spec["kind"] == "service":
            client.serve(invalid_spec["spec"])
        else:
            client.apply_tenant(invalid_spec["spec"])
    assert caught.value.errors == invalid_spec["errors"]


def test_invalid_dataclass_is_refused_on_submit(client: moon.Client, tenant: str) -> None:
    job = moon.Job(name="Bad_Name", tenant=tenant, roles=[moon.Role("main", replicas=0)])
    with pytest.raises(moon.InvalidSpec) as caught:
        client.submit(job)
    # Every broken rule at once, in spec order.
    paths = [error.split(": ", 1)[0] for error in caught.value.errors]
    assert paths == ["name", "roles[0].replicas", "roles[0].command"]


def test_specs_round_trip(tmp_path: Path) -> None:
    job = moon.Job(
        name="resnet",
        tenant="vision",
        framework="pytorch",
        roles=[
            moon.Role("master", command=["python", "train.py"], cpus="500m", memory="2Gi"),
            moon.Role(
                "worker",
                replicas=3,
                command=["python", "train.py"],
                args=["--epochs", "3"],
                env={"NCCL_DEBUG": "INFO"},
                working_dir="/srv",
                gpus=1,
            ),
        ],
        restart_policy="on-failure",
        backoff_limit=2,
        active_deadline_seconds=3600,
        ttl_seconds_after_finished=600,
        labels={"team": "vision"},
    )
    data = job.to_dict()
    assert data["restartPolicy"] == "on-failure"
    assert data["activeDeadlineSeconds"] == 3600
    assert data["ttlSecondsAfterFinished"] == 600
    assert data["roles"][1]["workingDir"] == "/srv"
    assert moon.load_spec(json.dumps(data)) == job
    assert moon.Job.from_dict(data) == job

    tenant = moon.Tenant("vision", quota=moon.Quota(cpus=8, memory="32Gi", gpus=2, jobs=4))
    tenant.users = ["ada"]
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(tenant.to_dict()))
    assert moon.load_spec(path) == tenant
    assert moon.load_spec(str(path)) == tenant
    assert moon.Tenant.from_dict(tenant.to_dict()) == tenant


def test_load_spec_defaults_and_missing_file(tmp_path: Path) -> None:
    job = moon.load_spec(
        "name: a\ntenant: b\nframework: custom\nroles: [{name: main, command: [echo]}]\n"
    )
    assert job == moon.Job(name="a", tenant="b", roles=[moon.Role("main", command=["echo"])])
    assert moon.load_spec("name: vision\n") == moon.Tenant("vision")
    assert isinstance(moon.load_spec("name: a\nlabels: {x: y}\n", kind="tenant"), moon.Tenant)
    with pytest.raises(FileNotFoundError):
        moon.load_spec(str(tmp_path / "missing.yaml"))


def test_details_give_each_error_as_loc_type_msg(client: moon.Client, tenant: str) -> None:
    job = moon.Job(name="Bad_Name", tenant=tenant, roles=[moon.Role("main", replicas=0)])
    with pytest.raises(moon.InvalidSpec) as caught:
        client.submit(job)
    assert [(d["loc"], d["type"]) for d in caught.value.details] == [
        (("name",), "format"),
        (("roles", 0, "replicas"), "range"),
        (("roles", 0, "command"), "required"),
    ]
    assert caught.value.details[1]["msg"] == "must be at least 1, got 0"
    # The strings stay, one per detail.
    assert caught.value.errors[1] == "roles[0].replicas: must be at least 1, got 0"


def test_unknown_keys_are_refused_by_the_one_schema_wherever_they_come_from(tenant: str) -> None:
    # A role or quota given as a mapping keeps keys the classes do not know,
    # and moon's parser refuses them with their path, as from_dict does.
    spec = {
        "name": "odd",
        "tenant": tenant,
        "framework": "custom",
        "roles": [{"name": "main", "command": ["true"], "bogus": 1}],
    }
    built = moon.Job(
        name="odd", tenant=tenant, roles=[{"name": "main", "command": ["true"], "bogus": 1}]
    )
    with pytest.raises(moon.InvalidSpec) as from_class:
        built.validate()
    with pytest.raises(moon.InvalidSpec) as from_dict:
        moon.Job.from_dict(spec)
    with pytest.raises(moon.InvalidSpec) as rendered:
        moon.render(built)
    for caught in (from_class, from_dict, rendered):
        assert caught.value.details[0]["loc"] == ("roles", 0, "bogus")
        assert caught.value.details[0]["type"] == "unknown_field"
    assert from_class.value.errors == from_dict.value.errors
    with pytest.raises(moon.InvalidSpec) as quota:
        moon.Tenant("t", quota={"gpus": 1, "tpus": 4}).validate()
    assert quota.value.details[0]["loc"] == ("quota", "tpus")


def test_a_spec_names_its_kind_or_is_told_apart_by_its_keys() -> None:
    job = {"kind": "Job", "name": "j", "tenant": "t", "framework": "custom",
           "roles": [{"name": "main", "command": ["true"]}]}  # fmt: skip
    assert isinstance(moon.load_spec(json.dumps(job)), moon.Job)
    legacy = {key: value for key, value in job.items() if key != "kind"}
    assert isinstance(moon.load_spec(json.dumps(legacy)), moon.Job)
    assert isinstance(moon.load_spec('{"kind": "Tenant", "name": "t"}'), moon.Tenant)
    with pytest.raises(moon.InvalidSpec) as caught:
        moon.load_spec('{"kind": "Notebook", "name": "web"}')
    assert caught.value.details[0]["loc"] == ("kind",)
    assert "moon reads Tenant, Job, Service" in caught.value.errors[0]
    # render() asks the same parser: a mapping's kind key decides.
    assert "kind: Namespace" in moon.render({"kind": "Tenant", "name": "t"})


def test_role_command_must_be_a_list() -> None:
    with pytest.raises(TypeError):
        moon.Role("main", command="python train.py")


# --------------------------------------------------------------------------- tenants


def test_tenants(client: moon.Client) -> None:
    assert client.create_tenant("vision", quota=moon.Quota(cpus=4)) == "created"
    assert client.create_tenant("vision", quota=moon.Quota(cpus=4)) == "unchanged"
    assert client.apply_tenant({"name": "vision", "quota": {"cpus": 8}}) == "updated"
    status = client.tenant("vision")
    assert status.spec.quota == moon.Quota(cpus=8)
    assert (status.running_jobs, status.pending_jobs, status.used_cpus) == (0, 0, 0)
    assert [tenant.name for tenant in client.tenants()] == ["vision"]
    with pytest.raises(moon.NotFound) as caught:
        client.tenant("nope")
    assert isinstance(caught.value, LookupError)
    assert (caught.value.kind, caught.value.name) == ("tenant", "nope")


# --------------------------------------------------------------------------- jobs


def test_job_succeeds(client: moon.Client, tenant: str) -> None:
    job = client.submit(
        python_job("hello", "import sys; print('hi'); print('oops', file=sys.stderr)")
    )
    assert (job.tenant, job.name) == (tenant, "hello")
    status = job.wait(timeout=60)
    assert status.phase == "Succeeded"
    assert status.done
    assert status.started is not None and status.finished is not None
    assert status.created <= status.started <= status.finished
    assert [(r.name, r.phase, r.exit_code) for r in status.replicas] == [("main-0", "Succeeded", 0)]
    assert sorted(job.logs()) == ["[main-0] hi", "[main-0] oops"]
    lines = {line.line: line for line in job.log_lines(replica="main-0")}
    assert (lines["hi"].stream, lines["oops"].stream) == ("stdout", "stderr")
    assert list(job.logs(tail=1)) in (["[main-0] hi"], ["[main-0] oops"])

    kinds = [event.kind for event in job.events()]
    assert kinds[0] == "Submitted"
    assert kinds[-1] == "Succeeded"
    watched = list(job.watch())
    assert [event.kind for event in watched] == kinds
    assert [event.seq for event in job.events(after=watched[1].seq)] == [
        event.seq for event in watched[2:]
    ]

    assert client.job(tenant, "hello") == job
    assert [s.key for s in client.jobs()] == [f"{tenant}/hello"]
    assert client.jobs("other") == []
    with pytest.raises(moon.AlreadyExists):
        client.submit(python_job("hello", "pass"))
    with pytest.raises(moon.Conflict):
        job.cancel()


def test_job_fails_with_its_exit_code(client: moon.Client, tenant: str) -> None:
    job = client.submit(python_job("crash", "raise SystemExit(3)"))
    with pytest.raises(moon.JobFailed) as caught:
        job.wait(timeout=60)
    error = caught.value
    assert not isinstance(error, moon.JobCancelled)
    assert (error.job, error.phase) == (f"{tenant}/crash", "failed")
    assert "exited with code 3" in error.reason
    status = job.status()
    assert status.phase == "Failed"
    assert status.replicas[0].exit_code == 3


def test_unknown_job_and_replica(client: moon.Client, tenant: str) -> None:
    with pytest.raises(moon.NotFound):
        client.job(tenant, "ghost")
    job = client.submit(python_job("quick", "pass"))
    with pytest.raises(moon.NotFound):
        job.logs(replica="worker-7")


def test_wait_times_out(sleeping_job: moon.JobHandle) -> None:
    started = time.monotonic()
    with pytest.raises(moon.Timeout) as caught:
        sleeping_job.wait(timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.seconds == 0.5
    assert sleeping_job.status().phase in ("Pending", "Running")


def test_cancel_then_wait_raises_job_cancelled(sleeping_job: moon.JobHandle) -> None:
    sleeping_job.cancel()
    with pytest.raises(moon.JobCancelled) as caught:
        sleeping_job.wait(timeout=60)
    assert caught.value.phase == "cancelled"
    assert sleeping_job.status().phase == "Cancelled"


def test_wait_lets_other_threads_run(client: moon.Client, tenant: str) -> None:
    job = client.submit(python_job("nap", "import time; time.sleep(1.5)"))
    count = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        before = count
        job.wait(timeout=60)
        during = count - before
    finally:
        stop.set()
        spinner.join()
    # Had wait() held the GIL, the spinner would have stood still throughout.
    assert during > 10_000


@pytest.fixture
def sigint_soon() -> Iterator[None]:
    """Delivers SIGINT to the main thread half a second into the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(
        0.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)
    )
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_soon")
def test_ctrl_c_interrupts_wait(sleeping_job: moon.JobHandle) -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sleeping_job.wait(timeout=30)
    assert time.monotonic() - started < 5
    # The interrupted call left the client usable.
    assert sleeping_job.status().phase == "Running"


@pytest.mark.usefixtures("sigint_soon")
def test_ctrl_c_interrupts_following_logs(sleeping_job: moon.JobHandle) -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), sleeping_job.logs(follow=True) as lines:
        list(lines)
    assert time.monotonic() - started < 5


def test_follow_logs_streams_while_running(client: moon.Client, tenant: str) -> None:
    code = "import time; print('first'); time.sleep(2); print('second')"
    job = client.submit(python_job("chatty", code))
    started = time.monotonic()
    seen: list[str] = []
    for line in job.logs(follow=True):
        if not seen:
            assert time.monotonic() - started < 2
            assert job.status().phase == "Running"
        seen.append(line)
    assert seen == ["[main-0] first", "[main-0] second"]
    assert job.status().phase == "Succeeded"


def test_closing_a_stream_ends_it(sleeping_job: moon.JobHandle) -> None:
    with sleeping_job.watch() as events:
        assert next(events).kind == "Submitted"
    with pytest.raises(StopIteration):
        next(events)


def test_missing_agent_program_is_an_agent_error(moon_home: Path, tmp_path: Path) -> None:
    client = moon.Client(agent_program=tmp_path / "no-such-moon")
    client.create_tenant(TENANT)
    with pytest.raises(moon.AgentError):
        client.submit(python_job("orphan", "pass"))


def test_client_works_in_a_forked_child(client: moon.Client, tenant: str) -> None:
    job = client.submit(python_job("parent", "pass"))
    job.wait(timeout=60)
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads (the
        # runtime's) is risky; the child below is what shows it is handled.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child = client.submit(python_job("child", "pass"))
            code = 0 if child.wait(timeout=60).phase == "Succeeded" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.job(tenant, "child").status().phase == "Succeeded"


def test_moon_console_script_runs_the_bundled_program() -> None:
    bundled = Path(moon.__file__).parent / "bin" / "moon"
    assert bundled.is_file() and os.access(bundled, os.X_OK)
    result = subprocess.run(
        [PYTHON, "-c", "from moon._cli import main; main()", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("moon ")


def test_a_job_with_volumes_round_trips_through_its_dict() -> None:
    job = moon.Job(
        name="train",
        tenant="vision",
        roles=[moon.Role("main", command=["python"])],
        volumes=[moon.Volume("data", "/data", url="hdfs://nn:8020/tenants/vision/raw")],
    )
    assert job.validate().to_dict()["volumes"] == [
        {"name": "data", "url": "hdfs://nn:8020/tenants/vision/raw", "mountPath": "/data"}
    ]
    assert moon.Job.from_dict(job.to_dict()) == job
