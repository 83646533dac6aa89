"""moon.storage on the stores every machine has: memory:// and file://.

What a user relies on: round trips through put/get/ranges, listings one level or all, the
batch calls, file objects that read with seeks and write whole-or-nothing, and errors that
are both moon's and Python's own classes, with messages that say what is wrong and never a
credential. The same calls on SeaweedFS and HDFS are in test_storage_bed.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import moon
import moon.storage
from moon.errors import (
    InvalidRange,
    InvalidStorePath,
    InvalidStoreUrl,
    MoonError,
    NotFound,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
    StorageNotSupported,
    StoragePermissionDenied,
)


def memory_url() -> str:
    return f"memory://test-{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> moon.storage.Store:
    if request.param == "memory":
        return moon.storage.open(memory_url())
    return moon.storage.open((tmp_path / "store").as_uri())


# --------------------------------------------------------------------------- objects


def test_objects_round_trip_with_their_metadata(store: moon.storage.Store) -> None:
    written = store.put("runs/7/metrics.json", b'{"loss": 0.25}')
    assert written.path == "runs/7/metrics.json"
    assert written.size == 14
    assert store.get("runs/7/metrics.json") == b'{"loss": 0.25}'
    head = store.head("runs/7/metrics.json")
    assert head.size == 14
    assert head.path == "runs/7/metrics.json"
    assert head.modified is not None
    assert abs(head.modified - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert store.exists("runs/7/metrics.json")
    assert not store.exists("runs/7")
    # bytearray and memoryview are accepted as bytes are.
    store.put("b", bytearray(b"xy"))
    store.put("m", memoryview(b"abc")[1:])
    assert store.get_many(["b", "m"]) == [b"xy", b"bc"]


def test_ranges_clamp_at_the_end_and_fail_past_it(store: moon.storage.Store) -> None:
    store.put("x", b"0123456789")
    assert store.get_range("x", 2, 5) == b"234"
    assert store.get_range("x", 8, 100) == b"89"
    assert store.get_range("x", 10, 20) == b""
    with pytest.raises(InvalidRange) as refused:
        store.get_range("x", 11, 20)
    assert (refused.value.start, refused.value.end, refused.value.size) == (11, 20, 10)
    assert isinstance(refused.value, ValueError)


def test_listings_go_deep_or_one_level(store: moon.storage.Store) -> None:
    store.put_many(
        {"runs/1/a": b"1", "runs/2/b": b"22", "runs/readme": b"333", "runsx/c": b"", "top": b""}
    )
    assert [m.path for m in store.list("runs")] == ["runs/1/a", "runs/2/b", "runs/readme"]
    assert [m.size for m in store.list("runs")] == [1, 2, 3]
    assert [m.path for m in store.list()] == [
        "runs/1/a",
        "runs/2/b",
        "runs/readme",
        "runsx/c",
        "top",
    ]
    level = store.list_dir("runs")
    assert [m.path for m in level.objects] == ["runs/readme"]
    assert level.prefixes == ["runs/1", "runs/2"]
    root = store.list_dir()
    assert [m.path for m in root.objects] == ["top"]
    assert root.prefixes == ["runs", "runsx"]
    assert store.list("nothing") == []


def test_delete_copy_and_rename_where_the_backend_offers_them(store: moon.storage.Store) -> None:
    store.put("a", b"content")
    capabilities = store.capabilities
    assert capabilities.copy and capabilities.rename
    assert store.copy("a", "b").size == 7
    assert store.rename("b", "c").path == "c"
    assert store.get("c") == b"content"
    assert not store.exists("b")
    store.delete("a")
    with pytest.raises(ObjectNotFound):
        store.delete("a")
    if store.backend == "local":
        assert not capabilities.append
        with pytest.raises(StorageNotSupported) as refused:
            store.append("c", b"!")
        assert isinstance(refused.value, NotImplementedError)
        assert refused.value.operation == "append"
    else:
        store.append("c", b"!")
        assert store.get("c") == b"content!"


def test_batches_keep_the_order_given(store: moon.storage.Store) -> None:
    contents = {f"shards/{i:04}": os.urandom(i % 50) for i in range(300)}
    metas = store.put_many(contents, concurrency=8)
    assert [m.path for m in metas] == list(contents)
    assert [m.size for m in metas] == [len(v) for v in contents.values()]
    wanted = list(reversed(contents))
    assert store.get_many(wanted) == [contents[p] for p in wanted]
    assert [m.size for m in store.head_many(wanted)] == [len(contents[p]) for p in wanted]
    store.delete_many(list(contents)[:100])
    assert len(store.list("shards")) == 200
    # Pairs work as well as a mapping.
    store.put_many([("pairs/x", b"1"), ("pairs/y", b"2")])
    assert store.get_many(["pairs/x", "pairs/y"]) == [b"1", b"2"]


def test_a_batch_stops_at_a_missing_object_and_names_it(store: moon.storage.Store) -> None:
    store.put("here", b"1")
    with pytest.raises(ObjectNotFound) as missing:
        store.get_many(["here", "gone"])
    assert missing.value.path == "gone"
    with pytest.raises(ValueError, match="concurrency"):
        store.get_many(["here"], concurrency=0)


def test_batches_release_the_gil(store: moon.storage.Store) -> None:
    # A Python thread keeps counting while a batch runs on the Rust side. Were
    # the GIL held through the batch, it could never count; on a busy machine
    # the thread may still go unscheduled for one short batch, so a few tries.
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    store.put_many({f"g/{i}": b"x" * 1000 for i in range(2000)})
    paths = [f"g/{i}" for i in range(2000)] * 3
    counter = threading.Thread(target=count)
    counter.start()
    counts = []
    try:
        while ticks == 0:
            time.sleep(0.001)
        for _ in range(10):
            before = ticks
            store.get_many(paths)
            counts.append(ticks - before)
            if counts[-1] > 1000:
                break
    finally:
        stop.set()
        counter.join()
    assert max(counts) > 1000, f"the counting thread ran only {counts} times during batches"


# --------------------------------------------------------------------------- files


def test_readers_seek_and_read_ranges(store: moon.storage.Store) -> None:
    content = bytes(range(256)) * 1000
    store.put("blob", content)
    with store.open("blob", block_size=4096) as f:
        assert isinstance(f, io.BufferedIOBase)
        assert f.readable() and f.seekable() and not f.writable()
        assert f.name == "blob" and f.size == len(content)
        assert f.read(10) == content[:10]
        f.seek(-5, io.SEEK_END)
        assert f.read() == content[-5:]
        assert f.read() == b""
        f.seek(100_000)
        assert f.tell() == 100_000
        assert f.read(300_000) == content[100_000:300_000]
        f.seek(3, io.SEEK_CUR)
        assert f.read(2) == content[300_003:300_005]
    assert f.closed


def test_readers_read_lines(store: moon.storage.Store) -> None:
    store.put("lines.txt", b"one\ntwo\nthree")
    with store.open("lines.txt") as f:
        assert f.readlines() == [b"one\n", b"two\n", b"three"]
    with io.TextIOWrapper(store.open("lines.txt"), encoding="utf-8") as text:
        assert text.read().split() == ["one", "two", "three"]


def test_writers_upload_on_close(store: moon.storage.Store) -> None:
    with store.open("out/data.bin", "wb", block_size=1024) as f:
        assert f.writable() and not f.readable()
        for i in range(100):
            f.write(bytes([i]) * 100)
        assert not store.exists("out/data.bin"), "visible before the file was closed"
    assert f.meta is not None and f.meta.size == 10_000
    assert store.get("out/data.bin") == b"".join(bytes([i]) * 100 for i in range(100))


def test_an_exception_in_a_writer_leaves_nothing_or_the_old_object(
    store: moon.storage.Store,
) -> None:
    with pytest.raises(RuntimeError, match="broke"), store.open("new", "wb", block_size=64) as f:
        f.write(b"x" * 1000)
        raise RuntimeError("broke")
    assert not store.exists("new")
    assert store.list() == []
    store.put("old", b"old content")
    with pytest.raises(RuntimeError), store.open("old", "wb") as f:
        f.write(b"partial")
        raise RuntimeError("broke")
    assert store.get("old") == b"old content"
    writer = store.open("discarded", "wb")
    writer.write(b"abc")
    writer.discard()
    assert writer.closed and not store.exists("discarded")


def test_a_writer_dropped_unclosed_leaves_nothing(store: moon.storage.Store) -> None:
    writer = store.open("dropped", "wb", block_size=16)
    writer.write(b"y" * 100)
    del writer
    assert not store.exists("dropped")


def test_open_file_takes_an_object_url(tmp_path: Path) -> None:
    url = (tmp_path / "dir with space" / "x.bin").as_uri()
    with moon.storage.open_file(url, "wb") as f:
        f.write(b"payload")
    assert (tmp_path / "dir with space" / "x.bin").read_bytes() == b"payload"
    with moon.storage.open_file(url) as f:
        assert f.read() == b"payload"
    name = memory_url()
    with moon.storage.open_file(f"{name}/a/b", "wb") as f:
        f.write(b"in memory")
    assert moon.storage.open(name).get("a/b") == b"in memory"
    with pytest.raises(ValueError, match="mode"):
        moon.storage.open_file(url, "r+b")  # type: ignore[call-overload]


# --------------------------------------------------------------------------- errors


def test_missing_objects_are_not_found_in_every_sense(store: moon.storage.Store) -> None:
    with pytest.raises(ObjectNotFound) as missing:
        store.get("no/such/object")
    error = missing.value
    assert isinstance(error, FileNotFoundError)
    assert isinstance(error, NotFound) and isinstance(error, StorageError)
    assert isinstance(error, MoonError) and isinstance(error, LookupError)
    assert error.path == "no/such/object"
    assert error.kind == "object"
    assert "no/such/object" in str(error)
    for call in (
        lambda: store.head("gone"),
        lambda: store.get_range("gone", 0, 1),
        lambda: store.delete("gone"),
        lambda: store.open("gone"),
    ):
        with pytest.raises(FileNotFoundError):
            call()


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/abs", "absolute"),
        ("a/../b", "'..'"),
        ("a//b", "empty"),
        ("", "empty"),
        ("a\nb", "control"),
    ],
)
def test_bad_paths_are_refused_before_the_store(
    store: moon.storage.Store, path: str, rule: str
) -> None:
    with pytest.raises(InvalidStorePath) as refused:
        store.put(path, b"x")
    assert isinstance(refused.value, ValueError)
    assert rule in refused.value.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("s3://bucket/x", "unknown scheme 's3'"),
        ("/data", "SCHEME://"),
        ("file://host/data", "file:///abs/dir"),
        ("seaweedfs://filer:99999/x", "port"),
        ("seaweedfs://filer/x?mastr=m", "unknown parameter 'mastr'"),
        ("hdfs://alice:s3cret@namenode/x", "user"),
        ("nope://alice:s3cret@host/x", "unknown scheme"),
    ],
)
def test_bad_urls_say_what_is_wrong_without_credentials(url: str, reason: str) -> None:
    with pytest.raises(InvalidStoreUrl) as refused:
        moon.storage.open(url)
    error = refused.value
    assert isinstance(error, ValueError) and isinstance(error, StorageError)
    assert reason in error.reason, error.reason
    assert "s3cret" not in str(error) and "s3cret" not in error.url
    assert "s3cret" not in repr(error)


def test_object_urls_must_name_an_object() -> None:
    with pytest.raises(InvalidStoreUrl, match="names a store"):
        moon.storage.open_file("hdfs://namenode:8020/")
    with pytest.raises(InvalidStoreUrl, match="s3") as refused:
        moon.storage.open_file("s3://alice:s3cret@bucket/x")
    assert "s3cret" not in str(refused.value)


def test_a_file_store_refuses_links_out_of_its_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    store = moon.storage.open(root.as_uri())
    with pytest.raises(StoragePermissionDenied) as refused:
        store.get("link/secret")
    assert isinstance(refused.value, PermissionError)


def test_a_file_cannot_also_be_a_directory(tmp_path: Path) -> None:
    store = moon.storage.open(tmp_path.as_uri())
    store.put("a", b"file")
    with pytest.raises(PreconditionFailed) as refused:
        store.put("a/b", b"below a file")
    assert refused.value.path == "a/b"
    assert store.get("a") == b"file"


def test_stores_survive_a_fork(tmp_path: Path) -> None:
    store = moon.storage.open(tmp_path.as_uri())
    store.put("before", b"1")
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads (the runtime's) is risky;
        # the child below is what shows it is handled.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: must reach the store with its own connections
        code = 0
        try:
            store.put("from-child", store.get("before") + b"2")
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("from-child") == b"12"


def test_importing_moon_does_not_import_fsspec() -> None:
    code = "import sys, moon, moon.storage; print('fsspec' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
