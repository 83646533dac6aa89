"""Distributed XGBoost on a synthetic binary-classification task.

Run it as the ``worker`` role of a moon job with ``framework: xgboost``: moon
starts XGBoost's tracker and tells every worker where it is, and
``moon.xgboost.communicator_args()`` hands that to XGBoost's collective.

Every worker trains on its own shard of the rows; XGBoost merges the workers'
histograms at every split, so each worker ends with the same model, saved as
``<out>/model-<rank>.json``. The shards come from a store when ``--store`` names
one (``<data>/part-<rank>.csv``, label first, as examples/quickstart.py writes
them), and the models go there too; otherwise every worker builds the same
synthetic dataset from one seed and saves its model in the local directory
``--out``.

    python examples/xgboost/train.py --out /tmp/xgb-models   # as a moon worker
    python examples/xgboost/train.py --store seaweedfs://filer:8888/tenants/t \
        --data datasets/demo --out models/run-1
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb
from xgboost import collective

import moon.storage
from moon.xgboost import communicator_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        required=True,
        help="where model-<rank>.json goes: a local directory, or a path in --store",
    )
    parser.add_argument("--store", help="the store URL of the data and the models")
    parser.add_argument("--data", help="with --store: the path holding part-<rank>.csv")
    parser.add_argument("--rounds", type=int, default=10, help="boosting rounds (default 10)")
    parser.add_argument("--rows", type=int, default=4000, help="rows over all workers")
    parser.add_argument("--features", type=int, default=8, help="columns of the dataset")
    parser.add_argument("--seed", type=int, default=7, help="seed of the dataset")
    return parser.parse_args(argv)


def make_dataset(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A labelled dataset that is the same on every worker for the same arguments."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    weights = rng.normal(size=features)
    logits = x @ weights + 0.5 * x[:, 0] * x[:, 1]
    noise = rng.logistic(size=rows)
    y = (logits + noise > 0).astype(np.float32)
    return x, y


def to_csv(x: np.ndarray, y: np.ndarray) -> bytes:
    """Rows of ``label,feature...``, as the workers read them."""
    out = io.StringIO()
    np.savetxt(out, np.column_stack([y, x]), delimiter=",", fmt="%.7g")
    return out.getvalue().encode()


def from_csv(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    rows = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=np.float32, ndmin=2)
    return rows[:, 1:], rows[:, 0]


class PrintProgress(xgb.callback.TrainingCallback):
    """Prints every round's metrics on every worker (XGBoost's own log prints on
    rank 0 only). The metrics are reduced over all workers, so they agree."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        metrics = " ".join(
            f"{data}-{metric}={values[-1]:.5f}"
            for data, by_metric in evals_log.items()
            for metric, values in by_metric.items()
        )
        print(f"rank={self.rank} round={epoch} {metrics}", flush=True)
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.data and not args.store:
        raise SystemExit("--data needs --store")
    store = moon.storage.open(args.store) if args.store else None

    comm_args = communicator_args()
    # moon starts the tracker beside the workers, and a worker that finds it
    # not yet listening retries after 2 s, 4 s, 6 s, ...; XGBoost's default of
    # 3 attempts gives up after 6 s, too soon on a busy machine.
    comm_args.setdefault("dmlc_retry", 8)
    with collective.CommunicatorContext(**comm_args):
        rank = collective.get_rank()
        world_size = collective.get_world_size()
        print(f"world_size={world_size} rank={rank}", flush=True)

        if store is not None and args.data:
            part = f"{args.data}/part-{rank}.csv"
            x, y = from_csv(store.get(part))
            print(f"rank={rank} rows={len(y)} from {part} in {store.url}", flush=True)
        else:
            # Contiguous shards, one per rank; together they cover every row once.
            x, y = make_dataset(args.rows, args.features, args.seed)
            shard = np.array_split(np.arange(args.rows), world_size)[rank]
            x, y = x[shard], y[shard]
            print(f"rank={rank} rows={len(shard)} of {args.rows}", flush=True)
        dtrain = xgb.DMatrix(x, label=y)

        params = {
            "objective": "binary:logistic",
            "eval_metric": ["logloss", "error"],
            "tree_method": "hist",
            "max_depth": 4,
            "eta": 0.3,
            "seed": args.seed,
            # One thread per worker: replicas share the machine's cores.
            "nthread": 1,
        }
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=args.rounds,
            evals=[(dtrain, "train")],
            verbose_eval=False,
            callbacks=[PrintProgress(rank)],
        )

        name = f"model-{rank}.json"
        if store is not None:
            path = f"{args.out}/{name}"
            store.put(path, booster.save_raw(raw_format="json"))
            print(f"rank={rank} saved {path} in {store.url}", flush=True)
        else:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            booster.save_model(out / name)
            print(f"rank={rank} saved {out / name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
