"""A tenant's stores: :meth:`moon.Client.storage`."""

from __future__ import annotations

from .. import _native
from ..errors import NotFound
from ._store import Store

__all__ = ["TenantStorage"]


class TenantStorage:
    """The stores of one tenant, confined to its part of each storage system: its SeaweedFS
    directory and collection, its HDFS home (reached as the tenant's own user) and its
    GlusterFS volume. Any URL outside them raises
    :class:`~moon.errors.PermissionDenied` before a server is contacted.

    Example::

        storage = client.storage("vision")
        print(storage.urls)       # ['seaweedfs://filer:8888/tenants/vision?collection=...', ...]
        data = storage.seaweedfs()
        data.put("datasets/train.csv", csv_bytes)
        runs = storage.open(storage.urls[0].split("?")[0] + "/runs")
    """

    def __init__(self, client: _native.Client, tenant: str) -> None:
        self._client = client
        self.tenant = tenant
        #: The URLs of the tenant's stores, one per storage system it has space on.
        self.urls: list[str] = client.tenant_storage_urls(tenant)

    def open(self, url: str) -> Store:
        """The store at ``url``, its directory or one below it in the tenant's part.

        Raises:
            PermissionDenied: ``url`` lies outside the tenant's part of every system.
            NotFound: The tenant has no space on the system ``url`` names.
        """
        return Store(self._client.tenant_store(self.tenant, url))

    def seaweedfs(self) -> Store:
        """The tenant's SeaweedFS directory, whose files go to its collection."""
        return self.open(self._url("seaweedfs"))

    def hdfs(self) -> Store:
        """The tenant's HDFS home, reached as the tenant's user."""
        return self.open(self._url("hdfs"))

    def gluster(self) -> Store:
        """The tenant's GlusterFS volume, mounted by moon when first used."""
        return self.open(self._url("gluster"))

    def _url(self, scheme: str) -> str:
        for url in self.urls:
            if url.startswith(f"{scheme}://"):
                return url
        raise NotFound(
            f"tenant {self.tenant!r} has no {scheme} storage (its spec's storage.{scheme})",
            kind="storage",
            name=f"{scheme} of tenant {self.tenant}",
        )

    def __repr__(self) -> str:
        return f"TenantStorage({self.tenant!r}, urls={self.urls!r})"
