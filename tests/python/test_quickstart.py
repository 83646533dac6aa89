"""The README's first command runs examples/quickstart.py with a SeaweedFS; here it runs with
the storage test bed's: the tenant gets its directory there, the workers read their training
data from it and write their models to it, and a service serves the model from there. Marked
``storage``: the storage tier of scripts/test.sh runs it after starting the bed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import xgboost as xgb
from conftest import bed_address

import moon

pytestmark = pytest.mark.storage

REPO = Path(__file__).resolve().parents[2]


def test_the_quickstart_trains_from_and_into_the_tenants_seaweedfs(
    moon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filer = bed_address("MOON_TEST_SEAWEEDFS_FILER")
    master = bed_address("MOON_TEST_SEAWEEDFS_MASTER")
    monkeypatch.setenv("MOON_SEAWEEDFS", f"seaweedfs://{filer}?master={master}")
    command = [sys.executable, str(REPO / "examples" / "quickstart.py"), "--home", str(moon_home)]
    run = subprocess.run(
        [*command, "--name", "xgb-test", "--rounds", "3", "--timeout", "300"],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    for rank in (0, 1):
        assert f"rank={rank} rows=2000 from datasets/quickstart/part-{rank}.csv" in output
    assert "models (2) in models/xgb-test/" in output
    # Then the model is served behind moon's proxy, by both replicas, and the service deleted.
    served = re.search(
        r"256 predictions from http://127\.0\.0\.1:\d+/predict: accuracy ([0-9.]+), "
        r"answered by 2 replicas",
        output,
    )
    assert served, output
    assert float(served.group(1)) > 0.6, output  # three rounds: well above a coin's 0.5
    assert "service quickstart/xgb-test-serve deleted" in output

    store = moon.Client(home=moon_home).storage("quickstart").seaweedfs()
    models = sorted(meta.path for meta in store.list("models/xgb-test"))
    assert models == ["models/xgb-test/model-0.json", "models/xgb-test/model-1.json"]
    booster = xgb.Booster()
    booster.load_model(bytearray(store.get(models[0])))
    assert booster.num_boosted_rounds() == 3
    # Both workers trained on all the data through XGBoost's collective: one model.
    assert store.get(models[0]) == store.get(models[1])
