"""SeaweedFS, small objects, from Python: moon's batch blob API against `weed benchmark`.

moon's side is what a notebook does: ``Store.put_blobs`` and ``Store.get_blobs`` (batches run
concurrently on the Rust side, the GIL released) writing N objects of SIZE bytes with C requests
in flight, then reading N picked at random, every byte checked. The peer is ``weed benchmark
-c=C -n=N -size=SIZE``, SeaweedFS's own Go client, on the same servers. Each side writes into a
collection of its own, whose volumes are made before its clock starts and which is deleted
after it; the sides alternate which goes first; the figures are medians over the rounds, and
the last line gives the ratios moon / weed (target: at least 0.5 both ways). Exits 1 when a
request failed or a byte differed.

Run by benchmarks/storage_seaweedfs_python.sh, which starts a SeaweedFS when the environment
names none (MOON_TEST_SEAWEEDFS_MASTER, MOON_TEST_SEAWEEDFS_FILER, MOON_TEST_SEAWEEDFS_WEED).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from urllib.parse import urlsplit

import moon.storage


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10_000, help="objects per Python call")
    parser.add_argument("--quick", action="store_true", help="5,000 objects, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.objects, args.rounds = 5_000, 1
    return args


def address(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        sys.exit(f"{variable} is not set: run benchmarks/storage_seaweedfs_python.sh")
    return urlsplit(value).netloc


def master_json(master: str, path: str) -> dict:
    with urllib.request.urlopen(f"http://{master}/{path}", timeout=60) as answer:
        return json.load(answer)


def prepare(master: str, collection: str) -> None:
    """Grows the collection's volumes now, outside the timed phases."""
    if "fid" not in master_json(master, f"dir/assign?collection={collection}"):
        sys.exit(f"the master assigned nothing in collection {collection}")


def delete_collection(master: str, collection: str) -> None:
    urllib.request.urlopen(
        f"http://{master}/col/delete?collection={collection}", timeout=60
    ).close()


def moon_side(
    filer: str, master: str, collection: str, args: argparse.Namespace
) -> tuple[float, float, int]:
    """(writes/s, reads/s, failures) of moon's Python batch API."""
    store = moon.storage.open(
        f"seaweedfs://{filer}/moon-bench?master={master}&collection={collection}"
    )
    contents = [os.urandom(args.size) for _ in range(args.objects)]
    fids: list[str] = []
    started = time.perf_counter()
    for at in range(0, args.objects, args.batch):
        fids += store.put_blobs(contents[at : at + args.batch], concurrency=args.concurrency)
    writes = args.objects / (time.perf_counter() - started)
    picks = [random.randrange(args.objects) for _ in range(args.objects)]
    wrong = 0
    started = time.perf_counter()
    for at in range(0, args.objects, args.batch):
        batch = picks[at : at + args.batch]
        got = store.get_blobs([fids[i] for i in batch], concurrency=args.concurrency)
        wrong += sum(1 for i, data in zip(batch, got) if data != contents[i])
    reads = args.objects / (time.perf_counter() - started)
    return writes, reads, wrong


def weed_side(
    weed: str, master: str, collection: str, args: argparse.Namespace
) -> tuple[float, float, int]:
    """(writes/s, reads/s, failures) as `weed benchmark` reports them."""
    leader = master_json(master, "cluster/status")["Leader"]  # host:port.grpcPort
    load = [f"-c={args.concurrency}", f"-n={args.objects}", f"-size={args.size}"]
    with tempfile.NamedTemporaryFile(prefix="moon-bench-fids-") as listing:
        where = [f"-master={leader}", f"-collection={collection}", f"-list={listing.name}"]
        done = subprocess.run(
            [weed, "benchmark", *where, *load],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
        )
    figures: list[tuple[float, int]] = []
    for phase in done.stdout.split("Benchmark ----------")[1:]:
        fields = dict(
            (line.split(":", 1)[0].strip(), line.split(":", 1)[1].split()[0])
            for line in phase.splitlines()
            if ":" in line and line.split(":", 1)[1].split()
        )
        figures.append((float(fields["Requests per second"]), int(fields["Failed requests"])))
    (writes, failed_writes), (reads, failed_reads) = figures[:2]
    return writes, reads, failed_writes + failed_reads


def spread(values: list[float]) -> str:
    median = statistics.median(values)
    return f"{median:,.0f}/s ({min(values):,.0f}-{max(values):,.0f})"


def main() -> int:
    args = parse_args()
    filer = address("MOON_TEST_SEAWEEDFS_FILER")
    master = address("MOON_TEST_SEAWEEDFS_MASTER")
    weed = os.environ.get("MOON_TEST_SEAWEEDFS_WEED") or sys.exit(
        "MOON_TEST_SEAWEEDFS_WEED is not set: run benchmarks/storage_seaweedfs_python.sh"
    )
    print(
        f"{args.objects:,} objects of {args.size} bytes, concurrency {args.concurrency}, "
        f"{args.rounds} rounds, moon batches of {args.batch:,}",
        flush=True,
    )
    results: dict[str, list[tuple[float, float]]] = {"moon": [], "weed": []}
    failures = 0
    for round_ in range(args.rounds):
        order = ["moon", "weed"] if round_ % 2 == 0 else ["weed", "moon"]
        for side in order:
            collection = f"bench-py-{side}-{round_}-{os.getpid()}"
            prepare(master, collection)
            try:
                if side == "moon":
                    writes, reads, failed = moon_side(filer, master, collection, args)
                else:
                    writes, reads, failed = weed_side(weed, master, collection, args)
            finally:
                delete_collection(master, collection)
            failures += failed
            results[side].append((writes, reads))
            print(
                f"round {round_ + 1} {side:<4} writes {writes:,.0f}/s reads {reads:,.0f}/s"
                f" failed {failed}",
                flush=True,
            )
    for side, figures in results.items():
        print(
            f"{side:<4} writes {spread([w for w, _ in figures])}"
            f"  reads {spread([r for _, r in figures])}"
        )
    ratio = [
        statistics.median(m[i] for m in results["moon"])
        / statistics.median(w[i] for w in results["weed"])
        for i in (0, 1)
    ]
    print(f"moon (Python) / weed benchmark: writes {ratio[0]:.2f}x, reads {ratio[1]:.2f}x")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
