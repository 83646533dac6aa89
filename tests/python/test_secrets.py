"""Nothing secret on disk, on the local backend: what replicas inherit of the
submitter's environment, and tenant secrets that roles reference (``envFrom``)
without their values reaching ``MOON_HOME``, a plan, a log, an event or an error.

Every test reads every file under ``MOON_HOME`` as bytes (``state.db`` and its
``-wal`` included) after its jobs have run, and replicas write their environment
outside ``MOON_HOME``, so that a test sees what a replica got without putting it
in a log.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from pathlib import Path

import pytest
from conftest import RunCli

import moon

TENANT = "team"
WAIT_S = 30.0
CAPACITY = "capacity: {cpus: 8, memory: 16Gi}\n"
MARKER_NAME = "MOON_TEST_SUBMITTER_TOKEN"
# Writes the replica's whole environment, NUL-separated, to $OUT.
DUMP_ENV = [
    sys.executable,
    "-c",
    "import os; open(os.environ['OUT'], 'wb')"
    ".write(b'\\0'.join(k + b'=' + v for k, v in os.environb.items()))",
]


def files_holding(root: Path, value: str) -> list[Path]:
    needle = value.encode()
    return sorted(
        path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()
    )


def env_of(dump: Path) -> dict[str, str]:
    entries = [entry.decode() for entry in dump.read_bytes().split(b"\0") if entry]
    return dict(entry.split("=", 1) for entry in entries)


def dumping_role(name: str, out: Path, **role: object) -> moon.Role:
    env = {"OUT": str(out / f"{name}.env")}
    return moon.Role(name, command=DUMP_ENV, env=env, cpus="100m", memory="64Mi", **role)


@pytest.fixture
def home(moon_home: Path) -> Path:
    (moon_home / "config.yaml").write_text(CAPACITY)
    return moon_home


@pytest.fixture
def team(home: Path) -> moon.Client:
    client = moon.Client(home=home)
    client.create_tenant(TENANT)
    return client


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where replicas write what they saw: outside MOON_HOME."""
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def marker(monkeypatch: pytest.MonkeyPatch) -> str:
    """A random value exported by the submitting process, as a notebook's cloud key is."""
    value = f"submitter-{secrets.token_hex(16)}"
    monkeypatch.setenv(MARKER_NAME, value)
    return value


# --------------------------------------------------------------------------- inheritance


def test_the_submitters_environment_stays_out_of_moon_home_and_its_replicas(
    team: moon.Client, home: Path, out: Path, marker: str
) -> None:
    job = moon.Job("plain", TENANT, roles=[dumping_role("main", out)])
    team.submit(job).wait(timeout=WAIT_S)

    seen = env_of(out / "main.env")
    assert MARKER_NAME not in seen
    # What finds the same programs and Python is inherited.
    assert seen["PATH"] == os.environ["PATH"]
    assert seen["HOME"] == os.environ["HOME"]
    assert seen["MOON_REPLICA"] == "main-0"
    assert files_holding(home, marker) == []
    assert (home / "state.db").is_file()
    # Nor does the agent, which outlives the notebook that started it, hold it.
    agent = (home / "agent.pid").read_text().split()[0]
    assert marker.encode() not in Path(f"/proc/{agent}/environ").read_bytes()


def test_a_role_that_names_a_variable_in_inherit_env_gets_it_and_no_other_role_does(
    team: moon.Client, out: Path, marker: str
) -> None:
    job = moon.Job(
        "named",
        TENANT,
        roles=[
            dumping_role("asks", out, inherit_env=[MARKER_NAME]),
            dumping_role("other", out),
        ],
    )
    team.submit(job).wait(timeout=WAIT_S)

    assert env_of(out / "asks.env")[MARKER_NAME] == marker
    assert MARKER_NAME not in env_of(out / "other.env")


def test_inherit_env_round_trips_through_the_spec() -> None:
    role = moon.Role("main", command=["true"], inherit_env=["WANDB_API_KEY"], env_from=["wandb"])
    data = role.to_dict()
    assert data["inheritEnv"] == ["WANDB_API_KEY"]
    assert data["envFrom"] == [{"secret": "wandb"}]
    job = moon.Job.from_dict({"name": "j", "tenant": "t", "framework": "custom", "roles": [data]})
    assert job.roles[0].inherit_env == ["WANDB_API_KEY"]
    assert job.roles[0].env_from == ["wandb"]


# --------------------------------------------------------------------------- secrets


def test_a_role_that_references_a_secret_sees_its_keys_and_nothing_else_holds_them(
    team: moon.Client, home: Path, out: Path
) -> None:
    token, extra = f"wandb-{secrets.token_hex(16)}", f"extra-{secrets.token_hex(16)}"
    assert team.create_secret(TENANT, "wandb", {"WANDB_API_KEY": token, "EXTRA": extra}) == (
        "created"
    )
    assert team.create_secret(TENANT, "wandb", {"WANDB_API_KEY": token, "EXTRA": extra}) == (
        "unchanged"
    )
    secret_file = home / "secrets" / TENANT / "wandb.json"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "secrets" / TENANT).stat().st_mode) == 0o700
    assert team.secrets(TENANT) == [
        moon.SecretInfo(tenant=TENANT, name="wandb", keys=["EXTRA", "WANDB_API_KEY"])
    ]

    job = moon.Job(
        "tracked",
        TENANT,
        roles=[
            # The role's own env wins over the secret's key of the same name.
            dumping_role("logger", out, env_from=["wandb"]),
            dumping_role("other", out),
        ],
    )
    job.roles[0].env = {**(job.roles[0].env or {}), "EXTRA": "from-env"}
    handle = team.submit(job)
    handle.wait(timeout=WAIT_S)

    logger = env_of(out / "logger.env")
    assert logger["WANDB_API_KEY"] == token
    assert logger["EXTRA"] == "from-env"
    assert "WANDB_API_KEY" not in env_of(out / "other.env")
    for value in (token, extra):
        assert files_holding(home, value) == [secret_file]
        assert all(value not in event.message for event in handle.events())
        assert value not in repr(team.secrets(TENANT))


def test_a_job_naming_a_missing_secret_is_refused_at_submission(team: moon.Client) -> None:
    job = moon.Job("orphan", TENANT, roles=[moon.Role("main", command=["true"], env_from=["nope"])])
    with pytest.raises(moon.NotFound, match='secret "team/nope" not found'):
        team.submit(job)
    assert team.jobs(TENANT) == []


def test_a_secret_deleted_before_its_replica_starts_fails_the_replica_naming_it(
    home: Path, out: Path
) -> None:
    client = moon.Client(home=home)
    client.create_tenant(TENANT, quota=moon.Quota(jobs=1))
    value = f"gone-{secrets.token_hex(16)}"
    client.create_secret(TENANT, "gone", {"TOKEN": value})
    go = out / "go"
    first = client.submit(
        moon.Job(
            "first",
            TENANT,
            roles=[
                moon.Role(
                    "main",
                    command=["sh", "-c", 'while [ ! -e "$GO" ]; do sleep 0.05; done'],
                    env={"GO": str(go)},
                )
            ],
        )
    )
    # Queued behind the first job by the tenant's jobs quota, so it starts after the delete.
    second = client.submit(
        moon.Job("second", TENANT, roles=[dumping_role("main", out, env_from=["gone"])])
    )
    client.delete_secret(TENANT, "gone")
    go.touch()
    first.wait(timeout=WAIT_S)
    with pytest.raises(moon.JobFailed, match=r'secret \\?"team/gone\\?" not found'):
        second.wait(timeout=WAIT_S)
    assert not (out / "main.env").exists()
    assert files_holding(home, value) == []
    with pytest.raises(moon.NotFound, match='secret "team/gone" not found'):
        client.delete_secret(TENANT, "gone")


def test_invalid_secrets_are_refused_naming_keys_never_values(team: moon.Client) -> None:
    value = f"value-{secrets.token_hex(8)}"
    with pytest.raises(moon.InvalidSpec) as refused:
        team.create_secret(TENANT, "Bad_Name", {"HF-TOKEN": value, "OK": "x\0y"})
    text = str(refused.value)
    assert "data.HF-TOKEN: key must be a variable name" in text
    assert "data.OK: value must not contain a NUL byte" in text
    assert "name: must be lowercase letters" in text
    assert value not in text and "x\0y" not in text
    with pytest.raises(moon.NotFound, match='tenant "elsewhere" not found'):
        team.create_secret("elsewhere", "wandb", {"TOKEN": value})


# --------------------------------------------------------------------------- CLI


def test_the_cli_manages_secrets_without_printing_a_value(
    team: moon.Client, home: Path, run_cli: RunCli
) -> None:
    value, other = f"cli-{secrets.token_hex(16)}", f"file-{secrets.token_hex(16)}"
    created = run_cli(
        "secret",
        "create",
        "hf",
        "--tenant",
        TENANT,
        "--from-literal",
        f"HF_TOKEN={value}",
        home=home,
    )
    assert (created.returncode, created.stdout) == (0, f"secret {TENANT}/hf created\n"), (
        created.stderr
    )
    replaced = run_cli(
        "secret",
        "create",
        "hf",
        "-t",
        TENANT,
        "--from-env-file",
        "-",
        input=f"# tokens\nHF_TOKEN={other}\nHF_HOME=/data/hf\n",
        home=home,
    )
    assert (replaced.returncode, replaced.stdout) == (0, f"secret {TENANT}/hf updated\n"), (
        replaced.stderr
    )
    listed = run_cli("secret", "ls", "--tenant", TENANT, home=home)
    assert listed.stdout.split() == ["NAME", "KEYS", "hf", "HF_HOME,HF_TOKEN"]
    as_json = run_cli("secret", "ls", "--tenant", TENANT, "-o", "json", home=home)
    assert json.loads(as_json.stdout) == [
        {"tenant": TENANT, "name": "hf", "keys": ["HF_HOME", "HF_TOKEN"]}
    ]

    mistyped = run_cli("secret", "create", "hf", "-t", TENANT, "--from-literal", value, home=home)
    assert mistyped.returncode == 2
    assert mistyped.stderr == "error: --from-literal number 1 must be KEY=VALUE\n"
    bad_line = run_cli(
        "secret",
        "create",
        "hf",
        "-t",
        TENANT,
        "--from-env-file",
        "-",
        input=f"{value}\n",
        home=home,
    )
    assert bad_line.returncode == 2
    assert "line 1: must be KEY=VALUE" in bad_line.stderr

    for result in (created, replaced, listed, as_json, mistyped, bad_line):
        assert value not in result.stdout + result.stderr
        assert other not in result.stdout + result.stderr
    assert files_holding(home, other) == [home / "secrets" / TENANT / "hf.json"]

    deleted = run_cli("secret", "delete", "hf", "--tenant", TENANT, home=home)
    assert (deleted.returncode, deleted.stdout) == (0, f"secret {TENANT}/hf deleted\n")
    again = run_cli("secret", "delete", "hf", "--tenant", TENANT, home=home)
    assert again.returncode == 3
    assert 'secret "team/hf" not found' in again.stderr
    assert files_holding(home, other) == []
