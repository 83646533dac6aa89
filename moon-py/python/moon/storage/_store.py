"""The :class:`Store` handle and the functions that open stores and files by URL."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, Union, overload

from .. import _native
from ._files import DEFAULT_READ_BLOCK, DEFAULT_WRITE_BLOCK, StoreReader, StoreWriter
from ._meta import Capabilities, Listing, ObjectMeta

__all__ = ["Store", "open", "open_file"]

#: Operations a batch call runs at once unless told otherwise.
DEFAULT_CONCURRENCY = 16

BytesLike = Union[bytes, bytearray, memoryview]


def _bytes(data: BytesLike) -> bytes | bytearray:
    # The native side takes bytes and bytearray without copying; anything else with the
    # buffer protocol (memoryview, numpy arrays) is copied once here.
    return data if isinstance(data, (bytes, bytearray)) else bytes(data)


class Store:
    """One store, opened from a URL by :func:`open`. Safe to share between threads; after
    ``os.fork()`` a child reopens its connections on first use.

    Paths are relative and ``/``-separated (``"runs/7/model.bin"``); ``..``, a leading ``/``,
    empty segments and control characters raise :class:`~moon.errors.InvalidStorePath`.

    Example::

        store = moon.storage.open("file:///tmp/moon-demo")
        meta = store.put("a/b.txt", b"hello")
        assert store.get("a/b.txt") == b"hello"
        assert [m.path for m in store.list("a")] == ["a/b.txt"]
        store.delete("a/b.txt")
    """

    def __init__(self, native: _native.Store) -> None:
        self._native = native

    @property
    def url(self) -> str:
        """A URL that opens this store again; it never holds credentials."""
        return self._native.url

    @property
    def backend(self) -> str:
        """``"memory"``, ``"local"``, ``"seaweedfs"`` or ``"hdfs"``."""
        return self._native.backend

    @property
    def capabilities(self) -> Capabilities:
        """Which of :meth:`copy`, :meth:`rename` and :meth:`append` this backend offers."""
        return Capabilities(*self._native.capabilities)

    def put(self, path: str, data: BytesLike) -> ObjectMeta:
        """Writes ``data`` as the whole content of ``path``, replacing any object there.

        The write is atomic: readers see the old object or the new one, never a part.
        """
        return ObjectMeta._from_native(self._native.put(path, _bytes(data)))

    def get(self, path: str) -> bytes:
        """The whole content of ``path``; :class:`~moon.errors.ObjectNotFound` if missing."""
        return self._native.get(path)

    def get_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of ``path``.

        The end is clamped to the size; ``start`` past the size raises
        :class:`~moon.errors.InvalidRange`.

        Example::

            store.put("x", b"0123456789")
            assert store.get_range("x", 2, 5) == b"234"
            assert store.get_range("x", 8, 100) == b"89"
        """
        return self._native.get_range(path, start, end)

    def head(self, path: str) -> ObjectMeta:
        """The metadata of ``path``; :class:`~moon.errors.ObjectNotFound` if missing."""
        return ObjectMeta._from_native(self._native.head(path))

    def exists(self, path: str) -> bool:
        """Whether an object is at ``path`` (a prefix of objects is not one)."""
        try:
            self._native.head(path)
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str | None = None) -> builtins.list[ObjectMeta]:
        """Every object below ``prefix`` (the whole store for ``None``), recursively, in path
        order. Prefixes match whole segments: ``"a"`` lists ``a/x``, never ``ab/x``."""
        return [ObjectMeta._from_native(meta) for meta in self._native.list(prefix)]

    def list_dir(self, prefix: str | None = None) -> Listing:
        """One level below ``prefix``: its objects, and the deeper prefixes that hold objects.

        Example::

            store.put_many({"runs/1/a": b"", "runs/2/b": b"", "runs/readme": b""})
            level = store.list_dir("runs")
            assert [m.path for m in level.objects] == ["runs/readme"]
            assert level.prefixes == ["runs/1", "runs/2"]
        """
        objects, prefixes = self._native.list_dir(prefix)
        return Listing([ObjectMeta._from_native(meta) for meta in objects], prefixes)

    def delete(self, path: str) -> None:
        """Removes ``path``; :class:`~moon.errors.ObjectNotFound` if there is nothing there."""
        self._native.delete(path)

    def copy(self, src: str, dst: str) -> ObjectMeta:
        """Copies ``src`` to ``dst`` inside this store, replacing any object at ``dst``;
        :class:`~moon.errors.StorageNotSupported` where the backend has no copy."""
        return ObjectMeta._from_native(self._native.copy(src, dst))

    def rename(self, src: str, dst: str) -> ObjectMeta:
        """Moves ``src`` to ``dst``, replacing any object at ``dst``;
        :class:`~moon.errors.StorageNotSupported` where the backend has no rename."""
        return ObjectMeta._from_native(self._native.rename(src, dst))

    def append(self, path: str, data: BytesLike) -> ObjectMeta:
        """Adds ``data`` at the end of ``path``, creating it when missing (memory and HDFS);
        :class:`~moon.errors.StorageNotSupported` elsewhere."""
        return ObjectMeta._from_native(self._native.append(path, _bytes(data)))

    # ----------------------------------------------------------------- batches

    def put_many(
        self,
        items: Mapping[str, BytesLike] | Iterable[tuple[str, BytesLike]],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> builtins.list[ObjectMeta]:
        """Writes many objects, ``concurrency`` at a time, in one call that releases the GIL.

        The fast way to store many small objects: the writes run concurrently on the Rust
        side. Returns their metadata in the order given. Stops at the first error and raises
        it; objects already written stay.

        Example::

            metas = store.put_many({f"shards/{i:05}": payload(i) for i in range(10_000)})
        """
        pairs = items.items() if isinstance(items, Mapping) else items
        native = self._native.put_many([(path, _bytes(data)) for path, data in pairs], concurrency)
        return [ObjectMeta._from_native(meta) for meta in native]

    def get_many(
        self, paths: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> builtins.list[bytes]:
        """The contents of many objects, in the order given, read ``concurrency`` at a time.
        Raises the first error (:class:`~moon.errors.ObjectNotFound` for a missing one)."""
        return self._native.get_many(list(paths), concurrency)

    def head_many(
        self, paths: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> builtins.list[ObjectMeta]:
        """The metadata of many objects, in the order given."""
        native = self._native.head_many(list(paths), concurrency)
        return [ObjectMeta._from_native(meta) for meta in native]

    def delete_many(self, paths: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        """Removes many objects, ``concurrency`` at a time. Raises the first error."""
        self._native.delete_many(list(paths), concurrency)

    # ----------------------------------------------------------------- SeaweedFS blobs

    @property
    def has_blobs(self) -> bool:
        """Whether the blob methods work: a ``seaweedfs://`` URL with ``?master=host:port``."""
        return self._native.has_blobs

    def put_blobs(
        self, contents: Sequence[BytesLike], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> builtins.list[str]:
        """Stores each content as a SeaweedFS blob (no filer entry: the volume servers'
        API for masses of small files) in the store's collection; returns their file ids
        (``"3,01637037d6"``) in order. :class:`~moon.errors.StorageNotSupported` elsewhere.
        """
        return self._native.put_blobs([_bytes(data) for data in contents], concurrency)

    def get_blobs(
        self, fids: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> builtins.list[bytes]:
        """The contents of SeaweedFS blobs by file id, in order."""
        return self._native.get_blobs(list(fids), concurrency)

    def delete_blobs(self, fids: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        """Deletes SeaweedFS blobs by file id."""
        self._native.delete_blobs(list(fids), concurrency)

    # ----------------------------------------------------------------- files

    @overload
    def open(
        self, path: str, mode: Literal["rb"] = "rb", *, block_size: int | None = None
    ) -> StoreReader: ...
    @overload
    def open(
        self, path: str, mode: Literal["wb"], *, block_size: int | None = None
    ) -> StoreWriter: ...
    def open(
        self, path: str, mode: str = "rb", *, block_size: int | None = None
    ) -> StoreReader | StoreWriter:
        """A binary file on ``path``: ``"rb"`` reads (seekable, ranged reads behind a
        read-ahead buffer of ``block_size`` bytes); ``"wb"`` writes, and the object appears
        only when the file is closed (an exception in a ``with`` block leaves nothing).

        Example::

            with store.open("data/x.bin", "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            with store.open("data/x.bin") as f:
                f.seek(100)
                header = f.read(16)
        """
        if mode == "rb":
            meta = self.head(path)
            return StoreReader(self._native, path, meta, block_size or DEFAULT_READ_BLOCK)
        if mode == "wb":
            upload = self._native.upload(path)
            return StoreWriter(upload, path, block_size or DEFAULT_WRITE_BLOCK)
        raise ValueError(f"mode must be 'rb' or 'wb', got {mode!r}")

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def open(url: str) -> Store:
    """Opens the store ``url`` names.

    ===========  ==============================================================
    scheme       form
    ===========  ==============================================================
    memory       ``memory://`` (fresh) or ``memory://NAME`` (shared in the process)
    file         ``file:///abs/dir`` (created when missing)
    seaweedfs    ``seaweedfs://filer[:8888]/dir[?master=host:9333&collection=NAME]``
    hdfs         ``hdfs://namenode[:8020]/dir`` (Hadoop's settings from $HADOOP_CONF_DIR)
    ===========  ==============================================================

    A malformed URL raises :class:`~moon.errors.InvalidStoreUrl`, saying what is wrong and
    never showing user information (``user:secret@``).

    Example::

        store = moon.storage.open("seaweedfs://127.0.0.1:8888/datasets?master=127.0.0.1:9333")
    """
    return Store(_native.Store(url))


@overload
def open_file(
    url: str, mode: Literal["rb"] = "rb", *, block_size: int | None = None
) -> StoreReader: ...
@overload
def open_file(url: str, mode: Literal["wb"], *, block_size: int | None = None) -> StoreWriter: ...
def open_file(
    url: str, mode: str = "rb", *, block_size: int | None = None
) -> StoreReader | StoreWriter:
    """A binary file on the object ``url`` names (see :meth:`Store.open`).

    The store is rooted at the object's directory: ``hdfs://nn:8020/data/x.parquet`` is
    ``x.parquet`` in ``hdfs://nn:8020/data``; ``memory://NAME/a/b`` is ``a/b`` in
    ``memory://NAME``.

    Example::

        with moon.storage.open_file("file:///tmp/demo/out.bin", "wb") as f:
            f.write(b"payload")
        with moon.storage.open_file("file:///tmp/demo/out.bin") as f:
            assert f.read() == b"payload"
    """
    store_url, path = _native.split_object_url(url)
    return open(store_url).open(path, mode, block_size=block_size)  # type: ignore[call-overload]
