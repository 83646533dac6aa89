"""What moon reports: the state of jobs, replicas and tenants, events and log lines.

Times are timezone-aware UTC datetimes. Phases are strings: a job is
``Pending``, ``Running``, ``Succeeded``, ``Failed`` or ``Cancelled``; a replica
``Pending``, ``Running``, ``Succeeded``, ``Failed`` or ``Stopped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .spec import Tenant

__all__ = [
    "TERMINAL_PHASES",
    "Event",
    "JobStatus",
    "LogLine",
    "ReplicaStatus",
    "SecretInfo",
    "ServiceReplicaStatus",
    "ServiceStatus",
    "TenantStatus",
]

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})
"""The phases a job never leaves."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _time(ms: int) -> datetime:
    # Exact to the millisecond, unlike datetime.fromtimestamp(ms / 1000).
    return _EPOCH + timedelta(milliseconds=ms)


def _maybe_time(ms: int | None) -> datetime | None:
    return None if ms is None else _time(ms)


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica of a job."""

    role: str
    index: int
    phase: str
    attempts: int
    """Attempts started so far (1 once it first runs)."""
    exit_code: int | None
    """Exit code of the latest attempt that ended; ``None`` while it runs or if a
    signal ended it."""
    signal: int | None
    """The signal that ended the latest attempt, if one did."""

    @property
    def name(self) -> str:
        """``worker-0``."""
        return f"{self.role}-{self.index}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplicaStatus:
        return cls(
            role=data["role"],
            index=data["index"],
            phase=data["phase"],
            attempts=data["attempts"],
            exit_code=data.get("exitCode"),
            signal=data.get("signal"),
        )


@dataclass(frozen=True)
class ServiceReplicaStatus:
    """One replica of a service."""

    name: str
    """``replica-0``."""
    phase: str
    ready: bool
    """It takes requests: running, its readiness check passed, not ejected."""
    address: str | None
    """Where it listens (``127.0.0.1:40177``)."""
    attempts: int
    in_flight: int
    """Requests it is serving now."""
    requests: int
    """Requests sent to it since the proxy started."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceReplicaStatus:
        return cls(
            name=data["name"],
            phase=data["phase"],
            ready=data["ready"],
            address=data.get("address"),
            attempts=data["attempts"],
            in_flight=data["inFlight"],
            requests=data["requests"],
        )


@dataclass(frozen=True)
class ServiceStatus:
    """A service's state."""

    tenant: str
    name: str
    phase: str
    """``Pending`` (waiting for quota), ``Running`` or ``Cancelled`` (deleted)."""
    reason: str | None
    message: str | None
    url: str | None
    """Where clients reach it, once it runs (``http://127.0.0.1:40123``)."""
    desired_replicas: int
    ready_replicas: int
    created: datetime
    replicas: tuple[ServiceReplicaStatus, ...]

    @property
    def key(self) -> str:
        """``tenant/name``."""
        return f"{self.tenant}/{self.name}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceStatus:
        return cls(
            tenant=data["tenant"],
            name=data["name"],
            phase=data["phase"],
            reason=data.get("reason"),
            message=data.get("message"),
            url=data.get("url"),
            desired_replicas=data["desiredReplicas"],
            ready_replicas=data["readyReplicas"],
            created=_time(data["createdMs"]),
            replicas=tuple(ServiceReplicaStatus.from_dict(item) for item in data["replicas"]),
        )


@dataclass(frozen=True)
class JobStatus:
    """A job's state."""

    tenant: str
    name: str
    framework: str
    phase: str
    reason: str | None
    """A short machine-readable reason (``Quota``, ``BackoffLimitExceeded``,
    ``DeadlineExceeded``)."""
    message: str | None
    """A sentence for people."""
    created: datetime
    started: datetime | None
    """When the job was admitted, if it was."""
    finished: datetime | None
    restarts: int
    """Restarts so far, over all replicas."""
    replicas: list[ReplicaStatus]
    """Every replica, moon's hidden helpers (the XGBoost tracker) included."""

    @property
    def key(self) -> str:
        """``tenant/name``."""
        return f"{self.tenant}/{self.name}"

    @property
    def done(self) -> bool:
        """Whether the job has ended, whatever the outcome."""
        return self.phase in TERMINAL_PHASES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatus:
        return cls(
            tenant=data["tenant"],
            name=data["name"],
            framework=data["framework"],
            phase=data["phase"],
            reason=data.get("reason"),
            message=data.get("message"),
            created=_time(data["createdMs"]),
            started=_maybe_time(data.get("startedMs")),
            finished=_maybe_time(data.get("finishedMs")),
            restarts=data["restarts"],
            replicas=[ReplicaStatus.from_dict(replica) for replica in data["replicas"]],
        )


@dataclass(frozen=True)
class Event:
    """Something that happened to a job."""

    seq: int
    """Position in the job's event stream; watch from it to resume."""
    time: datetime
    tenant: str
    job: str
    kind: str
    """``Submitted``, ``Pending``, ``Admitted``, ``ReplicaStarted``, ``ReplicaExited``,
    ``Restarting``, ``Succeeded``, ``Failed``, ``Cancelled``..."""
    phase: str
    """The job's phase after the event."""
    replica: str | None
    """The replica concerned (``worker-1``), if any."""
    message: str

    def __str__(self) -> str:
        replica = f" {self.replica}" if self.replica else ""
        return f"{self.kind}{replica}: {self.message}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            seq=data["seq"],
            time=_time(data["timeMs"]),
            tenant=data["tenant"],
            job=data["job"],
            kind=data["kind"],
            phase=data["phase"],
            replica=data.get("replica"),
            message=data["message"],
        )


@dataclass(frozen=True)
class LogLine:
    """One line of a replica's output; ``str()`` gives ``[worker-0] text``."""

    replica: str
    stream: str
    """``stdout`` or ``stderr``."""
    time: datetime
    """When the replica's supervisor read the line."""
    line: str

    def __str__(self) -> str:
        return f"[{self.replica}] {self.line}"


@dataclass(frozen=True)
class TenantStatus:
    """A tenant's spec and what its running jobs hold now."""

    spec: Tenant
    running_jobs: int
    pending_jobs: int
    used_millicores: int
    used_bytes: int
    used_gpus: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def used_cpus(self) -> float:
        return self.used_millicores / 1000

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TenantStatus:
        return cls(
            spec=Tenant._from_canonical(data["spec"]),
            running_jobs=data["runningJobs"],
            pending_jobs=data["pendingJobs"],
            used_millicores=data["usedMillicores"],
            used_bytes=data["usedBytes"],
            used_gpus=data["usedGpus"],
        )


@dataclass(frozen=True)
class SecretInfo:
    """A tenant's secret as listed: its keys, never their values."""

    tenant: str
    name: str
    keys: list[str]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecretInfo:
        return cls(tenant=data["tenant"], name=data["name"], keys=list(data["keys"]))
