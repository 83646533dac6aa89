"""A job's volumes from Python, on the local backend and the real SeaweedFS of the storage
test bed (docs/storage.md#volumes). Marked ``storage``: the storage tier of scripts/test.sh
runs it after starting the bed; without the bed's variables it fails, naming
scripts/storage/up.sh. The mounts need root, as FUSE does.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import bed_address, bed_value

import moon
import moon.storage

pytestmark = pytest.mark.storage

# Each tenant's collection takes volumes of the bed's small budget: the name is fixed.
TENANT = "bed-pyvolumes"

SCRIPT = """set -eu
tr a-z A-Z < "$MOON_VOLUME_INPUT_PATH/input.txt" > "$MOON_VOLUME_OUTPUT_PATH/output.txt"
if echo written > "$MOON_VOLUME_INPUT_PATH/refused.txt" 2>/dev/null; then exit 3; fi
printf '%s\\n' "$MOON_VOLUME_INPUT" > "$MOON_VOLUME_OUTPUT_PATH/url.txt"
"""


def test_a_job_reads_and_writes_through_seaweedfs_volumes(
    moon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filer = bed_address("MOON_TEST_SEAWEEDFS_FILER")
    master = bed_address("MOON_TEST_SEAWEEDFS_MASTER")
    monkeypatch.setenv("MOON_SEAWEEDFS", f"seaweedfs://{filer}?master={master}")
    # What the agent mounts SeaweedFS volumes with; it reads them when it starts.
    monkeypatch.setenv("MOON_WEED_BIN", bed_value("MOON_TEST_SEAWEEDFS_WEED"))
    monkeypatch.setenv(
        "MOON_SEAWEEDFS_FILER_GRPC_PORT", bed_value("MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT")
    )
    client = moon.Client(home=moon_home)
    client.apply_tenant({"name": TENANT, "storage": {"seaweedfs": {}}})
    run = f"py-{uuid.uuid4().hex[:12]}"
    query = f"collection=moon-{TENANT}&master={master}"
    store = moon.storage.open(f"seaweedfs://{filer}/tenants/{TENANT}/{run}?{query}")
    store.put("in/input.txt", b"from python\n")

    job = moon.Job(
        name=run,
        tenant=TENANT,
        roles=[moon.Role("main", command=["sh", "-c", SCRIPT])],
        volumes=[
            moon.Volume("input", "/input", store="seaweedfs", path=f"{run}/in", read_only=True),
            {"name": "output", "store": "seaweedfs", "path": f"{run}/out", "mountPath": "/out"},
        ],
    )
    status = client.submit(job).wait(timeout=120)
    assert status.phase == "Succeeded", status

    assert store.get("out/output.txt") == b"FROM PYTHON\n"
    assert not store.exists("in/refused.txt")
    assert store.get("out/url.txt").decode().strip() == (
        f"seaweedfs://{filer}/tenants/{TENANT}/{run}/in?{query}"
    )
    mounted = [
        line.split(" ")[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split(" ")[4].startswith(str(moon_home.resolve()))
    ]
    assert mounted == []
    store.delete_many([meta.path for meta in store.list()])
