"""Real frameworks end to end on the local backend: the examples' training
scripts run as two-worker jobs, joined by the rendezvous moon wires up.

- XGBoost: moon's tracker and ``moon.xgboost.communicator_args()``; through the
  Python API and through ``moon job submit --wait --follow``.
- TensorFlow (``-m tensorflow``): ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``.

Each worker saves what it trained; data-parallel training must leave every
worker with the same model.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, RunCli

import moon

EXAMPLES = REPO_ROOT / "examples"
XGBOOST_TRAIN = EXAMPLES / "xgboost" / "train.py"
TENSORFLOW_TRAIN = EXAMPLES / "tensorflow" / "train.py"
TENANT = "frameworks"
WORKERS = 2
XGBOOST_ROUNDS = 5

# moon ends a job that outlives its deadline, so a hung rendezvous fails the
# test with the replicas' output instead of running into pytest's timeout.
XGBOOST_DEADLINE_S = 180
# TensorFlow takes seconds to import per worker, more on a small, busy machine.
TENSORFLOW_DEADLINE_S = 600


@pytest.fixture
def client(moon_home: Path, moon_bin: Path) -> moon.Client:
    client = moon.Client(home=moon_home, agent_program=moon_bin)
    client.create_tenant(TENANT, quota=moon.Quota(cpus=2, memory="8Gi", gpus=0, jobs=2))
    return client


def _job(
    name: str, framework: str, script: Path, args: Sequence[str], memory: str, deadline: int
) -> moon.Job:
    return moon.Job(
        name=name,
        tenant=TENANT,
        framework=framework,
        roles=[
            moon.Role(
                "worker",
                replicas=WORKERS,
                # Replicas inherit the submitter's PATH, VIRTUAL_ENV and
                # PYTHONPATH, so this interpreter finds the same packages
                # (moon among them).
                command=[sys.executable, str(script)],
                args=list(args),
                # Half a CPU each, so that two workers fit a one-core machine.
                cpus="500m",
                memory=memory,
                env={"PYTHONUNBUFFERED": "1"},
            )
        ],
        active_deadline_seconds=deadline,
    )


def _xgboost_job(name: str, out: Path) -> moon.Job:
    args = ["--out", str(out), "--rounds", str(XGBOOST_ROUNDS)]
    return _job(name, "xgboost", XGBOOST_TRAIN, args, "1Gi", XGBOOST_DEADLINE_S)


def _run(client: moon.Client, job: moon.Job, timeout: float) -> tuple[moon.JobStatus, list[str]]:
    """Submits ``job``, reads its output until it ends, and returns its final
    status and every line, ``[worker-0] text``."""
    handle = client.submit(job)
    lines = list(handle.logs(follow=True))
    try:
        status = handle.wait(timeout=timeout)
    except moon.JobFailed as error:
        pytest.fail(f"job {handle.key} failed: {error}\n" + "\n".join(lines), pytrace=False)
    return status, lines


def _assert_succeeded(status: moon.JobStatus, lines: list[str]) -> None:
    output = "\n".join(lines)
    assert status.phase == "Succeeded", output
    workers = [replica for replica in status.replicas if replica.role == "worker"]
    assert [replica.name for replica in workers] == [f"worker-{i}" for i in range(WORKERS)]
    for replica in workers:
        assert (replica.phase, replica.exit_code) == ("Succeeded", 0), (replica, output)
    # moon's hidden xgboost tracker either exits on its own once the workers
    # are done or, if the job ends first, is stopped with the job; it never fails.
    for replica in status.replicas:
        if replica.role != "worker":
            assert replica.phase in ("Succeeded", "Stopped"), (replica, output)


def _assert_xgboost_models(out: Path, lines: list[str]) -> None:
    output = "\n".join(lines)
    for rank in range(WORKERS):
        assert f"[worker-{rank}] world_size={WORKERS} rank={rank}" in lines, output
        assert any(line.startswith(f"[worker-{rank}] rank={rank} round=") for line in lines), output
    paths = [out / f"model-{rank}.json" for rank in range(WORKERS)]
    for path in paths:
        assert path.is_file(), f"{path} is missing\n{output}"
    models = [json.loads(path.read_text()) for path in paths]
    assert models[0] == models[1], "the workers' models differ"

    xgb = pytest.importorskip("xgboost")
    booster = xgb.Booster(model_file=str(paths[0]))
    assert booster.num_boosted_rounds() == XGBOOST_ROUNDS


@pytest.mark.slow
def test_xgboost_two_workers(client: moon.Client, tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("xgboost")
    out = tmp_path / "models"

    status, lines = _run(client, _xgboost_job("xgb", out), XGBOOST_DEADLINE_S + 60)

    _assert_succeeded(status, lines)
    assert status.framework == "xgboost"
    assert [r.name for r in status.replicas if r.role != "worker"] == ["tracker-0"]
    _assert_xgboost_models(out, lines)


@pytest.mark.slow
def test_xgboost_two_workers_through_the_cli(
    run_cli: RunCli, moon_home: Path, tmp_path: Path
) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("xgboost")
    out = tmp_path / "models"
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(_xgboost_job("xgb-cli", out).to_dict(), sort_keys=False))

    created = run_cli(
        "tenant", "create", TENANT, "--cpus", "2", "--memory", "8Gi", "--jobs", "2", home=moon_home
    )
    assert created.returncode == 0, created.stderr
    done = run_cli(
        "job",
        "submit",
        "-f",
        spec,
        "--wait",
        "--follow",
        "--timeout",
        XGBOOST_DEADLINE_S + 60,
        home=moon_home,
        timeout=XGBOOST_DEADLINE_S + 90,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    _assert_xgboost_models(out, done.stdout.splitlines())


@pytest.mark.tensorflow
@pytest.mark.slow
@pytest.mark.timeout(TENSORFLOW_DEADLINE_S + 120)
def test_tensorflow_two_workers(client: moon.Client, tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    # Only whether it is installed: the workers import it, this process need not.
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed (scripts/requirements-tf.txt)")
    out = tmp_path / "weights"
    job = _job(
        "tf",
        "tensorflow",
        TENSORFLOW_TRAIN,
        ["--out", str(out), "--steps", "5"],
        "2Gi",
        TENSORFLOW_DEADLINE_S,
    )

    status, lines = _run(client, job, TENSORFLOW_DEADLINE_S + 60)

    _assert_succeeded(status, lines)
    output = "\n".join(lines)
    for index in range(WORKERS):
        prefix = f"[worker-{index}] "
        assert any(
            line.startswith(prefix) and f"num_replicas_in_sync={WORKERS}" in line for line in lines
        ), output
        assert any(line.startswith(prefix) and "step=4 loss=" in line for line in lines), output

    paths = [out / f"weights-{index}.npz" for index in range(WORKERS)]
    for path in paths:
        assert path.is_file(), f"{path} is missing\n{output}"
    with np.load(paths[0]) as first, np.load(paths[1]) as second:
        assert sorted(first.files) == sorted(second.files) == ["b", "w"]
        for name in first.files:
            # Both workers apply the same all-reduced gradients to the same
            # initial values, so the weights agree to the last bit or nearly.
            np.testing.assert_allclose(first[name], second[name], rtol=1e-6, atol=1e-7)
