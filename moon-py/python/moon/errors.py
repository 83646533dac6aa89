"""The exceptions moon raises, all under :class:`MoonError`.

Each one also derives from the built-in exception a Python programmer would
reach for, so ``except ValueError`` catches an invalid spec and ``except
TimeoutError`` a wait that ran out of time. The native module raises these
very classes (it looks them up here), so this file is the one declaration of
the hierarchy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

__all__ = [
    "AgentError",
    "AlreadyExists",
    "ClusterError",
    "Conflict",
    "GpuError",
    "InvalidPolicy",
    "InvalidRange",
    "InvalidRequest",
    "InvalidSpec",
    "InvalidStorePath",
    "InvalidStoreUrl",
    "JobCancelled",
    "JobFailed",
    "MoonError",
    "NotFound",
    "NotSupported",
    "ObjectExists",
    "ObjectNotFound",
    "PermissionDenied",
    "PreconditionFailed",
    "QuotaExceeded",
    "ServiceUnavailable",
    "StorageError",
    "StorageNotSupported",
    "StoragePermissionDenied",
    "StorageQuotaExceeded",
    "StorageUnavailable",
    "Timeout",
]

# Every class takes the message first and its details as keywords with
# defaults: pickling rebuilds an exception from its message alone and then
# restores the details from its __dict__.


class MoonError(Exception):
    """Base class of every error moon raises."""


class ErrorDetails(TypedDict):
    """One broken rule of a spec, in the manner of pydantic's ``ErrorDetails``.

    Keys:
        loc: Where, as keys and indexes: ``("roles", 0, "replicas")``; empty
            for the spec as a whole.
        type: Which kind of rule: ``"required"``, ``"unknown_field"``,
            ``"type"``, ``"format"``, ``"range"``, ``"unique"``,
            ``"framework"``, ``"unsupported"``, ``"syntax"``, or the Kubernetes
            API server's cause (``"FieldValueInvalid"``) for an object it refused.
        msg: The rule and what was found, for people.
    """

    loc: tuple[str | int, ...]
    type: str
    msg: str


class InvalidSpec(MoonError, ValueError):
    """A job or tenant spec broke one or more rules.

    Attributes:
        errors: Every broken rule, as ``"path: message"`` (``"roles[0].replicas:
            must be at least 1, got 0"``), in the order moon checks them.
        details: The same rules as :class:`ErrorDetails`, for programs:
            ``{"loc": ("roles", 0, "replicas"), "type": "range", "msg": "must be
            at least 1, got 0"}``.
        kind: ``"job"``, ``"tenant"`` or ``"config"``.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[str] = (),
        details: Sequence[ErrorDetails] = (),
        kind: str = "",
    ) -> None:
        super().__init__(message)
        self.errors: list[str] = list(errors)
        self.details: list[ErrorDetails] = [
            ErrorDetails(loc=tuple(each["loc"]), type=each["type"], msg=each["msg"])
            for each in details
        ]
        self.kind = kind


class NotFound(MoonError, LookupError):
    """A tenant, job or replica does not exist.

    Attributes:
        kind: ``"tenant"``, ``"job"`` or ``"replica"``.
        name: Its name (``"vision/resnet"`` for a job).
    """

    def __init__(self, message: str, *, kind: str = "", name: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class AlreadyExists(MoonError):
    """A job with that name exists already in its tenant.

    Attributes:
        kind: ``"job"``.
        name: Its name (``"vision/resnet"``).
    """

    def __init__(self, message: str, *, kind: str = "", name: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class QuotaExceeded(MoonError):
    """A job can never fit its tenant's quota or the machine (on Kubernetes:
    the tenant's ``jobs`` quota is full).

    Attributes:
        scope: Whose limit: ``"tenant vision"``, ``"machine"``.
        resource: Of what: ``"cpus"``, ``"memory"``, ``"gpus"``, ``"jobs"``.
        used: In use now, as a spec writes amounts (``"2"``, ``"8Gi"``);
            ``"0"`` when the job could never fit even alone.
        asked: What the job asks.
        limit: The limit.
    """

    def __init__(
        self,
        message: str,
        *,
        scope: str = "",
        resource: str = "",
        used: str = "",
        asked: str = "",
        limit: str = "",
    ) -> None:
        super().__init__(message)
        self.scope = scope
        self.resource = resource
        self.used = used
        self.asked = asked
        self.limit = limit


class PermissionDenied(MoonError, PermissionError):
    """The caller may not do this."""


class Conflict(MoonError):
    """The request conflicts with the current state, such as cancelling a job that ended."""


class NotSupported(MoonError, NotImplementedError):
    """The backend does not offer this (yet), such as ``ttl_seconds_after_finished``
    on Kubernetes; the message says what, on which backend, and why."""


class JobFailed(MoonError):
    """A job that was waited for ended Failed.

    Attributes:
        job: ``"tenant/name"``.
        phase: ``"failed"`` (``"cancelled"`` for :class:`JobCancelled`).
        reason: Why, as moon recorded it (``"replica main-0 exited with code 3"``).
    """

    def __init__(self, message: str, *, job: str = "", phase: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.job = job
        self.phase = phase
        self.reason = reason


class JobCancelled(JobFailed):
    """A job that was waited for was cancelled."""


class Timeout(MoonError, TimeoutError):
    """A wait ran out of time; the job goes on.

    Attributes:
        what: What was waited for (``"job vision/resnet"``).
        seconds: How long.
    """

    def __init__(self, message: str, *, what: str = "", seconds: float = 0.0) -> None:
        super().__init__(message)
        self.what = what
        self.seconds = seconds


class AgentError(MoonError):
    """moon's machinery failed: a file or socket, its state database, or its
    background agent (which could not be started or reached)."""


class ClusterError(MoonError, ConnectionError):
    """The Kubernetes API server could not be reached, or failed in a way no
    other error covers (a 5xx answer, an object moon cannot read).

    Attributes:
        status: The HTTP status of the server's answer, or ``None`` when there
            was none (unreachable, a broken stream, a problem moon found).
        reason: The server's reason (``"InternalError"``,
            ``"ServiceUnavailable"``), or moon's (``"Unreachable"``,
            ``"Malformed"``, ``"WatchEnded"``).
        retryable: Whether the same request may succeed later.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retryable = retryable


class ServiceUnavailable(MoonError, ConnectionError):
    """A request of a service's client (``svc.client()``) was not answered: no
    replica was ready within the client's wait, or every replica tried failed.

    Attributes:
        service: The service, ``tenant/name``.
    """

    def __init__(self, message: str, *, service: str = "") -> None:
        super().__init__(message)
        self.service = service


class InvalidRequest(MoonError, ValueError):
    """A request of a service's client that is not valid HTTP (its method, path or a
    header)."""


class InvalidPolicy(MoonError, ValueError):
    """A network policy, selector, address or port that is not valid, or a pod that is not
    among those given (``moon.net``).

    Attributes:
        field: Where: the object and its field path
            (``"Calico NetworkPolicy shop/p: spec.ingress[0].source.selector"``).
        column: The column of the fault in the field's text (from 1), or None.
    """

    def __init__(self, message: str, *, field: str = "", column: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.column = column


class GpuError(MoonError):
    """This machine's GPUs could not be read.

    Attributes:
        kind: ``"no-nvml"``: no NVIDIA management library or driver here (set
            ``MOON_GPU_INVENTORY`` to an inventory file to describe GPUs by
            hand); ``"nvml"``: NVML failed; ``"inventory"``: the
            ``MOON_GPU_INVENTORY`` file cannot be read or is invalid;
            ``"selector"``: a GPU selector does not parse.
    """

    def __init__(self, message: str, *, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------- storage
# The errors of moon.storage. Each is a StorageError, and also the general class above and
# Python's own built-in that fits it, so that code written for files (``except
# FileNotFoundError``, fsspec, pandas) handles a store's errors as it handles a disk's.


class StorageError(MoonError):
    """Base class of the errors of :mod:`moon.storage`.

    Attributes:
        path: The object the operation was on (``""`` when none applies).
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ObjectNotFound(StorageError, NotFound, FileNotFoundError):
    """No object at that path (a prefix that holds objects is not one either).

    Attributes:
        path: The path asked for.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        NotFound.__init__(self, message, kind="object", name=path)
        self.path = path


class ObjectExists(StorageError, AlreadyExists, FileExistsError):
    """An object is already there where the operation needed none."""

    def __init__(self, message: str, *, path: str = "") -> None:
        AlreadyExists.__init__(self, message, kind="object", name=path)
        self.path = path


class StoragePermissionDenied(StorageError, PermissionDenied):
    """The store refused access to the path (a permission, or a link leading out of a local
    store's root)."""


class PreconditionFailed(StorageError, Conflict, OSError):
    """The store's state does not allow the operation: a filesystem-like store cannot hold an
    object at ``a`` and another at ``a/b``."""


class StorageQuotaExceeded(StorageError, QuotaExceeded, OSError):
    """The store is full or the caller's quota there is used up; a refused write leaves
    nothing, or the object that was there."""

    def __init__(self, message: str, *, path: str = "") -> None:
        QuotaExceeded.__init__(self, message)
        self.path = path


class InvalidStorePath(StorageError, ValueError):
    """A path was refused before any store saw it (absolute, ``..``, empty segments, control
    characters, too long).

    Attributes:
        reason: The rule it broke.
    """

    def __init__(self, message: str, *, path: str = "", reason: str = "") -> None:
        super().__init__(message, path=path)
        self.reason = reason


class InvalidRange(StorageError, ValueError):
    """A byte range that starts past the end of the object, or ends before it starts.

    Attributes:
        start, end: The range asked for.
        size: The object's size.
    """

    def __init__(
        self, message: str, *, path: str = "", start: int = 0, end: int = 0, size: int = 0
    ) -> None:
        super().__init__(message, path=path)
        self.start = start
        self.end = end
        self.size = size


class InvalidStoreUrl(StorageError, ValueError):
    """A store URL could not be understood; the message says what is wrong with it.

    Attributes:
        url: The URL, user information (``user:secret@``) replaced by ``***``.
        reason: What is wrong.
    """

    def __init__(self, message: str, *, url: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class StorageUnavailable(StorageError, ConnectionError):
    """The store's server could not be reached, or failed while serving the request.

    Attributes:
        backend: ``"seaweedfs"``, ``"hdfs"``, ``"local"``, ...
    """

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message)
        self.backend = backend


class StorageNotSupported(StorageError, NotSupported):
    """The backend does not offer this operation (``rename`` on SeaweedFS blobs, ``append``
    on a local directory, ...).

    Attributes:
        backend: The backend.
        operation: What was asked.
    """

    def __init__(self, message: str, *, backend: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.backend = backend
        self.operation = operation
