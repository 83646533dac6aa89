"""File objects on stores: a seekable reader doing ranged reads behind a read-ahead buffer, and
a writer that streams its bytes to the store and makes the object appear only on close."""

from __future__ import annotations

import io
from types import TracebackType
from typing import TYPE_CHECKING

from ._meta import ObjectMeta

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .._native import Store as NativeStore
    from .._native import Upload

__all__ = ["DEFAULT_READ_BLOCK", "DEFAULT_WRITE_BLOCK", "StoreReader", "StoreWriter"]

#: Bytes a reader fetches at once for small reads (larger reads go to the store whole).
DEFAULT_READ_BLOCK = 1024 * 1024
#: Bytes a writer gathers before it sends them on to the store.
DEFAULT_WRITE_BLOCK = 8 * 1024 * 1024


class _RangeReader(io.RawIOBase):
    """The unbuffered side of a reader: each ``readinto`` is one ranged read."""

    def __init__(self, native: NativeStore, path: str, size: int) -> None:
        super().__init__()
        self._native = native
        self._path = path
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._position + len(view), self._size)
        if end <= self._position:
            return 0
        data = self._native.get_range(self._path, self._position, end)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def tell(self) -> int:
        return self._position


class StoreReader(io.BufferedReader):
    """A readable, seekable binary file on one object (``store.open(path, "rb")``).

    Reads go to the store as ranged reads; small ones are served from a read-ahead buffer of
    ``block_size`` bytes, so that ``readline`` and Parquet's footer reads do not each cost a
    request. The size is the object's when it was opened; if the object is replaced while it
    is read, later reads see the new content.

    Attributes:
        name: The object's path in its store.
        meta: The object's metadata when it was opened.
    """

    def __init__(self, native: NativeStore, path: str, meta: ObjectMeta, block_size: int) -> None:
        super().__init__(_RangeReader(native, path, meta.size), buffer_size=block_size)
        self.meta = meta

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.meta.path

    @property
    def mode(self) -> str:
        return "rb"

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        return self.meta.size

    def __repr__(self) -> str:
        return f"<StoreReader {self.meta.path!r} size={self.meta.size}>"


class _UploadWriter(io.RawIOBase):
    """The unbuffered side of a writer: each ``write`` sends a chunk to the upload."""

    def __init__(self, upload: Upload) -> None:
        super().__init__()
        self._upload = upload
        self.discarded = False
        self.meta: ObjectMeta | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        size = memoryview(data).nbytes
        if not self.discarded:
            self._upload.write(bytes(data))
        return size

    def discard(self) -> None:
        if not self.discarded:
            self.discarded = True
            self._upload.abort()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self.discarded:
                self.meta = ObjectMeta._from_native(self._upload.finish())
        finally:
            super().close()


class StoreWriter(io.BufferedWriter):
    """A writable binary file that uploads to one object (``store.open(path, "wb")``).

    Bytes are gathered into blocks of ``block_size`` and streamed to the store as they come,
    so memory stays bounded whatever the size. The object appears, whole, only when the file
    is closed; until then an object already at the path is left as it was. Leaving a ``with``
    block by an exception, calling :meth:`discard`, or dropping the file without closing it
    abandons the upload: nothing appears.

    Attributes:
        name: The object's path in its store.
        meta: The new object's metadata, once closed (``None`` before, or if discarded).
    """

    def __init__(self, upload: Upload, path: str, block_size: int) -> None:
        self._writer = _UploadWriter(upload)
        self._path = path
        super().__init__(self._writer, buffer_size=block_size)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._path

    @property
    def mode(self) -> str:
        return "wb"

    @property
    def meta(self) -> ObjectMeta | None:
        return self._writer.meta

    def discard(self) -> None:
        """Abandons the upload: nothing appears at the path, and the file is closed."""
        self._writer.discard()
        self.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()

    def __del__(self) -> None:
        # Never closed: the writer was abandoned (an exception, a forgotten close), so its
        # partial content must not appear.
        if not self.closed:
            self.discard()

    def __repr__(self) -> str:
        return f"<StoreWriter {self._path!r}>"
