"""Requests to a service balanced in this process: ``svc.client()``.

The client keeps moon's balancer (power of two choices over latency, ejection of failing
replicas, retries only where safe) in this process and sends each request straight to a
replica, with no proxy in the path; it follows the service as it scales. Requests run with
the GIL released, so threads sending at once are served at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _native

__all__ = ["Response", "ServiceClient"]


@dataclass(frozen=True)
class Response:
    """A replica's answer, read whole."""

    status: int
    """The HTTP status code."""
    content: bytes
    """The body."""
    headers: dict[str, str] = field(default_factory=dict)
    """The headers, names in lowercase (a repeated header keeps its last value)."""

    @property
    def ok(self) -> bool:
        """Whether the status is below 400."""
        return self.status < 400

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.content.decode()

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)


class ServiceClient:
    """Requests to one service, balanced over its ready replicas by this process.

    It bypasses moon's proxy, so it does not wake a service scaled to zero: a request waits
    up to 10 s for a ready replica, then raises :class:`moon.ServiceUnavailable`.
    """

    def __init__(self, native: _native.ServiceClient, key: str) -> None:
        self._native = native
        self._key = key

    def __repr__(self) -> str:
        return f"ServiceClient({self._key})"

    def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Sends ``method path`` to a replica and returns its answer, whatever its status.

        Args:
            method: ``GET``, ``POST``, ...
            path: The path and query (``/predict?verbose=1``).
            data: The body, as bytes or text (UTF-8).
            json: A body to send as JSON instead (sets ``Content-Type``).
            headers: Headers to send.

        Raises:
            ServiceUnavailable: No replica answered (none ready, or every one tried failed).
            InvalidRequest: The method, path or a header is not valid HTTP.
        """
        sent = dict(headers or {})
        body: bytes | None
        if json is not None:
            body = _json_bytes(json)
            sent.setdefault("content-type", "application/json")
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = data
        status, answer_headers, content = self._native.request(
            method.upper(), path, list(sent.items()), body
        )
        return Response(status, content, {name.lower(): value for name, value in answer_headers})

    def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """``GET path``; see :meth:`request`."""
        return self.request("GET", path, headers=headers)

    def post(
        self,
        path: str,
        *,
        data: bytes | str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """``POST path`` with a body; see :meth:`request`. A POST is never retried."""
        return self.request("POST", path, data=data, json=json, headers=headers)

    def replicas(self) -> list[dict[str, Any]]:
        """The replicas as this client's balancer sees them: ``id``, ``addr``, ``state``
        (``ready``, ``notReady``, ``ejected``, ``draining``), ``inFlight``, ``requests``,
        ``failures``, ``ejections``, ``latencyEwmaMs``."""
        found: list[dict[str, Any]] = json.loads(self._native.replicas())
        return found


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document).encode()
