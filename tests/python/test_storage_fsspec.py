"""moon.storage.fsspec on moon's memory store (``moon-memory://``), and how fsspec finds the
registered schemes. pandas and pyarrow read and write through it as through any fsspec
filesystem; the same on SeaweedFS and HDFS is in test_storage_bed.py."""

from __future__ import annotations

import uuid

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import moon.storage
from moon.storage.fsspec import (
    GlusterFileSystem,
    HdfsFileSystem,
    MoonMemoryFileSystem,
    SeaweedFileSystem,
)


@pytest.fixture
def fs() -> MoonMemoryFileSystem:
    return MoonMemoryFileSystem(skip_instance_cache=True)


@pytest.fixture
def base() -> str:
    """A fresh memory store's name: paths are NAME/key."""
    return f"fs-{uuid.uuid4().hex}"


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"step": range(rows), "loss": [1.0 / (i + 1) for i in range(rows)], "tag": ["a"] * rows}
    )


def test_the_registered_schemes_are_moons() -> None:
    # Found through moon-ml's entry points, without importing moon.storage.fsspec first.
    assert fsspec.get_filesystem_class("seaweedfs") is SeaweedFileSystem
    assert fsspec.get_filesystem_class("hdfs") is HdfsFileSystem
    assert fsspec.get_filesystem_class("gluster") is GlusterFileSystem
    # file and memory stay fsspec's own.
    assert fsspec.get_filesystem_class("file").__module__.startswith("fsspec.")
    assert fsspec.get_filesystem_class("memory").__module__.startswith("fsspec.")


def test_urls_split_into_server_and_key() -> None:
    fs, path = fsspec.core.url_to_fs("seaweedfs://127.0.0.1:9/d/x.parquet?master=127.0.0.1:8")
    assert isinstance(fs, SeaweedFileSystem)
    assert path == "127.0.0.1:9/d/x.parquet"
    assert fs._store_url("127.0.0.1:9") == "seaweedfs://127.0.0.1:9/?master=127.0.0.1%3A8"
    _, path = fsspec.core.url_to_fs("hdfs://namenode:8020/warehouse/t/")
    assert path == "namenode:8020/warehouse/t"
    with pytest.raises(ValueError, match="HOST/VOLUME"):
        GlusterFileSystem().info("gluster://host")


def test_files_and_directories(fs: MoonMemoryFileSystem, base: str) -> None:
    fs.pipe(f"{base}/d/a.txt", b"alpha")
    fs.pipe(f"{base}/d/sub/b.txt", b"beta!")
    fs.pipe(f"{base}/top.txt", b"t")
    assert fs.cat(f"{base}/d/a.txt") == b"alpha"
    assert fs.cat_file(f"{base}/d/a.txt", start=1, end=3) == b"lp"
    assert fs.cat_file(f"{base}/d/a.txt", start=-2) == b"ha"
    assert fs.ls(f"moon-memory://{base}/d", detail=False) == [f"{base}/d/a.txt", f"{base}/d/sub"]
    info = fs.info(f"{base}/d/a.txt")
    assert (info["type"], info["size"]) == ("file", 5)
    assert "mtime" in info
    assert fs.info(f"{base}/d")["type"] == "directory"
    assert fs.isdir(f"{base}/d/sub") and fs.isfile(f"{base}/d/sub/b.txt")
    assert not fs.exists(f"{base}/nope")
    assert fs.find(f"{base}/d") == [f"{base}/d/a.txt", f"{base}/d/sub/b.txt"]
    assert sorted(fs.find(base, withdirs=True)) == [
        f"{base}/d",
        f"{base}/d/a.txt",
        f"{base}/d/sub",
        f"{base}/d/sub/b.txt",
        f"{base}/top.txt",
    ]
    assert fs.du(f"{base}/d") == 10
    assert fs.cat([f"{base}/d/a.txt", f"{base}/top.txt"]) == {
        f"{base}/d/a.txt": b"alpha",
        f"{base}/top.txt": b"t",
    }
    with pytest.raises(FileNotFoundError):
        fs.info(f"{base}/nope")
    with pytest.raises(FileNotFoundError):
        fs.cat(f"{base}/nope")


def test_copies_moves_and_removals(fs: MoonMemoryFileSystem, base: str) -> None:
    fs.pipe(f"{base}/a", b"1")
    fs.cp(f"{base}/a", f"{base}/b")
    fs.mv(f"{base}/b", f"{base}/c")
    assert fs.cat(f"{base}/c") == b"1" and not fs.exists(f"{base}/b")
    fs.pipe({f"{base}/dir/x": b"x", f"{base}/dir/y/z": b"z"})
    fs.rm(f"{base}/dir", recursive=True)
    assert fs.find(base) == [f"{base}/a", f"{base}/c"]
    fs.rm(f"{base}/a")
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{base}/a")
    fs.makedirs(f"{base}/empty", exist_ok=True)  # nothing to do on a store
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{base}/c", b"2", mode="create")


def test_files_open_through_fsspec(fs: MoonMemoryFileSystem, base: str) -> None:
    with fs.open(f"{base}/f.bin", "wb") as f:
        f.write(b"0123456789" * 1000)
    with fs.open(f"{base}/f.bin", "rb") as f:
        f.seek(9995)
        assert f.read() == b"56789"
    with fs.open(f"{base}/t.txt", "w") as text:
        text.write("héllo\nworld\n")
    with fs.open(f"{base}/t.txt", "r") as text:
        assert text.read().splitlines() == ["héllo", "world"]
    with pytest.raises(ValueError, match="written whole"):
        fs.open(f"{base}/f.bin", "ab")


def test_pandas_reads_and_writes_parquet(fs: MoonMemoryFileSystem, base: str) -> None:
    df = frame(1000)
    df.to_parquet(f"{base}/tables/t.parquet", filesystem=fs)
    assert fs.info(f"{base}/tables/t.parquet")["size"] > 0
    back = pd.read_parquet(f"{base}/tables/t.parquet", filesystem=fs)
    pd.testing.assert_frame_equal(back, df)
    # Columns read through ranged reads of the footer and one column chunk.
    assert (
        pd.read_parquet(f"{base}/tables/t.parquet", filesystem=fs, columns=["loss"])[
            "loss"
        ].tolist()
        == df["loss"].tolist()
    )


def test_pyarrow_datasets_span_a_directory(fs: MoonMemoryFileSystem, base: str) -> None:
    for part in range(3):
        table = pa.table({"part": [part] * 10, "value": list(range(part * 10, part * 10 + 10))})
        with fs.open(f"{base}/events/part-{part}.parquet", "wb") as f:
            pq.write_table(table, f)
    dataset = ds.dataset(f"{base}/events", filesystem=fs, format="parquet")
    assert sorted(dataset.files) == [f"{base}/events/part-{i}.parquet" for i in range(3)]
    table = dataset.to_table()
    assert sorted(table.column("value").to_pylist()) == list(range(30))
    assert dataset.to_table(filter=ds.field("part") == 2).num_rows == 10


def test_the_memory_filesystem_shares_moons_memory_store(
    fs: MoonMemoryFileSystem, base: str
) -> None:
    fs.pipe(f"{base}/x", b"shared")
    assert moon.storage.open(f"memory://{base}").get("x") == b"shared"
