"""Many submitters at once on one MOON_HOME: nothing lost, nothing run twice.

Runs benchmarks/local_throughput.py in its short mode (80 jobs from 8 processes x 5
threads, then 400 from 8 x 25), which fails when a job does not succeed, when one is
missing from the database, or when a replica ran other than once. Its rates are
printed, not asserted: speed is measured by the benchmark's full run.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

BENCHMARK = REPO_ROOT / "benchmarks" / "local_throughput.py"


def test_many_submitters_lose_nothing_and_run_nothing_twice() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stderr or done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("large / small:"), done.stdout
