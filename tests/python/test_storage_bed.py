"""moon.storage, its fsspec filesystems, pandas and pyarrow on the real SeaweedFS and HDFS of
the storage test bed (docs/storage-test-bed.md). Marked ``storage``: the storage tier of
scripts/test.sh runs them after starting the bed; without the bed's variables they fail,
naming scripts/storage/up.sh.

Each test works below a directory of its own, removed afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import bed_address

import moon.storage
from moon.errors import (
    InvalidStoreUrl,
    ObjectNotFound,
    StorageError,
    StorageNotSupported,
    StorageQuotaExceeded,
)
from moon.storage.fsspec import HdfsFileSystem, SeaweedFileSystem

pytestmark = pytest.mark.storage


@pytest.fixture(scope="module")
def filer() -> str:
    return bed_address("MOON_TEST_SEAWEEDFS_FILER")


@pytest.fixture(scope="module")
def master() -> str:
    return bed_address("MOON_TEST_SEAWEEDFS_MASTER")


@pytest.fixture(scope="module")
def namenode() -> str:
    return bed_address("MOON_TEST_HDFS_URL")


def remove_tree(store_url: str) -> None:
    store = moon.storage.open(store_url)
    store.delete_many([meta.path for meta in store.list()])


@pytest.fixture
def test_dir() -> str:
    return f"moon-py-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["seaweedfs", "hdfs"])
def backend_url(
    request: pytest.FixtureRequest, filer: str, master: str, namenode: str, test_dir: str
) -> Iterator[str]:
    """The URL of a fresh directory on SeaweedFS (with its master, for blobs) or HDFS."""
    if request.param == "seaweedfs":
        url = f"seaweedfs://{filer}/{test_dir}?master={master}"
    else:
        url = f"hdfs://{namenode}/{test_dir}"
    yield url
    remove_tree(url)


@pytest.fixture
def store(backend_url: str) -> moon.storage.Store:
    return moon.storage.open(backend_url)


def fsspec_url(backend_url: str, key: str) -> str:
    """``scheme://server/dir/key`` for the directory of ``backend_url``."""
    return f"{backend_url.split('?')[0]}/{key}"


def pandas_options(backend_url: str) -> dict[str, str] | None:
    """What pandas needs to open the URL through fsspec: pandas tries pyarrow's own
    filesystem for a URL first when given no storage_options, and pyarrow claims ``hdfs://``
    (through libhdfs, which needs a Hadoop install); any storage_options, even none, send it
    to fsspec, and so to moon."""
    return {} if backend_url.startswith("hdfs://") else None


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"step": range(rows), "loss": [1.0 / (i + 1) for i in range(rows)], "tag": ["x"] * rows}
    )


# --------------------------------------------------------------------------- the store API


def test_objects_and_listings(store: moon.storage.Store) -> None:
    meta = store.put("runs/7/metrics.json", b'{"loss": 0.25}')
    assert meta.size == 14 and meta.etag
    assert store.get("runs/7/metrics.json") == b'{"loss": 0.25}'
    assert store.get_range("runs/7/metrics.json", 2, 6) == b"loss"
    head = store.head("runs/7/metrics.json")
    assert head.size == 14 and head.modified is not None
    store.put("runs/readme", b"r")
    assert [m.path for m in store.list("runs")] == ["runs/7/metrics.json", "runs/readme"]
    level = store.list_dir("runs")
    assert [m.path for m in level.objects] == ["runs/readme"]
    assert level.prefixes == ["runs/7"]
    store.delete("runs/readme")
    with pytest.raises(ObjectNotFound) as missing:
        store.get("runs/readme")
    assert isinstance(missing.value, FileNotFoundError)
    assert missing.value.path == "runs/readme"


def test_batches_of_small_objects(store: moon.storage.Store) -> None:
    contents = {f"shards/{i:04}": os.urandom(1024) for i in range(500)}
    metas = store.put_many(contents)
    assert [m.size for m in metas] == [1024] * 500
    assert store.get_many(list(contents)) == list(contents.values())
    store.delete_many(list(contents)[:250])
    assert len(store.list("shards")) == 250


def test_file_objects_stream_both_ways(store: moon.storage.Store) -> None:
    chunk = os.urandom(64 * 1024)
    with store.open("big.bin", "wb", block_size=256 * 1024) as f:
        for _ in range(160):  # 10 MiB in 160 writes
            f.write(chunk)
        assert not store.exists("big.bin")
    assert store.head("big.bin").size == 160 * len(chunk)
    with store.open("big.bin", block_size=128 * 1024) as f:
        f.seek(5 * len(chunk) + 10)
        assert f.read(100) == chunk[10:110]
        f.seek(-len(chunk), 2)
        assert f.read() == chunk
    with pytest.raises(RuntimeError), store.open("big.bin", "wb") as f:
        f.write(b"replacement that must not land")
        raise RuntimeError("the writer failed")
    assert store.head("big.bin").size == 160 * len(chunk)


def test_blobs_on_seaweedfs(filer: str, master: str, test_dir: str) -> None:
    store = moon.storage.open(f"seaweedfs://{filer}/{test_dir}?master={master}")
    assert store.has_blobs
    contents = [os.urandom(1000 + i) for i in range(200)]
    fids = store.put_blobs(contents)
    assert len(set(fids)) == 200 and all("," in fid for fid in fids)
    assert store.get_blobs(list(reversed(fids))) == list(reversed(contents))
    store.delete_blobs(fids[:10])
    with pytest.raises(ObjectNotFound):
        store.get_blobs(fids[:1])
    store.delete_blobs(fids[10:])
    without_master = moon.storage.open(f"seaweedfs://{filer}/{test_dir}")
    with pytest.raises(StorageNotSupported, match="master"):
        without_master.put_blobs([b"x"])


def test_hdfs_quota_is_quota_exceeded(namenode: str) -> None:
    # The bed's /moon-quota/space holds 1 MiB: any block is over it.
    store = moon.storage.open(f"hdfs://{namenode}/moon-quota/space")
    name = f"moon-py-{uuid.uuid4().hex[:8]}"
    with pytest.raises(StorageQuotaExceeded) as refused:
        store.put(name, os.urandom(2 * 1024 * 1024))
    assert isinstance(refused.value, OSError) and isinstance(refused.value, StorageError)
    assert not store.exists(name)


def test_credentials_in_urls_stay_out_of_errors(namenode: str, filer: str) -> None:
    with pytest.raises(InvalidStoreUrl) as refused:
        moon.storage.open(f"hdfs://alice:s3cret@{namenode}/x")
    assert "s3cret" not in str(refused.value) and "s3cret" not in refused.value.url
    assert "user information" in refused.value.reason
    with pytest.raises(StorageError) as failed:
        moon.storage.open(f"seaweedfs://alice:s3cret@{filer}/x").get("nothing-here")
    assert "s3cret" not in str(failed.value)


# --------------------------------------------------------------------------- fsspec, pandas


def test_the_registered_filesystems_serve_the_urls(backend_url: str) -> None:
    fs, path = fsspec.core.url_to_fs(fsspec_url(backend_url, "x.txt"))
    assert isinstance(fs, (SeaweedFileSystem, HdfsFileSystem))
    fs.pipe(path, b"through fsspec")
    assert moon.storage.open(backend_url).get("x.txt") == b"through fsspec"
    assert fs.cat(path) == b"through fsspec"
    assert fs.ls(path.rsplit("/", 1)[0], detail=False) == [path]


def test_pandas_round_trips_parquet_by_url(backend_url: str) -> None:
    url = fsspec_url(backend_url, "tables/metrics.parquet")
    options = pandas_options(backend_url)
    df = frame(5000)
    df.to_parquet(url, storage_options=options)
    assert moon.storage.open(backend_url).head("tables/metrics.parquet").size > 0
    pd.testing.assert_frame_equal(pd.read_parquet(url, storage_options=options), df)
    only_loss = pd.read_parquet(url, columns=["loss"], storage_options=options)
    assert only_loss["loss"].tolist() == df["loss"].tolist()


def test_pandas_reads_what_moon_wrote(backend_url: str) -> None:
    df = frame(100)
    with moon.storage.open(backend_url).open("moon-written.parquet", "wb") as f:
        df.to_parquet(f)
    back = pd.read_parquet(
        fsspec_url(backend_url, "moon-written.parquet"), storage_options=pandas_options(backend_url)
    )
    pd.testing.assert_frame_equal(back, df)


def test_pyarrow_datasets_span_a_directory(backend_url: str) -> None:
    store = moon.storage.open(backend_url)
    for part in range(4):
        # The part is in the path (hive partitioning), not in the file.
        table = pa.table({"value": list(range(part * 25, part * 25 + 25))})
        with store.open(f"events/part={part}/data.parquet", "wb") as f:
            pq.write_table(table, f)
    fs, root = fsspec.core.url_to_fs(fsspec_url(backend_url, "events"))
    dataset = ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive")
    assert len(dataset.files) == 4
    table = dataset.to_table()
    assert sorted(table.column("value").to_pylist()) == list(range(100))
    assert dataset.to_table(filter=ds.field("part") == 3).num_rows == 25


def test_missing_files_are_file_not_found_for_pandas(backend_url: str) -> None:
    with pytest.raises(FileNotFoundError):
        pd.read_parquet(
            fsspec_url(backend_url, "no-such.parquet"), storage_options=pandas_options(backend_url)
        )
