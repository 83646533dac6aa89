"""moon's quickstart: a two-worker distributed XGBoost job on this machine, then its model served.

Creates (or keeps) the tenant ``quickstart``, submits a job that runs
``examples/xgboost/train.py`` as two workers joined by XGBoost's collective,
streams their output as it comes, and reports how the job ended and where the
workers saved their models. Then it serves the model: a service of two
replicas of ``examples/xgboost/serve.py`` behind moon's proxy, asks it for
predictions at the service's URL and reports their accuracy; the service is
deleted at the end unless ``--keep-serving``.

With the platform's SeaweedFS in ``MOON_SEAWEEDFS`` (scripts/quickstart.sh
starts one), the tenant gets a directory and a collection of its own there:
the training data is written to it first (``datasets/quickstart/part-N.csv``,
one shard per worker), the workers read their shards from it and write their
models to ``models/<job>/``. Without it, the workers make the same data
themselves and save their models in a local directory (``--out``).

    python examples/quickstart.py [--home DIR] [--out DIR] [--rounds N] [--keep-serving]

State lives in ``--home``, else ``$MOON_HOME``, else ``~/.moon``; the local
backend's agent started there keeps running after this script ends, ready for
the next job (``moon job ls`` shows them all).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

import moon

EXAMPLES = Path(__file__).resolve().parent
TRAIN = EXAMPLES / "xgboost" / "train.py"
SERVE = EXAMPLES / "xgboost" / "serve.py"
sys.path.insert(0, str(TRAIN.parent))
from train import make_dataset, to_csv  # noqa: E402

TENANT = "quickstart"
WORKERS = 2
DATA = "datasets/quickstart"
ROWS, FEATURES, SEED = 4000, 8, 7
# Rows asked of the served model, in batches of this many per request.
ASKED, BATCH = 256, 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="moon's state directory ($MOON_HOME, ~/.moon)")
    parser.add_argument(
        "--out",
        type=Path,
        help="without SeaweedFS: where the workers save their models (a new temporary directory)",
    )
    parser.add_argument("--name", help="the job's name (xgb-<date>-<time>)")
    parser.add_argument("--rounds", type=int, default=10, help="boosting rounds (default 10)")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds to wait for the job (default 600)"
    )
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="leave the model's service running (`moon svc delete quickstart/NAME` stops it)",
    )
    return parser.parse_args(argv)


def cancel(job: moon.JobHandle) -> None:
    # The job may have ended on its own in the meantime.
    with contextlib.suppress(moon.Conflict):
        job.cancel()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    # Job names are unique within a tenant, so each run gets its own.
    name = args.name or time.strftime("xgb-%Y%m%d-%H%M%S")
    with_storage = bool(os.environ.get("MOON_SEAWEEDFS"))

    client = moon.Client(home=args.home)
    print(f"moon {moon.__version__}, state in {client.home}")

    # Applying a tenant is idempotent: a second run finds it "unchanged".
    outcome = client.create_tenant(
        TENANT,
        quota=moon.Quota(cpus=2, memory="4Gi", gpus=0, jobs=4),
        storage={"seaweedfs": {}} if with_storage else None,
    )
    print(f"tenant {TENANT}: {outcome}")

    if with_storage:
        store = client.storage(TENANT).seaweedfs()
        x, y = make_dataset(ROWS, FEATURES, SEED)
        shards = {
            f"{DATA}/part-{rank}.csv": to_csv(x[rows], y[rows])
            for rank, rows in enumerate(np.array_split(np.arange(ROWS), WORKERS))
        }
        store.put_many(shards)
        print(f"training data: {len(shards)} shards of {ROWS} rows in {DATA}/ of {store.url}")
        out = f"models/{name}"
        train_args = ["--store", store.url, "--data", DATA, "--out", out]
    else:
        out_dir = args.out or Path(tempfile.mkdtemp(prefix=f"moon-{name}-"))
        train_args = ["--out", str(out_dir)]

    job = client.submit(
        moon.Job(
            name=name,
            tenant=TENANT,
            framework="xgboost",
            roles=[
                moon.Role(
                    "worker",
                    replicas=WORKERS,
                    # Replicas inherit this process's environment, so this
                    # interpreter, with its numpy, xgboost and moon, runs them.
                    command=[sys.executable, str(TRAIN)],
                    args=[*train_args, "--rounds", str(args.rounds)],
                    # Half a CPU each: the job fits even a one-core machine.
                    cpus="500m",
                    memory="1Gi",
                    env={"PYTHONUNBUFFERED": "1"},
                )
            ],
            # moon stops the job (tracker included) if it ever hangs.
            active_deadline_seconds=int(args.timeout),
        )
    )
    print(f"submitted job {job.key}; its output follows\n")

    try:
        for line in job.logs(follow=True):
            print(line, flush=True)
        status = job.wait(timeout=args.timeout)
    except moon.JobFailed as error:
        print(f"\njob {job.key} {error.phase or 'failed'}: {error.reason or error}")
        print(f"see `moon job get {job.key}` and `moon job logs {job.key}`")
        return 1
    except moon.Timeout:
        print(f"\njob {job.key} is still running after {args.timeout:g}s; cancelling it")
        cancel(job)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; cancelling job {job.key}")
        cancel(job)
        return 130

    print(f"\njob {status.key}: {status.phase}")
    for replica in status.replicas:
        print(f"  {replica.name:<10} {replica.phase:<10} exit code {replica.exit_code}")
    if with_storage:
        listed = store.list(out)
        print(f"models ({len(listed)}) in {out}/ of {store.url}:")
        for meta in listed:
            print(f"  {meta.path}  {meta.size} bytes")
        platform = os.environ["MOON_SEAWEEDFS"]
        where = f"{store.url.split('?')[0]}/{out}/"
        command = f"MOON_SEAWEEDFS='{platform}' moon fs ls --tenant {TENANT} -l {where}"
        print(f"see them with `{command}`")
        models = [meta.path for meta in listed if meta.path.endswith(".json")]
    else:
        found = sorted(out_dir.glob("model-*.json"))
        print(f"models ({len(found)}) in {out_dir}:")
        for model in found:
            print(f"  {model.name}  {model.stat().st_size} bytes")
        models = [model.name for model in found]
    if status.phase != "Succeeded" or len(models) != WORKERS:
        return 1

    if with_storage:
        model_args = ["--store", store.url, "--model", f"{out}/model-0.json"]
    else:
        model_args = ["--model", str(out_dir / "model-0.json")]
    served = serve_and_predict(client, f"{name}-serve", model_args, args.keep_serving)
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0 if served else 1


def post(url: str, document: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(json.load(answer))


def serve_and_predict(client: moon.Client, name: str, model_args: list[str], keep: bool) -> bool:
    """Serves the model as a service of two replicas and asks it for predictions through
    moon's proxy; whether they were answered."""
    svc = client.serve(
        moon.Service(
            name=name,
            tenant=TENANT,
            command=[sys.executable, str(SERVE), *model_args],
            replicas=2,
            cpus="250m",
            memory="512Mi",
            # A replica takes requests once its model is loaded.
            readiness={"httpPath": "/healthz"},
            env={"PYTHONUNBUFFERED": "1"},
        )
    )
    print(f"\nserving the model as service {svc.key}")
    try:
        status = svc.wait_ready(timeout=120)
        url = f"{status.url}/predict"
        x, y = make_dataset(ROWS, FEATURES, SEED)
        predictions: list[float] = []
        replicas: set[str] = set()
        for batch in np.array_split(np.arange(ASKED), ASKED // BATCH):
            answer = post(url, {"rows": x[batch].tolist()})
            predictions.extend(answer["predictions"])
            replicas.add(answer["replica"])
        accuracy = float(np.mean((np.asarray(predictions) > 0.5) == y[:ASKED]))
        print(
            f"{len(predictions)} predictions from {url}: accuracy {accuracy:.3f}, "
            f"answered by {len(replicas)} replicas"
        )
    except (moon.Timeout, OSError) as error:
        print(f"service {svc.key} did not answer: {error}")
        print(f"see `moon svc get {svc.key}` and `moon svc logs {svc.key}`")
        return False
    finally:
        if keep:
            print(f"service {svc.key} keeps serving at {svc.status().url}")
        else:
            svc.delete()
            print(f"service {svc.key} deleted (--keep-serving keeps it)")
    return True


if __name__ == "__main__":
    sys.exit(main())
