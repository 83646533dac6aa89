"""Tenants' storage from Python and from ``moon fs --tenant``, on the real SeaweedFS and HDFS
of the storage test bed: applying a tenant makes its part of each system, and a tenant's
stores refuse everything outside that part with a typed error. Marked ``storage``: the storage
tier of scripts/test.sh runs them after starting the bed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import RunCli, bed_address

import moon
from moon.errors import NotFound, PermissionDenied

pytestmark = pytest.mark.storage

REFUSED = 5
STORAGE = {"seaweedfs": {}, "hdfs": {}}


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The bed's servers as the platform's, for clients made afterwards (and the CLI)."""
    filer = bed_address("MOON_TEST_SEAWEEDFS_FILER")
    master = bed_address("MOON_TEST_SEAWEEDFS_MASTER")
    namenode = bed_address("MOON_TEST_HDFS_URL")
    env = {
        "MOON_SEAWEEDFS": f"seaweedfs://{filer}?master={master}",
        "MOON_HDFS": f"hdfs://{namenode}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def client(moon_home: Path, platform: dict[str, str]) -> Iterator[moon.Client]:
    client = moon.Client(home=moon_home)
    # Fixed names: every tenant's collection takes volumes of the bed's budget, so runs
    # reuse theirs (applying is idempotent).
    for name in ("py-alpha", "py-beta"):
        assert client.create_tenant(name, storage=STORAGE) == "created"
    yield client


def without_query(url: str) -> str:
    return url.split("?", 1)[0]


def test_applying_again_changes_nothing(client: moon.Client) -> None:
    assert client.create_tenant("py-alpha", storage=STORAGE) == "unchanged"
    storage = client.tenant("py-alpha").spec.storage
    assert storage is not None and set(storage) == {"seaweedfs", "hdfs"}, storage


def test_a_tenants_stores_are_its_own(client: moon.Client) -> None:
    alpha = client.storage("py-alpha")
    beta = client.storage("py-beta")
    assert [urlsplit(u).scheme for u in alpha.urls] == ["seaweedfs", "hdfs"]
    assert all("/tenants/py-alpha" in u for u in alpha.urls), alpha.urls

    for store in (alpha.seaweedfs(), alpha.hdfs()):
        store.put("runs/1/metrics.json", b'{"loss": 0.5}')
        assert store.get("runs/1/metrics.json") == b'{"loss": 0.5}'
    # A directory below its own opens, and holds what was written above.
    runs = alpha.open(without_query(alpha.urls[0]) + "/runs")
    assert [m.path for m in runs.list()] == ["1/metrics.json"]

    # Beta's part, a sibling with a common prefix, and stores that are not the platform's
    # are refused, naming the tenant.
    filer = bed_address("MOON_TEST_SEAWEEDFS_FILER")
    for url in [
        *beta.urls,
        f"seaweedfs://{filer}/tenants/py-alpha2",
        f"seaweedfs://{filer}/tenants",
        "file:///tmp",
    ]:
        with pytest.raises(PermissionDenied, match="py-alpha"):
            alpha.open(url)

    for store in (alpha.seaweedfs(), alpha.hdfs()):
        store.delete("runs/1/metrics.json")


def test_what_a_tenant_lacks_is_not_found(client: moon.Client) -> None:
    client.create_tenant("py-plain")
    plain = client.storage("py-plain")
    assert plain.urls == []
    with pytest.raises(NotFound, match="seaweedfs"):
        plain.seaweedfs()
    with pytest.raises(NotFound):
        client.storage("py-nobody")


def test_moon_fs_as_a_tenant(
    client: moon.Client, run_cli: RunCli, moon_home: Path, tmp_path: Path
) -> None:
    alpha = without_query(client.storage("py-alpha").urls[0])
    beta = without_query(client.storage("py-beta").urls[0])
    local = tmp_path / "features.csv"
    local.write_text("x,y\n1,2\n")

    def fs(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("fs", "--tenant", "py-alpha", *args, home=moon_home, timeout=120)

    copied = fs("cp", str(local), f"{alpha}/cli/features.csv")
    assert copied.returncode == 0, copied.stderr
    listed = fs("ls", f"{alpha}/cli/")
    assert listed.returncode == 0, listed.stderr
    assert "features.csv" in listed.stdout

    for refused in (fs("ls", f"{beta}/"), fs("cp", str(local), f"{beta}/stolen.csv")):
        assert refused.returncode == REFUSED, refused.stdout + refused.stderr
        assert "py-alpha" in refused.stderr
    assert client.storage("py-beta").seaweedfs().list("stolen.csv") == []

    removed = fs("rm", f"{alpha}/cli/features.csv")
    assert removed.returncode == 0, removed.stderr
