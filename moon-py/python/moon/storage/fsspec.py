"""fsspec filesystems on moon's stores, so that pandas, pyarrow, dask and friends read and
write SeaweedFS and HDFS through moon.

moon-ml registers them with fsspec's entry points (``fsspec.specs``), so fsspec finds them by
URL without any import; ``import moon`` itself never imports fsspec:

=============  ==========================  ====================================================
scheme         class                       path form (fsspec strips the scheme)
=============  ==========================  ====================================================
``seaweedfs``  :class:`SeaweedFileSystem`  ``filer:8888/dir/x`` (``?master=``/``collection=``
                                           go to the constructor, or stay in the URL)
``hdfs``       :class:`HdfsFileSystem`     ``namenode:8020/dir/x``; replaces fsspec's own
                                           ``hdfs``, which needs libhdfs and a JVM
``gluster``    :class:`GlusterFileSystem`  ``host/volume/dir/x``
=============  ==========================  ====================================================

``file`` and ``memory`` stay fsspec's own: every library in a process shares those names, and
moon's stores of them behave differently (moon's memory store is per URL name). For tests,
:class:`MoonMemoryFileSystem` (``moon-memory://NAME/x``) is moon's memory store under a name
of its own, not registered.

Example::

    import pandas as pd

    df = pd.DataFrame({"x": [1, 2, 3]})
    df.to_parquet("seaweedfs://127.0.0.1:8888/tables/t.parquet")
    back = pd.read_parquet("seaweedfs://127.0.0.1:8888/tables/t.parquet")

    import pyarrow.dataset as ds
    from moon.storage.fsspec import HdfsFileSystem

    fs = HdfsFileSystem()
    table = ds.dataset("127.0.0.1:8020/warehouse/events", filesystem=fs).to_table()

Objects stores have no directories: a directory here is a prefix that holds objects.
``mkdir`` and ``makedirs`` do nothing, and a directory disappears with its last object (on
HDFS and SeaweedFS, the directories a delete leaves empty are removed up to the server's root).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from fsspec import AbstractFileSystem

from ._meta import ObjectMeta
from ._store import Store
from ._store import open as open_store

__all__ = [
    "GlusterFileSystem",
    "HdfsFileSystem",
    "MoonFileSystem",
    "MoonMemoryFileSystem",
    "SeaweedFileSystem",
]

Info = dict[str, Any]


class MoonFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """The fsspec filesystem over moon's stores of one scheme (see the subclasses).

    Paths are ``AUTHORITY/key``: the server (``filer:8888``) then the object's path on it, as
    fsspec's own HDFS and S3 filesystems name them. One instance serves any number of servers
    and keeps one open store per server.
    """

    #: The moon-storage scheme of the stores (``seaweedfs``, ``hdfs``, ...).
    scheme: ClassVar[str] = ""
    #: Path segments after the server that belong to the store (a gluster volume).
    store_segments: ClassVar[int] = 0
    #: Query parameters the scheme's URLs take, passed as keyword arguments.
    query_keys: ClassVar[tuple[str, ...]] = ()
    root_marker = ""

    def __init__(self, **storage_options: Any) -> None:
        query = {key: storage_options.pop(key) for key in self.query_keys if key in storage_options}
        super().__init__(**storage_options)
        self._query = {key: str(value) for key, value in query.items() if value is not None}
        self._stores: dict[str, Store] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- paths

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        if isinstance(path, (list, tuple)):
            return [cls._strip_protocol(p) for p in path]  # type: ignore[return-value]
        text = str(path)
        for protocol in (cls.protocol,) if isinstance(cls.protocol, str) else cls.protocol:
            if text.startswith(f"{protocol}://"):
                text = text[len(protocol) + 3 :]
                break
        return text.split("?", 1)[0].rstrip("/")

    @classmethod
    def _get_kwargs_from_urls(cls, path: str) -> dict[str, str]:
        if "?" not in path:
            return {}
        query = path.split("?", 1)[1]
        return {key: value for key, value in parse_qsl(query) if key in cls.query_keys}

    def _split(self, path: str) -> tuple[Store, str | None, str]:
        """The store of ``path``, the key in it (``None`` for its root), and the store's part
        of the path."""
        stripped = self._strip_protocol(path)
        parts = stripped.split("/")
        depth = 1 + self.store_segments
        if len(parts) < depth or not all(parts[:depth]):
            raise ValueError(
                f"{self.scheme} paths start with "
                + ("HOST/VOLUME" if self.store_segments else "the server (HOST:PORT)")
                + f", got {path!r}"
            )
        base = "/".join(parts[:depth])
        key = "/".join(parts[depth:]) or None
        return self._store(base), key, base

    def _store_url(self, base: str) -> str:
        url = f"{self.scheme}://{base}/"
        if self._query:
            url += "?" + urlencode(self._query)
        return url

    def _store(self, base: str) -> Store:
        with self._lock:
            store = self._stores.get(base)
            if store is None:
                store = open_store(self._store_url(base))
                self._stores[base] = store
            return store

    # ----------------------------------------------------------------- metadata

    @staticmethod
    def _file_info(base: str, meta: ObjectMeta) -> Info:
        info: Info = {"name": f"{base}/{meta.path}", "size": meta.size, "type": "file"}
        if meta.etag is not None:
            info["etag"] = meta.etag
        if meta.modified is not None:
            info["mtime"] = meta.modified
        return info

    @staticmethod
    def _dir_info(name: str) -> Info:
        return {"name": name, "size": 0, "type": "directory"}

    def info(self, path: str, **kwargs: Any) -> Info:
        store, key, base = self._split(path)
        if key is None:
            return self._dir_info(base)
        try:
            return self._file_info(base, store.head(key))
        except FileNotFoundError:
            pass
        level = store.list_dir(key)
        if level.objects or level.prefixes:
            return self._dir_info(f"{base}/{key}")
        raise FileNotFoundError(f"no object or prefix at {self.unstrip_protocol(path)}")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Info] | list[str]:
        store, key, base = self._split(path)
        level = store.list_dir(key)
        entries = [self._file_info(base, meta) for meta in level.objects]
        entries += [self._dir_info(f"{base}/{prefix}") for prefix in level.prefixes]
        entries.sort(key=lambda entry: entry["name"])
        if not entries and key is not None:
            # A file lists as itself, as in fsspec's own filesystems; nothing there at all is
            # not found.
            entries = [self.info(path)]
        return entries if detail else [entry["name"] for entry in entries]

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> list[str] | dict[str, Info]:
        if maxdepth is not None:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        store, key, base = self._split(path)
        found: dict[str, Info] = {}
        for meta in store.list(key):
            info = self._file_info(base, meta)
            if withdirs:
                # Every prefix between the listed one and the object is a directory.
                parent = info["name"].rsplit("/", 1)[0]
                top = f"{base}/{key}" if key else base
                while len(parent) > len(top) and parent not in found:
                    found[parent] = self._dir_info(parent)
                    parent = parent.rsplit("/", 1)[0]
            found[info["name"]] = info
        if not found and key is not None:
            with contextlib.suppress(FileNotFoundError):
                found[f"{base}/{key}"] = self._file_info(base, store.head(key))
        names = sorted(found)
        if detail:
            return {name: found[name] for name in names}
        return names

    def modified(self, path: str) -> datetime:
        store, key, _ = self._split(path)
        if key is None:
            raise IsADirectoryError(path)
        modified = store.head(key).modified
        if modified is None:
            raise NotImplementedError(f"{store.backend} records no modification time")
        return modified

    def ukey(self, path: str) -> str:
        info = self.info(path)
        return str(info.get("etag") or (info["size"], info.get("mtime")))

    # ----------------------------------------------------------------- content

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        store, key, _ = self._split(path)
        if key is None:
            raise IsADirectoryError(path)
        if start is None and end is None:
            return store.get(key)
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = store.head(key).size
            start = size + start if start is not None and start < 0 else start
            end = size + end if end is not None and end < 0 else end
        start = max(start or 0, 0)
        if end is None:
            end = store.head(key).size
        if end <= start:
            return b""
        return store.get_range(key, start, end)

    def cat(
        self, path: str | list[str], recursive: bool = False, on_error: str = "raise", **kwargs: Any
    ) -> bytes | dict[str, bytes]:
        paths = self.expand_path(path, recursive=recursive)
        if on_error != "raise" or len(paths) <= 1 or not all(self._same_store(paths)):
            return super().cat(path, recursive=recursive, on_error=on_error, **kwargs)
        # Many objects of one store: one concurrent batch read.
        store, _, base = self._split(paths[0])
        keys = [self._split(p)[1] for p in paths]
        if any(key is None for key in keys):
            return super().cat(path, recursive=recursive, on_error=on_error, **kwargs)
        contents = store.get_many([key for key in keys if key is not None])
        return {f"{base}/{key}": data for key, data in zip(keys, contents)}

    def _same_store(self, paths: Iterable[str]) -> Iterable[bool]:
        first = None
        for path in paths:
            base = self._split(path)[2]
            first = first or base
            yield base == first

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        store, key, _ = self._split(path)
        if key is None:
            raise IsADirectoryError(path)
        if mode == "create" and store.exists(key):
            raise FileExistsError(path)
        store.put(key, value)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: Any = None,
        **kwargs: Any,
    ) -> Any:
        if not autocommit:
            raise NotImplementedError("moon's stores do not take part in fsspec transactions")
        store, key, _ = self._split(path)
        if key is None:
            raise IsADirectoryError(path)
        if mode in ("rb", "wb"):
            return store.open(key, mode, block_size=block_size)  # type: ignore[call-overload]
        raise ValueError(f"mode must be 'rb' or 'wb' (objects are written whole), got {mode!r}")

    # ----------------------------------------------------------------- changes

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        source, src, base1 = self._split(path1)
        target, dst, base2 = self._split(path2)
        if src is None or dst is None:
            raise IsADirectoryError(path1 if src is None else path2)
        if base1 == base2 and source.capabilities.copy:
            source.copy(src, dst)
            return
        with source.open(src) as reader, target.open(dst, "wb") as writer:
            while chunk := reader.read(8 * 1024 * 1024):
                writer.write(chunk)

    def mv(self, path1: str, path2: str, recursive: bool = False, **kwargs: Any) -> None:
        source, src, base1 = self._split(path1)
        _, dst, base2 = self._split(path2)
        if (
            not recursive
            and src is not None
            and dst is not None
            and base1 == base2
            and source.capabilities.rename
            and source.exists(src)
        ):
            source.rename(src, dst)
            return
        super().mv(path1, path2, recursive=recursive, **kwargs)

    def rm_file(self, path: str) -> None:
        store, key, _ = self._split(path)
        if key is None:
            raise IsADirectoryError(path)
        store.delete(key)

    def rm(
        self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None
    ) -> None:
        for each in [path] if isinstance(path, str) else path:
            store, key, base = self._split(each)
            if recursive and maxdepth is None:
                if key is None:
                    raise ValueError(f"refusing to remove every object of {self._store_url(base)}")
                below = [meta.path for meta in store.list(key)]
                store.delete_many(below)
                if store.exists(key):
                    store.delete(key)
                elif not below:
                    raise FileNotFoundError(self.unstrip_protocol(each))
            elif recursive:
                super().rm(each, recursive=True, maxdepth=maxdepth)
            else:
                self.rm_file(each)

    def _rm(self, path: str) -> None:
        # fsspec's generic rm also lists directories, which hold nothing of their own here.
        if self.isfile(path):
            self.rm_file(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do: directories exist while they hold objects."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to do: directories exist while they hold objects."""

    def rmdir(self, path: str) -> None:
        """Nothing to do: a directory goes with its last object."""


class SeaweedFileSystem(MoonFileSystem):
    """SeaweedFS filers: ``seaweedfs://filer:8888/dir/x``. ``master=`` (for
    :meth:`Store.put_blobs`) and ``collection=`` may be given as keyword arguments
    (``storage_options``) or in the URL's query."""

    protocol = ("seaweedfs",)
    scheme = "seaweedfs"
    query_keys = ("master", "collection")


class HdfsFileSystem(MoonFileSystem):
    """HDFS through its RPC protocol, in Rust: ``hdfs://namenode:8020/dir/x``. No JVM or
    libhdfs; Hadoop's settings come from ``$HADOOP_CONF_DIR``, the user from
    ``$HADOOP_USER_NAME`` or the login."""

    protocol = ("hdfs",)
    scheme = "hdfs"


class GlusterFileSystem(MoonFileSystem):
    """GlusterFS volumes: ``gluster://host/volume/dir/x`` (moon's gluster store must be
    available: until it is, opening one raises
    :class:`~moon.errors.StorageNotSupported`)."""

    protocol = ("gluster",)
    scheme = "gluster"
    store_segments = 1


class MoonMemoryFileSystem(MoonFileSystem):
    """moon's in-process memory store as ``moon-memory://NAME/x`` (the store
    ``memory://NAME``): for tests of code written against fsspec. Not registered."""

    protocol = ("moon-memory",)
    scheme = "memory"

    def _store_url(self, base: str) -> str:
        return f"memory://{base}"
