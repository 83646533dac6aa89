"""moon's stores from Python: one API over memory, local directories, SeaweedFS and HDFS.

A store is a flat space of objects (byte strings) named by relative ``/``-separated paths;
:func:`open` picks the backend from a URL (``memory://NAME``, ``file:///abs/dir``,
``seaweedfs://filer:8888/dir?master=host:9333``, ``hdfs://namenode:8020/dir``). Every call
releases the GIL while the store works, so other Python threads go on. Errors are the
:class:`~moon.errors.StorageError` classes of :mod:`moon.errors`, which are also Python's own
(a missing object is a ``FileNotFoundError``).

Example::

    import moon.storage

    store = moon.storage.open("memory://demo")
    store.put("runs/7/metrics.json", b'{"loss": 0.25}')
    assert store.get_range("runs/7/metrics.json", 2, 6) == b"loss"
    [meta] = store.list("runs")
    print(meta.path, meta.size, meta.modified)   # runs/7/metrics.json 14 2026-...

    # Many small objects at once, concurrently on the Rust side:
    store.put_many({f"shards/{i:05}": bytes(1024) for i in range(1000)})
    contents = store.get_many([f"shards/{i:05}" for i in range(1000)])

    # Real file objects: ranged reads with read-ahead, uploads that appear on close.
    with store.open("runs/7/model.bin", "wb") as f:
        f.write(weights)
    with moon.storage.open_file("memory://demo/runs/7/model.bin") as f:
        f.seek(-4, 2)
        tail = f.read()

pandas and pyarrow reach SeaweedFS and HDFS through :mod:`moon.storage.fsspec`, which fsspec
finds by itself (``pandas.read_parquet("seaweedfs://filer:8888/data/x.parquet")``).
"""

from __future__ import annotations

from ..errors import (
    InvalidRange,
    InvalidStorePath,
    InvalidStoreUrl,
    ObjectExists,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
    StorageNotSupported,
    StoragePermissionDenied,
    StorageQuotaExceeded,
    StorageUnavailable,
)
from ._files import DEFAULT_READ_BLOCK, DEFAULT_WRITE_BLOCK, StoreReader, StoreWriter
from ._store import Capabilities, Listing, ObjectMeta, Store, open, open_file
from ._tenant import TenantStorage

__all__ = [
    "DEFAULT_READ_BLOCK",
    "DEFAULT_WRITE_BLOCK",
    "Capabilities",
    "InvalidRange",
    "InvalidStorePath",
    "InvalidStoreUrl",
    "Listing",
    "ObjectExists",
    "ObjectMeta",
    "ObjectNotFound",
    "PreconditionFailed",
    "StorageError",
    "StorageNotSupported",
    "StoragePermissionDenied",
    "StorageQuotaExceeded",
    "StorageUnavailable",
    "Store",
    "StoreReader",
    "StoreWriter",
    "TenantStorage",
    "open",
    "open_file",
]
