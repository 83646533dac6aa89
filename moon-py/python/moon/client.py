"""The client: tenants, jobs, and handles on running jobs.

Every call that waits (``wait``, following logs, watching events) releases
the GIL, so other Python threads keep running, and can be interrupted with
Ctrl-C.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Generic, Literal, TypeVar

from . import _native
from .errors import Timeout
from .service_client import ServiceClient
from .spec import Job, Quota, Service, Tenant, render, spec_json
from .status import Event, JobStatus, LogLine, SecretInfo, ServiceStatus, TenantStatus, _time
from .storage._tenant import TenantStorage

__all__ = ["Client", "JobHandle", "Stream"]

T = TypeVar("T")


class Stream(Generic[T]):
    """An iterator over what a job produces (log lines, events), read as it
    arrives. ``close()`` (or leaving a ``with`` block) stops reading early."""

    def __init__(
        self,
        native: _native.LogIterator | _native.EventIterator,
        convert: Callable[[Any], T],
    ) -> None:
        self._native = native
        self._convert = convert

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        return self._convert(next(self._native))

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _log_line(item: tuple[str, str, int, str]) -> LogLine:
    replica, stream, time_ms, line = item
    return LogLine(replica=replica, stream=stream, time=_time(time_ms), line=line)


def _event(item: str) -> Event:
    return Event.from_dict(json.loads(item))


class Client:
    """A handle on a backend; safe to share between threads.

    Args:
        backend: ``"local"`` runs jobs as processes on this machine;
            ``"kubernetes"`` on a Kubernetes cluster; ``$MOON_BACKEND``, else
            ``"local"``. Every setting is read as the ``moon`` CLI and Rust's
            ``moon_core::Config`` read it: the environment, then the arguments.
        home: The local backend's state directory; ``$MOON_HOME``, else ``~/.moon``.
        agent_program: The ``moon`` program the local backend starts its agent
            with; ``$MOON_AGENT_PROGRAM``, else the one bundled with this
            package, else ``moon`` on ``PATH``.
        kubeconfig: The Kubernetes backend's kubeconfig file;
            ``$MOON_KUBECONFIG``, else ``$KUBECONFIG``, else ``~/.kube/config``.
        context: The kubeconfig context; ``$MOON_KUBE_CONTEXT``, else its current one.
        image: The image every replica runs on Kubernetes; ``$MOON_IMAGE``,
            else ``python:3.12-slim``.
        tolerations: Taints every replica's pod tolerates, as ``kubectl taint``
            writes them (``"dedicated=ml:NoSchedule"``); ``$MOON_TOLERATIONS``
            (comma-separated), else none.
        node_selector: Node labels every replica's pod asks for on Kubernetes
            (``"pool=ml"``); ``$MOON_NODE_SELECTOR`` (comma-separated), else none.
    """

    def __init__(
        self,
        backend: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        agent_program: str | os.PathLike[str] | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        image: str | None = None,
        tolerations: Sequence[str] | None = None,
        node_selector: Sequence[str] | None = None,
    ) -> None:
        if kubeconfig is not None:
            kubeconfig = os.path.expanduser(os.fspath(kubeconfig))
        self._native = _native.Client(
            backend,
            home,
            agent_program,
            kubeconfig,
            context,
            image,
            None if tolerations is None else list(tolerations),
            None if node_selector is None else list(node_selector),
        )

    @property
    def backend(self) -> str:
        return self._native.backend

    @property
    def kubeconfig(self) -> Path | None:
        """The Kubernetes backend's kubeconfig file, when one was named."""
        return self._native.kubeconfig

    @property
    def context(self) -> str | None:
        """The Kubernetes backend's kubeconfig context, when one was named."""
        return self._native.context

    @property
    def image(self) -> str | None:
        """The image of replicas whose spec names none, on Kubernetes."""
        return self._native.image

    @property
    def tolerations(self) -> list[str]:
        """Taints every pod tolerates on Kubernetes, as ``key[=value]:Effect``."""
        return self._native.tolerations

    @property
    def node_selector(self) -> list[str]:
        """Node labels every pod asks for on Kubernetes, as ``key=value``."""
        return self._native.node_selector

    @property
    def home(self) -> Path | None:
        """The local backend's state directory."""
        return self._native.home

    @property
    def agent_program(self) -> Path | None:
        return self._native.agent_program

    def __repr__(self) -> str:
        return repr(self._native)

    # ------------------------------------------------------------------ tenants

    def create_tenant(
        self,
        name: str,
        quota: Quota | Mapping[str, Any] | None = None,
        users: Sequence[str] = (),
        groups: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
        storage: Mapping[str, Any] | None = None,
    ) -> str:
        """Creates (or brings up to date) a tenant; see :meth:`apply_tenant`."""
        if isinstance(quota, Mapping):
            quota = Quota.from_dict(quota)
        return self.apply_tenant(Tenant(name, quota, users, groups, labels, storage))

    def apply_tenant(self, tenant: Tenant | Mapping[str, Any]) -> str:
        """Creates or updates a tenant, and makes the storage its spec asks for (its SeaweedFS
        directory and collection, HDFS home, GlusterFS volume); storage already as the spec
        says is left alone.

        Returns:
            ``"created"``, ``"updated"`` or ``"unchanged"``.

        Raises:
            InvalidSpec: The spec breaks a rule.
            NotSupported: The spec asks for storage on a system the platform has no server
                for (``MOON_SEAWEEDFS``, ``MOON_HDFS``, ``MOON_GLUSTER``); nothing is applied.
        """
        return self._native.apply_tenant(spec_json(tenant))

    def storage(self, tenant: str) -> TenantStorage:
        """The stores of ``tenant``, confined to its part of each storage system its spec
        gives it (``storage:``); the platform's servers come from ``MOON_SEAWEEDFS``,
        ``MOON_HDFS`` and ``MOON_GLUSTER``.

        Raises:
            NotFound: No such tenant.
        """
        return TenantStorage(self._native, tenant)

    def tenants(self) -> list[TenantStatus]:
        """Every tenant, by name."""
        return [TenantStatus.from_dict(item) for item in json.loads(self._native.list_tenants())]

    def tenant(self, name: str) -> TenantStatus:
        """One tenant and its usage. Raises NotFound."""
        return TenantStatus.from_dict(json.loads(self._native.get_tenant(name)))

    def delete_tenant(self, name: str, force: bool = False) -> None:
        """Deletes a tenant and every job it has, logs and records included,
        so that its name can be used again.

        Args:
            force: Cancel the tenant's jobs that are still pending or running,
                and wait for them to end, rather than refuse.

        Raises:
            NotFound: No such tenant.
            Conflict: It has jobs still pending or running, and ``force`` is false.
        """
        self._native.delete_tenant(name, force)

    # ------------------------------------------------------------------ secrets

    def create_secret(self, tenant: str, name: str, data: Mapping[str, str]) -> str:
        """Creates a tenant's secret, or replaces all its keys.

        A role that names it (``Role(env_from=[name])``) gets each key as a
        variable. Locally the values are kept in a file only its owner can
        read, under ``MOON_HOME/secrets``; on Kubernetes in a Secret of the
        tenant's namespace. No error message or listing shows a value.

        Returns:
            ``"created"``, ``"updated"`` or ``"unchanged"``.

        Raises:
            InvalidSpec: The name is not a DNS label, or a key is not a variable name.
            NotFound: The tenant does not exist.
        """
        return self._native.apply_secret(tenant, name, dict(data))

    def secrets(self, tenant: str) -> list[SecretInfo]:
        """A tenant's secrets and their keys, by name."""
        items = json.loads(self._native.list_secrets(tenant))
        return [SecretInfo.from_dict(item) for item in items]

    def delete_secret(self, tenant: str, name: str) -> None:
        """Deletes a tenant's secret. Raises NotFound."""
        self._native.delete_secret(tenant, name)

    # ------------------------------------------------------------------ jobs

    def submit(self, job: Job | Mapping[str, Any]) -> JobHandle:
        """Validates and records a job; it runs once admitted. Returns at once.

        Raises:
            InvalidSpec: The spec breaks a rule; ``errors`` lists every one.
            NotFound: Its tenant does not exist.
            AlreadyExists: The tenant has a job of that name.
            QuotaExceeded: The job can never fit its tenant's quota or the machine.
        """
        status = JobStatus.from_dict(json.loads(self._native.submit(spec_json(job))))
        return JobHandle(self, status.tenant, status.name)

    def job(self, tenant: str, name: str) -> JobHandle:
        """A handle on an existing job. Raises NotFound."""
        self._native.get_job(tenant, name)
        return JobHandle(self, tenant, name)

    def jobs(self, tenant: str | None = None) -> list[JobStatus]:
        """Jobs of one tenant, or of all, oldest first."""
        return [JobStatus.from_dict(item) for item in json.loads(self._native.list_jobs(tenant))]

    def delete_job(self, tenant: str, name: str, force: bool = False) -> None:
        """Deletes a job with its logs and records, so that its name can be
        used again; see :meth:`JobHandle.delete`."""
        self._native.delete_job(tenant, name, force)

    def serve(self, service: Service | Mapping[str, Any]) -> ServiceHandle:
        """Starts a service: its replicas, behind a URL. Returns at once; see
        :meth:`ServiceHandle.wait_ready`. Applying the same spec again changes
        nothing.

        Raises:
            InvalidSpec: The spec breaks a rule; ``errors`` lists every one.
            NotFound: Its tenant does not exist.
            AlreadyExists: The tenant has a job of that name.
            Conflict: The service runs with another spec.
            QuotaExceeded: Its replicas can never fit the tenant's quota or the machine.
            NotSupported: The backend does not serve services yet.
        """
        spec = spec_json(service)
        self._native.apply_service(spec)
        data = json.loads(spec)
        return ServiceHandle(self, data["tenant"], data["name"])

    def service(self, tenant: str, name: str) -> ServiceHandle:
        """A handle on an existing service (checked now)."""
        self._native.get_service(tenant, name)
        return ServiceHandle(self, tenant, name)

    def list_services(self, tenant: str | None = None) -> list[ServiceStatus]:
        """Services of one tenant or of all, oldest first."""
        items = json.loads(self._native.list_services(tenant))
        return [ServiceStatus.from_dict(item) for item in items]

    def delete_service(self, tenant: str, name: str) -> None:
        """Deletes a service; see :meth:`ServiceHandle.delete`."""
        self._native.delete_service(tenant, name)

    def render(
        self,
        spec: Job | Tenant | Mapping[str, Any],
        *,
        image: str | None = None,
        output: Literal["yaml", "json"] = "yaml",
    ) -> str:
        """The Kubernetes objects ``spec`` becomes, as YAML; see :func:`moon.render`.
        A Kubernetes client renders with its own image, tolerations and node
        selector, so the stream is what it would apply (less the owner
        references, which need the anchor's UID)."""
        native = self._native
        return render(
            spec,
            image=image or native.image,
            tolerations=native.tolerations or None,
            node_selector=native.node_selector or None,
            output=output,
        )


class _Handle:
    """An object of a tenant, by name: what job and service handles share."""

    def __init__(self, client: Client, tenant: str, name: str) -> None:
        self._client = client
        self._tenant = tenant
        self._name = name

    @property
    def tenant(self) -> str:
        return self._tenant

    @property
    def name(self) -> str:
        return self._name

    @property
    def key(self) -> str:
        """``tenant/name``."""
        return f"{self._tenant}/{self._name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Handle) or type(other) is not type(self):
            return NotImplemented
        return (self._client, self.key) == (other._client, other.key)

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def _native(self) -> _native.Client:
        return self._client._native


class JobHandle(_Handle):
    """A submitted job, by tenant and name."""

    def status(self) -> JobStatus:
        """The job's current state."""
        return JobStatus.from_dict(json.loads(self._native.get_job(self._tenant, self._name)))

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Waits for the job to end and returns its final state.

        Args:
            timeout: Seconds to wait at most; no limit when ``None``.

        Raises:
            JobFailed: The job failed; ``reason`` says why.
            JobCancelled: The job was cancelled.
            Timeout: The job is still going after ``timeout`` seconds.
        """
        return JobStatus.from_dict(json.loads(self._native.wait(self._tenant, self._name, timeout)))

    def logs(
        self, follow: bool = False, tail: int | None = None, replica: str | None = None
    ) -> Stream[str]:
        """The job's output as ``[worker-0] text`` lines.

        Args:
            follow: Keep reading until the job ends.
            tail: Only the last ``tail`` lines of each replica's output so far.
            replica: Only this replica (``worker-1``).
        """
        return Stream(self._native.logs(self._tenant, self._name, follow, tail, replica), _text)

    def log_lines(
        self, follow: bool = False, tail: int | None = None, replica: str | None = None
    ) -> Stream[LogLine]:
        """Like :meth:`logs`, as :class:`LogLine` records."""
        native = self._native.logs(self._tenant, self._name, follow, tail, replica)
        return Stream(native, _log_line)

    def events(self, after: int | None = None) -> list[Event]:
        """The job's events so far (after sequence number ``after``)."""
        items = json.loads(self._native.events(self._tenant, self._name, after))
        return [Event.from_dict(item) for item in items]

    def watch(self, after: int | None = None) -> Stream[Event]:
        """The job's events (after ``after``), then new ones as they happen,
        until the job ends."""
        return Stream(self._native.watch(self._tenant, self._name, after), _event)

    def cancel(self) -> JobStatus:
        """Asks the job to stop: SIGTERM to every replica, SIGKILL after a grace period.

        Raises:
            Conflict: The job has already ended.
        """
        return JobStatus.from_dict(json.loads(self._native.cancel(self._tenant, self._name)))

    def delete(self, force: bool = False) -> None:
        """Deletes the job with its logs and records, so that its name can be
        used again; the handle then refers to nothing (``NotFound``). A
        watcher or log follower of the job ends.

        Args:
            force: Cancel the job if it is still pending or running, and wait
                for it to end, rather than refuse.

        Raises:
            NotFound: The job does not exist (any more).
            Conflict: It is still pending or running, and ``force`` is false.
        """
        self._native.delete_job(self._tenant, self._name, force)


class ServiceHandle(_Handle):
    """A service, by tenant and name."""

    def status(self) -> ServiceStatus:
        """The service's current state: URL, replicas, readiness."""
        return ServiceStatus.from_dict(
            json.loads(self._native.get_service(self._tenant, self._name))
        )

    @property
    def url(self) -> str | None:
        """Where clients reach it, once it runs."""
        return self.status().url

    def wait_ready(self, replicas: int | None = None, timeout: float = 60.0) -> ServiceStatus:
        """Waits until ``replicas`` replicas (all it should have, by default)
        take requests.

        Raises:
            Timeout: Not that many are ready after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            wanted = status.desired_replicas if replicas is None else replicas
            if status.url is not None and status.ready_replicas >= wanted:
                return status
            if time.monotonic() >= deadline:
                raise Timeout(
                    f"service {self.key}: {status.ready_replicas} of {wanted} replicas "
                    f"ready after {timeout:g}s ({status.message or status.phase})",
                    what=f"service {self.key} to be ready",
                    seconds=timeout,
                )
            time.sleep(0.05)

    def client(self) -> ServiceClient:
        """A client that balances its requests over the service's ready replicas in this
        process and sends them straight to them (see :class:`moon.service_client.ServiceClient`).

        Raises:
            NotFound: The service does not exist.
        """
        return ServiceClient(self._native.service_client(self._tenant, self._name), self.key)

    def scale(self, replicas: int) -> ServiceStatus:
        """Sets the replica count: new replicas start; removed ones get no new
        request, finish those they have, then stop.

        Raises:
            QuotaExceeded: That many replicas can never fit the tenant's quota.
            Conflict: The service is being deleted.
        """
        data = self._native.scale_service(self._tenant, self._name, replicas)
        return ServiceStatus.from_dict(json.loads(data))

    def logs(
        self, follow: bool = False, tail: int | None = None, replica: str | None = None
    ) -> Stream[str]:
        """The replicas' output as ``[replica-0] text`` lines.

        Args:
            follow: Keep reading until the service is deleted.
            tail: Only the last ``tail`` lines of each replica's output so far.
            replica: Only this replica (``replica-1``).
        """
        return Stream(self._native.logs(self._tenant, self._name, follow, tail, replica), _text)

    def events(self, after: int | None = None) -> list[Event]:
        """The service's events so far: replicas started, exited, restarted."""
        items = json.loads(self._native.events(self._tenant, self._name, after))
        return [Event.from_dict(item) for item in items]

    def delete(self) -> None:
        """Deletes the service: no new request reaches its replicas, they
        stop, and its URL closes; the handle then refers to nothing.

        Raises:
            NotFound: The service does not exist (any more).
        """
        self._native.delete_service(self._tenant, self._name)


def _text(item: tuple[str, str, int, str]) -> str:
    return str(_log_line(item))
