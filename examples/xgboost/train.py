"""Distributed XGBoost on a synthetic binary-classification task.

Run it as the ``worker`` role of a moon job with ``framework: xgboost``: moon
starts XGBoost's tracker and tells every worker where it is, and
``moon.xgboost.communicator_args()`` hands that to XGBoost's collective.

Every worker builds the same dataset from one seed and trains on its own shard
of the rows; XGBoost merges the workers' histograms at every split, so each
worker ends with the same model, saved as ``<out>/model-<rank>.json``.

    python examples/xgboost/train.py --out /tmp/xgb-models   # as a moon worker
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb
from xgboost import collective

from moon.xgboost import communicator_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for model-<rank>.json")
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
    x, y = make_dataset(args.rows, args.features, args.seed)

    comm_args = communicator_args()
    # moon starts the tracker beside the workers, and a worker that finds it
    # not yet listening retries after 2 s, 4 s, 6 s, ...; XGBoost's default of
    # 3 attempts gives up after 6 s, too soon on a busy machine.
    comm_args.setdefault("dmlc_retry", 8)
    with collective.CommunicatorContext(**comm_args):
        rank = collective.get_rank()
        world_size = collective.get_world_size()
        print(f"world_size={world_size} rank={rank}", flush=True)

        # Contiguous shards, one per rank; together they cover every row once.
        shard = np.array_split(np.arange(args.rows), world_size)[rank]
        dtrain = xgb.DMatrix(x[shard], label=y[shard])
        print(f"rank={rank} rows={len(shard)} of {args.rows}", flush=True)

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

        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"model-{rank}.json"
        booster.save_model(path)
        print(f"rank={rank} saved {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
