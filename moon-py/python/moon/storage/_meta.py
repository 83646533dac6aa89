"""The values stores answer with: object metadata, one level of a listing, capabilities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # What the native module returns for an object: (path, size, etag, modified seconds).
    NativeMeta = tuple[str, int, str | None, float | None]


@dataclass(frozen=True)
class ObjectMeta:
    """What a store knows about one object.

    Attributes:
        path: Its path in the store (``"runs/7/model.bin"``).
        size: Its exact size in bytes.
        etag: A tag that changes whenever the content is replaced, where the backend has one
            (the content's MD5 on SeaweedFS; modification time and size on HDFS).
        modified: When it was last written (UTC), where the backend records it; ``put`` on
            SeaweedFS returns none.
    """

    path: str
    size: int
    etag: str | None = None
    modified: datetime | None = None

    @classmethod
    def _from_native(cls, native: NativeMeta) -> ObjectMeta:
        path, size, etag, seconds = native
        modified = None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)
        return cls(path, size, etag, modified)


@dataclass(frozen=True)
class Listing:
    """One level below a prefix (:meth:`Store.list_dir`).

    Attributes:
        objects: The objects directly below it, in path order.
        prefixes: The deeper prefixes that hold objects (``"runs/7"``), sorted.
    """

    objects: list[ObjectMeta]
    prefixes: list[str]


@dataclass(frozen=True)
class Capabilities:
    """The optional operations a store offers; the others raise
    :class:`~moon.errors.StorageNotSupported`."""

    copy: bool
    rename: bool
    append: bool
