"""Distributed TensorFlow with ``MultiWorkerMirroredStrategy``.

Run it as the ``worker`` role of a moon job with ``framework: tensorflow``:
moon gives every worker a port and sets ``TF_CONFIG`` to the cluster's
addresses and the worker's own task, which is all the strategy needs.

Each worker builds the same regression dataset from one seed and trains a
small linear model on its own shard of every batch; the strategy sums the
gradients over all workers, so every worker applies the same update and ends
with the same weights, saved as ``<out>/weights-<task index>.npz``
(``weights-chief-0.npz`` for a chief).

The training loop uses plain TensorFlow variables and ``tf.function``
rather than Keras, so it runs the same with Keras 2 or Keras 3 installed.

    python examples/tensorflow/train.py --out /tmp/tf-weights   # as a moon worker
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Before TensorFlow is imported, unless the user chose otherwise: keep its C++
# start-up chatter out of the logs, and use TensorFlow's own CPU kernels rather
# than oneDNN's, whose results may differ in the last bits from run to run.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for weights-<i>.npz")
    parser.add_argument("--steps", type=int, default=5, help="training steps (default 5)")
    parser.add_argument("--batch", type=int, default=64, help="global batch size")
    parser.add_argument("--features", type=int, default=8, help="inputs of the model")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--seed", type=int, default=7, help="seed of the data and weights")
    return parser.parse_args(argv)


def task_of_tf_config() -> tuple[str, int, int]:
    """(task type, task index, workers in the cluster) from ``TF_CONFIG``."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        sys.exit(
            "TF_CONFIG is not set: moon sets it for the replicas of a tensorflow job; "
            "run this program as one (role 'worker' of a job with framework 'tensorflow')"
        )
    config = json.loads(raw)
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return task.get("type", "worker"), int(task.get("index", 0)), workers


def make_dataset(
    steps: int, batch: int, features: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``steps`` batches of a noisy linear target, the same on every worker,
    and the weights that generated it."""
    rng = np.random.default_rng(seed)
    true_w = rng.normal(size=(features, 1)).astype(np.float32)
    x = rng.normal(size=(steps, batch, features)).astype(np.float32)
    y = x @ true_w + 0.1 * rng.normal(size=(steps, batch, 1)).astype(np.float32)
    return x, y, true_w


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    task_type, task_index, workers = task_of_tf_config()

    # Replicas share a small machine: one thread per op and one op at a time.
    # This must happen before the strategy starts TensorFlow's runtime.
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    n = strategy.num_replicas_in_sync
    print(f"task={task_type}-{task_index} num_replicas_in_sync={n}", flush=True)
    if n != workers:
        sys.exit(f"TF_CONFIG lists {workers} workers but the strategy has {n} replicas")
    if args.batch % n:
        sys.exit(f"--batch {args.batch} does not divide among {n} replicas")

    x, y, true_w = make_dataset(args.steps, args.batch, args.features, args.seed)
    per_replica = args.batch // n

    with strategy.scope():
        # Seeded, so every worker starts from the same values; the strategy
        # also broadcasts worker 0's initial values.
        init = np.random.default_rng(args.seed + 1).normal(scale=0.1, size=(args.features, 1))
        w = tf.Variable(init.astype(np.float32), name="w")
        b = tf.Variable(tf.zeros([1]), name="b")

    @tf.function
    def train_step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        def step_fn(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
            ctx = tf.distribute.get_replica_context()
            # This replica's slice of the global batch.
            start = ctx.replica_id_in_sync_group * per_replica
            xs = xb[start : start + per_replica]
            ys = yb[start : start + per_replica]
            with tf.GradientTape() as tape:
                pred = tf.matmul(xs, w) + b
                # Summed here, divided by the global batch: after the all-reduce
                # this is the mean squared error over the whole batch.
                loss = tf.reduce_sum(tf.square(pred - ys)) / args.batch
            grads = tape.gradient(loss, [w, b])
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            w.assign_sub(args.lr * grads[0])
            b.assign_sub(args.lr * grads[1])
            return loss

        losses = strategy.run(step_fn, args=(xb, yb))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    for step in range(args.steps):
        loss = train_step(tf.constant(x[step]), tf.constant(y[step]))
        print(f"task={task_type}-{task_index} step={step} loss={float(loss):.6f}", flush=True)

    weights = {"w": w.numpy(), "b": b.numpy()}
    distance = float(np.linalg.norm(weights["w"] - true_w))
    print(f"task={task_type}-{task_index} distance_to_true_w={distance:.4f}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    # A chief and worker 0 share index 0, so only workers go by index alone.
    stem = f"weights-{task_index}" if task_type == "worker" else f"weights-{task_type}-{task_index}"
    path = args.out / f"{stem}.npz"
    np.savez(path, **weights)
    print(f"task={task_type}-{task_index} saved {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
