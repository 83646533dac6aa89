"""GPU placement: 10,000 pods onto a synthetic 5,000-node cluster.

moon's placement (moon-gpu, through `moon._native.place_gpus`) and a plain-Python reference
implementing the same filter-and-score definition (`gpu_placement_reference.py`, every node looked
at for every pod) place the same seeded cluster and pods, alternating, for a few rounds. Their
placements must be identical (the benchmark exits 1 otherwise). moon's time includes turning the
nodes into JSON and the answer back into a list; the reference's includes parsing the selectors.

The cluster: nodes of five GPU models as GPU Feature Discovery names them (H100 80GB x8,
A100 40GB x4, A100 80GB x8, L4 x1/2/4/8, T4 x1/4), 2% unhealthy, a third partly used. The pods:
selectors such as "H100:2", "80GB+:1", "A100|H100:4", "cc8.9+:1" and "1", drawn at random.

    .venv/bin/python benchmarks/gpu_placement.py [--nodes 5000] [--pods 10000] [--rounds 5]

The last line is the ratio of medians, reference / moon (target: at least 10x).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import Any

# The script's folder is on sys.path: the reference lies beside it.
import gpu_placement_reference as reference

from moon import _native

# GFD product label, memory per GPU in MiB, compute capability, GPU counts per node, weight.
MODELS = [
    ("NVIDIA-H100-80GB-HBM3", 81_559, (9, 0), [8], 3),
    ("NVIDIA-A100-SXM4-40GB", 40_960, (8, 0), [4], 2),
    ("NVIDIA-A100-SXM4-80GB", 81_920, (8, 0), [8], 2),
    ("NVIDIA-L4", 23_034, (8, 9), [1, 2, 4, 8], 2),
    ("Tesla-T4", 15_360, (7, 5), [1, 4], 1),
]

# Selector, weight.
PODS = [
    ("H100:2", 4),
    ("H100:8", 1),
    ("80GB+:1", 4),
    ("A100|H100:4", 2),
    ("1", 4),
    ("2", 2),
    ("L4:1", 3),
    ("40GB+:2", 2),
    ("cc8.9+:1", 2),
    ("T4:1", 2),
    ("A100:8", 1),
    ("80GB+,cc9.0+:4", 1),
    ("H200:1", 1),
]


def synthetic_cluster(rng: random.Random, count: int) -> list[dict[str, Any]]:
    names = [f"gpu-{at:05d}" for at in range(count)]
    rng.shuffle(names)
    weights = [model[4] for model in MODELS]
    nodes = []
    for name in names:
        model, memory, (major, minor), sizes, _ = rng.choices(MODELS, weights)[0]
        total = rng.choice(sizes)
        free = rng.randint(0, total) if rng.random() < 1 / 3 else total
        nodes.append(
            {
                "name": name,
                "model": model,
                "memoryMib": memory,
                "computeCapability": {"major": major, "minor": minor},
                "gpusTotal": total,
                "gpusFree": free,
                "healthy": rng.random() >= 0.02,
            }
        )
    return nodes


def synthetic_pods(rng: random.Random, count: int) -> list[str]:
    selectors = [pod for pod, _ in PODS]
    return rng.choices(selectors, [weight for _, weight in PODS], k=count)


def moon_place(nodes: list[dict[str, Any]], pods: list[str]) -> list[str | None]:
    return json.loads(_native.place_gpus(json.dumps(nodes), pods))


def timed(place, nodes, pods) -> tuple[float, list[str | None]]:
    started = time.perf_counter()
    placed = place(nodes, pods)
    return time.perf_counter() - started, placed


def seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000, help="nodes (default 5000)")
    parser.add_argument("--pods", type=int, default=10000, help="pods (default 10000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    nodes = synthetic_cluster(rng, args.nodes)
    pods = synthetic_pods(rng, args.pods)
    gpus = sum(node["gpusTotal"] for node in nodes)
    free = sum(node["gpusFree"] for node in nodes)
    asked = sum(reference.parse_selector(pod).count for pod in pods)
    print(
        f"cluster: {len(nodes)} nodes, {gpus} GPUs ({free} free); "
        f"{len(pods)} pods asking {asked} GPUs; rounds: {args.rounds}, alternated"
    )

    moon_times, reference_times = [], []
    for _ in range(args.rounds):
        moon_time, moon_placed = timed(moon_place, nodes, pods)
        reference_time, reference_placed = timed(reference.place, nodes, pods)
        moon_times.append(moon_time)
        reference_times.append(reference_time)
        if moon_placed != reference_placed:
            differ = next(
                at
                for at, (ours, theirs) in enumerate(zip(moon_placed, reference_placed))
                if ours != theirs
            )
            print(
                f"placements differ: pod {differ} ({pods[differ]}): "
                f"moon {moon_placed[differ]}, reference {reference_placed[differ]}"
            )
            sys.exit(1)

    placed = sum(node is not None for node in moon_placed)
    print(f"placed: {placed} of {len(pods)} pods, identical placements")
    moon_median = statistics.median(moon_times)
    reference_median = statistics.median(reference_times)
    for label, median, times in [
        ("plain-Python reference", reference_median, reference_times),
        ("moon (moon-gpu)       ", moon_median, moon_times),
    ]:
        print(
            f"{label} median {seconds(median)}  (min {seconds(min(times))}), "
            f"{len(pods) / median:,.0f} pods/s"
        )
    print(f"reference / moon: {reference_median / moon_median:.0f}x (target >= 10x)")


if __name__ == "__main__":
    main()
