"""``moon fs ls|cat|cp|rm|du``: the release binary on local directories (file:// URLs and
plain paths), and, marked ``storage``, between local files, SeaweedFS and HDFS on the storage
test bed. What a pipeline relies on: what is printed (and its ``-o json``), that copies arrive
whole, and the exit codes of ``moon --help``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import RunCli, bed_address

# Exit codes, as documented by `moon --help` (moon-cli/src/exit.rs).
OK = 0
INVALID_INPUT = 2
NOT_FOUND = 3
REFUSED = 5

CLI_TIMEOUT = 120.0


class Fs:
    """``moon fs`` run from a working directory, with a MOON_HOME it never needs."""

    def __init__(self, run_cli: RunCli, home: Path, workdir: Path) -> None:
        self._run_cli = run_cli
        self.home = home
        self.workdir = workdir

    def __call__(self, *args: Any) -> subprocess.CompletedProcess[str]:
        return self._run_cli("fs", *args, home=self.home, timeout=CLI_TIMEOUT, cwd=self.workdir)

    def expect(self, code: int, *args: Any) -> subprocess.CompletedProcess[str]:
        result = self(*args)
        assert result.returncode == code, (
            f"moon fs {args}\nexit {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result

    def json(self, *args: Any) -> Any:
        return json.loads(self.expect(OK, *args, "-o", "json").stdout)


@pytest.fixture
def fs(run_cli: RunCli, tmp_path: Path) -> Fs:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return Fs(run_cli, home, work)


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "sub/b.bin": bytes(range(256)) * 40,
        "sub/deeper/c.txt": b"",
        "z y.txt": "naïve\n".encode(),
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------- local


def test_ls_lists_one_level_or_all(fs: Fs, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_tree(data)
    url = data.as_uri()
    assert fs.expect(OK, "ls", url).stdout == "a.txt\nsub/\nz y.txt\n"
    assert fs.expect(OK, "ls", "-r", url).stdout == "a.txt\nsub/b.bin\nsub/deeper/c.txt\nz y.txt\n"
    long = fs.expect(OK, "ls", "-l", f"{url}/sub").stdout.splitlines()
    assert long[0].split() == ["SIZE", "MODIFIED", "NAME"]
    assert long[1].split()[0] == "10240" and long[1].split()[2] == "b.bin"
    assert long[1].split()[1].endswith("Z")
    assert long[2].split() == ["-", "-", "deeper/"]
    entries = fs.json("ls", f"{url}/sub")
    assert entries[0]["name"] == "b.bin" and entries[0]["kind"] == "object"
    assert entries[0]["size"] == 10240 and entries[0]["modified"].endswith("Z")
    assert entries[1] == {"name": "deeper/", "kind": "prefix"}
    # A plain path is a local one; an object lists as itself.
    assert fs.expect(OK, "ls", str(data / "a.txt")).stdout == "a.txt\n"


def test_cat_prints_objects_in_order(fs: Fs, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "data")
    url = (tmp_path / "data").as_uri()
    result = fs.expect(OK, "cat", f"{url}/a.txt", f"{url}/z%20y.txt")
    assert result.stdout == (files["a.txt"] + files["z y.txt"]).decode()


def test_cp_copies_objects_and_prefixes(fs: Fs, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    src = (tmp_path / "src").as_uri()
    dst = tmp_path / "dst"
    out = fs.expect(OK, "cp", f"{src}/sub/b.bin", f"{dst.as_uri()}/copy.bin")
    assert out.stdout == "copied 1 object(s), 10240 bytes\n"
    assert (dst / "copy.bin").read_bytes() == files["sub/b.bin"]
    # Into a "directory": a destination ending in / takes the source's name.
    fs.expect(OK, "cp", f"{src}/a.txt", f"{dst.as_uri()}/into/")
    assert (dst / "into" / "a.txt").read_bytes() == files["a.txt"]
    copied = fs.json("cp", "-r", src, (tmp_path / "mirror").as_uri())
    assert copied == {"objects": 4, "bytes": sum(len(v) for v in files.values())}
    assert tree(tmp_path / "mirror") == files
    # Plain paths, relative to the working directory.
    fs.expect(OK, "cp", "-r", str(tmp_path / "src" / "sub"), "local-copy")
    assert tree(fs.workdir / "local-copy") == {
        "b.bin": files["sub/b.bin"],
        "deeper/c.txt": b"",
    }


def test_cp_of_a_prefix_needs_r(fs: Fs, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    result = fs.expect(INVALID_INPUT, "cp", (tmp_path / "src").as_uri(), "out")
    assert "copy it with -r" in result.stderr


def test_rm_and_du(fs: Fs, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "data")
    url = (tmp_path / "data").as_uri()
    usage = fs.json("du", url, f"{url}/sub")
    assert usage == [
        {"url": url, "objects": 4, "bytes": sum(len(v) for v in files.values())},
        {"url": f"{url}/sub", "objects": 2, "bytes": 10240},
    ]
    table = fs.expect(OK, "du", f"{url}/sub").stdout.splitlines()
    assert table[0].split() == ["OBJECTS", "BYTES", "SIZE", "URL"]
    assert table[1].split() == ["2", "10240", "10.0", "KiB", f"{url}/sub"]
    assert fs.expect(OK, "rm", f"{url}/a.txt").stdout == f"removed 1 object(s) at {url}/a.txt\n"
    assert not (tmp_path / "data" / "a.txt").exists()
    assert fs.json("rm", "-r", f"{url}/sub") == [{"url": f"{url}/sub", "objects": 2}]
    assert tree(tmp_path / "data") == {"z y.txt": files["z y.txt"]}
    # A store's root is never removed whole.
    refused = fs.expect(INVALID_INPUT, "rm", "-r", "memory://scratch")
    assert "refusing" in refused.stderr


def test_missing_things_exit_3(fs: Fs, tmp_path: Path) -> None:
    url = (tmp_path / "empty").as_uri()
    (tmp_path / "empty").mkdir()
    for args in (
        ("cat", f"{url}/nope"),
        ("ls", f"{url}/nope"),
        ("du", f"{url}/nope"),
        ("rm", f"{url}/nope"),
        ("rm", "-r", f"{url}/nope"),
        ("cp", f"{url}/nope", "out"),
        ("ls", (tmp_path / "not-there").as_uri()),
    ):
        result = fs.expect(NOT_FOUND, *args)
        assert result.stderr.startswith("error: no object at '"), result.stderr
    # Reading creates nothing.
    assert not (tmp_path / "not-there").exists()


def test_bad_urls_exit_2_without_credentials(fs: Fs) -> None:
    result = fs.expect(INVALID_INPUT, "ls", "s3://alice:s3cret@bucket/x")
    assert "unknown scheme 's3'" in result.stderr
    assert "s3cret" not in result.stderr and "***@bucket" in result.stderr
    result = fs.expect(INVALID_INPUT, "cat", "hdfs://namenode:8020/")
    assert "names a store" in result.stderr
    result = fs.expect(INVALID_INPUT, "cat", "memory://scratch/a/../b")
    assert "'..'" in result.stderr


def test_a_refused_write_exits_5(fs: Fs, tmp_path: Path) -> None:
    (tmp_path / "src" / "file").mkdir(parents=True)
    (tmp_path / "src" / "file" / "x").write_bytes(b"x")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "file").write_bytes(b"a file, not a directory")
    result = fs.expect(REFUSED, "cp", "-r", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert "precondition failed for 'dst/file/x'" in result.stderr
    assert (tmp_path / "dst" / "file").read_bytes() == b"a file, not a directory"


def test_an_unreachable_server_exits_6(fs: Fs) -> None:
    # Port 1 on loopback: nothing listens there.
    result = fs.expect(6, "ls", "seaweedfs://127.0.0.1:1/x")
    assert "seaweedfs unavailable" in result.stderr


def test_memory_stores_live_for_one_command(fs: Fs, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    # Copied in and counted in one process; the next one starts empty.
    copied = fs.json("cp", "-r", (tmp_path / "src").as_uri(), "memory://scratch/x")
    assert copied["objects"] == 4
    assert fs.expect(OK, "ls", "memory://scratch").stdout == ""


# --------------------------------------------------------------------------- the bed


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.storage
def test_copies_between_local_seaweedfs_and_hdfs(fs: Fs, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    big = tmp_path / "src" / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))
    files["big.bin"] = big.read_bytes()
    name = f"moon-cli-test-{uuid.uuid4().hex[:12]}"
    seaweed = f"seaweedfs://{bed_address('MOON_TEST_SEAWEEDFS_FILER')}/{name}"
    hdfs = f"hdfs://{bed_address('MOON_TEST_HDFS_URL')}/{name}"
    try:
        fs.expect(OK, "cp", "-r", (tmp_path / "src").as_uri(), seaweed)
        assert fs.expect(OK, "ls", seaweed).stdout == "a.txt\nbig.bin\nsub/\nz y.txt\n"
        fs.expect(OK, "cp", "-r", seaweed, hdfs)
        assert fs.json("du", hdfs) == [
            {"url": hdfs, "objects": 5, "bytes": sum(len(v) for v in files.values())}
        ]
        fs.expect(OK, "cp", "-r", hdfs, (tmp_path / "back").as_uri())
        assert tree(tmp_path / "back") == files
        assert sha256(tmp_path / "back" / "big.bin") == sha256(big)
        assert fs.expect(OK, "cat", f"{hdfs}/a.txt").stdout == "alpha\n"
        entries = fs.json("ls", "-r", seaweed)
        assert [e["name"] for e in entries] == sorted(files)
        assert all(e["etag"] for e in entries)
        fs.expect(NOT_FOUND, "cat", f"{seaweed}/nope")
        fs.expect(NOT_FOUND, "rm", f"{hdfs}/nope")
    finally:
        for url in (seaweed, hdfs):
            fs("rm", "-r", url)
    fs.expect(NOT_FOUND, "ls", seaweed)
    fs.expect(NOT_FOUND, "du", hdfs)
