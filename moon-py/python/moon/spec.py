"""Job and tenant specs as dataclasses.

The dataclasses hold what a user writes, typed for editors and checkers; they
check nothing themselves. moon's native parser is the one schema: a spec built
here is checked when it is submitted or applied (or with :meth:`Job.validate`,
:func:`load_spec`), with the same messages and field paths the CLI prints. A
key these classes do not know (from a mapping given to ``from_dict`` or as a
role) is kept and handed to the parser, which refuses it where it stands
(``roles[0].bogus: unknown field``). ``to_dict`` gives the camelCase mapping of
the YAML and JSON forms.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from . import _native

__all__ = [
    "Framework",
    "Job",
    "Quantity",
    "Quota",
    "RestartPolicy",
    "Role",
    "Tenant",
    "load_spec",
]

Quantity = Union[int, float, str]
"""CPUs as a number or millicores (``2``, ``0.5``, ``"500m"``); memory as bytes,
optionally with a unit (``"8Gi"``, ``"512M"``)."""

Framework = Literal["pytorch", "tensorflow", "xgboost", "mxnet", "caffe", "spark", "custom"]
"""The frameworks whose rendezvous moon wires up."""

RestartPolicy = Literal["never", "on-failure"]
"""Whether a replica that exits non-zero is started again."""

_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _strings(value: Sequence[str], what: str) -> list[str]:
    # A lone string is a sequence of characters; ["p", "y", ...] is never meant.
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{what} must be a list of strings, not a single string: {value!r}")
    return list(value)


def _mapping(value: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if value is None else dict(value)


def _others(data: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    """The keys of ``data`` a class does not know, kept for the parser to refuse."""
    return {key: value for key, value in data.items() if key not in known}


_QUOTA_KEYS = ("cpus", "memory", "gpus", "jobs")
_ROLE_KEYS = (
    "name",
    "replicas",
    "command",
    "args",
    "env",
    "workingDir",
    "image",
    "cpus",
    "memory",
    "gpus",
    "inheritEnv",
    "envFrom",
)


@dataclass
class Quota:
    """Limits on what a tenant's running jobs may hold at once; ``None`` is unlimited."""

    cpus: Quantity | None = None
    memory: Quantity | None = None
    gpus: int | None = None
    jobs: int | None = None
    _others: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        items = {"cpus": self.cpus, "memory": self.memory, "gpus": self.gpus, "jobs": self.jobs}
        data = {key: value for key, value in items.items() if value is not None}
        return {**data, **self._others}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quota:
        """A quota from its mapping; keys it does not know are refused on apply."""
        return cls(
            cpus=data.get("cpus"),
            memory=data.get("memory"),
            gpus=data.get("gpus"),
            jobs=data.get("jobs"),
            _others=_others(data, _QUOTA_KEYS),
        )


@dataclass
class Role:
    """A group of identical replicas of a job (``master``, ``worker``, ``ps``...).

    ``gpus`` per replica is a count of any model (``2``) or a selector string:
    ``"H100:2"``, ``"80GB+:1"`` (decimal GB, as GPUs are sold), ``"A100|H100:4"``,
    ``"H100,cc9.0+:8"``.

    ``inherit_env`` names variables of the submitting process the replicas
    get beyond the few every replica inherits (``PATH``, ``VIRTUAL_ENV``, ...;
    local backend only). ``env_from`` names secrets of the tenant
    (:meth:`Client.create_secret`) whose keys become variables.
    """

    name: str
    replicas: int = 1
    command: Sequence[str] = field(default_factory=list)
    args: Sequence[str] = field(default_factory=list)
    env: Mapping[str, str] | None = None
    working_dir: str | None = None
    cpus: Quantity = 1
    memory: Quantity = "512Mi"
    gpus: int | str = 0
    image: str | None = None
    inherit_env: Sequence[str] = field(default_factory=list)
    env_from: Sequence[str] = field(default_factory=list)
    _others: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.command = _strings(self.command, "command")
        self.args = _strings(self.args, "args")
        self.inherit_env = _strings(self.inherit_env, "inherit_env")
        self.env_from = _strings(self.env_from, "env_from")
        self.env = _mapping(self.env)
        if self.working_dir is not None:
            self.working_dir = os.fspath(self.working_dir)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "replicas": self.replicas,
            "command": list(self.command),
        }
        if self.args:
            data["args"] = list(self.args)
        if self.env:
            data["env"] = dict(self.env)
        if self.inherit_env:
            data["inheritEnv"] = list(self.inherit_env)
        if self.env_from:
            data["envFrom"] = [{"secret": secret} for secret in self.env_from]
        if self.working_dir is not None:
            data["workingDir"] = self.working_dir
        if self.image is not None:
            data["image"] = self.image
        data["cpus"] = self.cpus
        data["memory"] = self.memory
        data["gpus"] = self.gpus
        return {**data, **self._others}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Role:
        """A role from its mapping; keys it does not know are refused on submit."""
        defaults = cls(name="")
        return cls(
            name=data.get("name", ""),
            replicas=data.get("replicas", defaults.replicas),
            command=data.get("command", ()),
            args=data.get("args", ()),
            env=data.get("env") or None,
            working_dir=data.get("workingDir"),
            cpus=data.get("cpus", defaults.cpus),
            memory=data.get("memory", defaults.memory),
            gpus=data.get("gpus", defaults.gpus),
            image=data.get("image"),
            inherit_env=data.get("inheritEnv", ()),
            env_from=[
                source["secret"] if isinstance(source, Mapping) else source
                for source in data.get("envFrom", ())
            ],
            _others=_others(data, _ROLE_KEYS),
        )


_VOLUME_KEYS = ("name", "store", "path", "url", "mountPath", "readOnly", "cached")


@dataclass
class Volume:
    """A directory of the job's tenant's storage that every replica sees.

    Either ``store`` (``seaweedfs``, ``hdfs`` or ``gluster``: the tenant's own) with an
    optional ``path`` in it, or a ``url`` in the tenant's part of one of those systems.
    Replicas find the volume's URL in ``MOON_VOLUME_<NAME>`` and, where it is mounted, its
    place in ``MOON_VOLUME_<NAME>_PATH`` (``mount_path`` on Kubernetes; a directory of the
    job's on the local backend). ``cached`` is for HDFS volumes, which must be read-only.
    """

    name: str
    mount_path: str
    store: str | None = None
    path: str | None = None
    url: str | None = None
    read_only: bool = False
    cached: bool = False
    _others: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        for key, value in (("store", self.store), ("path", self.path), ("url", self.url)):
            if value is not None:
                data[key] = value
        data["mountPath"] = self.mount_path
        if self.read_only:
            data["readOnly"] = True
        if self.cached:
            data["cached"] = True
        return {**data, **self._others}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Volume:
        """A volume from its mapping; keys it does not know are refused on submit."""
        return cls(
            name=data.get("name", ""),
            mount_path=data.get("mountPath", ""),
            store=data.get("store"),
            path=data.get("path"),
            url=data.get("url"),
            read_only=bool(data.get("readOnly", False)),
            cached=bool(data.get("cached", False)),
            _others=_others(data, _VOLUME_KEYS),
        )


@dataclass
class Job:
    """A training job: roles of replicas run under one framework's rendezvous.

    ``framework`` is one of ``pytorch``, ``tensorflow``, ``xgboost``, ``mxnet``,
    ``caffe``, ``spark`` and ``custom``; ``restart_policy`` is ``never`` or
    ``on-failure``. Roles may be given as :class:`Role` or as mappings.
    ``image`` is the container image on Kubernetes of every role that names
    none (the local backend runs commands on this machine and ignores it).
    ``ttl_seconds_after_finished`` deletes the job (logs and records included)
    that many seconds after it ends, on the local backend; Kubernetes refuses
    it with :class:`NotSupported`. ``volumes`` (:class:`Volume` or mappings) put
    directories of the tenant's storage in every replica.
    """

    name: str
    tenant: str
    framework: Framework = "custom"
    roles: Sequence[Role] = field(default_factory=list)
    restart_policy: RestartPolicy = "never"
    backoff_limit: int = 6
    active_deadline_seconds: int | None = None
    labels: Mapping[str, str] | None = None
    image: str | None = None
    ttl_seconds_after_finished: int | None = None
    volumes: Sequence[Volume] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.roles = [
            role if isinstance(role, Role) else Role.from_dict(role) for role in self.roles
        ]
        self.volumes = [
            volume if isinstance(volume, Volume) else Volume.from_dict(volume)
            for volume in self.volumes
        ]
        self.labels = _mapping(self.labels)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "tenant": self.tenant,
            "framework": self.framework,
            "roles": [role.to_dict() for role in self.roles],
            "restartPolicy": self.restart_policy,
            "backoffLimit": self.backoff_limit,
        }
        if self.image is not None:
            data["image"] = self.image
        if self.active_deadline_seconds is not None:
            data["activeDeadlineSeconds"] = self.active_deadline_seconds
        if self.ttl_seconds_after_finished is not None:
            data["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
        if self.volumes:
            data["volumes"] = [volume.to_dict() for volume in self.volumes]
        if self.labels:
            data["labels"] = dict(self.labels)
        return data

    def validate(self) -> Job:
        """Checks the job as submitting would, without a backend; returns it.

        Raises:
            InvalidSpec: The job breaks a rule; ``details`` says where and which.
        """
        _native.parse_job_yaml(spec_json(self))
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """A job from its camelCase mapping, validated by moon's parser.

        Raises:
            InvalidSpec: The mapping is not a valid job spec.
        """
        return cls._from_canonical(json.loads(_native.parse_job_yaml(json.dumps(data))))

    @classmethod
    def _from_canonical(cls, data: Mapping[str, Any]) -> Job:
        return cls(
            name=data["name"],
            tenant=data["tenant"],
            framework=data["framework"],
            roles=[Role.from_dict(role) for role in data["roles"]],
            restart_policy=data.get("restartPolicy", "never"),
            backoff_limit=data.get("backoffLimit", 6),
            active_deadline_seconds=data.get("activeDeadlineSeconds"),
            labels=data.get("labels") or None,
            image=data.get("image"),
            ttl_seconds_after_finished=data.get("ttlSecondsAfterFinished"),
            volumes=[Volume.from_dict(volume) for volume in data.get("volumes", ())],
        )


@dataclass
class Tenant:
    """One team's share of the platform: a quota, and who may use it."""

    name: str
    quota: Quota | None = None
    users: Sequence[str] = field(default_factory=list)
    groups: Sequence[str] = field(default_factory=list)
    labels: Mapping[str, str] | None = None
    #: Storage of its own, as the spec's camelCase ``storage`` mapping:
    #: ``{"seaweedfs": {}, "hdfs": {}, "gluster": {"size": "10Gi"}}`` (see docs/storage.md).
    storage: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.quota, Mapping):
            self.quota = Quota.from_dict(self.quota)
        self.users = _strings(self.users, "users")
        self.groups = _strings(self.groups, "groups")
        self.labels = _mapping(self.labels)
        if self.storage is not None and not isinstance(self.storage, Mapping):
            raise TypeError(f"storage must be a mapping, not {type(self.storage).__name__}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.quota is not None:
            data["quota"] = self.quota.to_dict()
        if self.users:
            data["users"] = list(self.users)
        if self.groups:
            data["groups"] = list(self.groups)
        if self.labels:
            data["labels"] = dict(self.labels)
        if self.storage:
            data["storage"] = dict(self.storage)
        return data

    def validate(self) -> Tenant:
        """Checks the tenant as applying would, without a backend; returns it.

        Raises:
            InvalidSpec: The tenant breaks a rule; ``details`` says where and which.
        """
        _native.parse_tenant_yaml(spec_json(self))
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tenant:
        """A tenant from its camelCase mapping, validated by moon's parser.

        Raises:
            InvalidSpec: The mapping is not a valid tenant spec.
        """
        return cls._from_canonical(json.loads(_native.parse_tenant_yaml(json.dumps(data))))

    @classmethod
    def _from_canonical(cls, data: Mapping[str, Any]) -> Tenant:
        quota = data.get("quota") or None
        return cls(
            name=data["name"],
            quota=None if quota is None else Quota.from_dict(quota),
            users=data.get("users", ()),
            groups=data.get("groups", ()),
            labels=data.get("labels") or None,
            storage=data.get("storage") or None,
        )


_SERVICE_KEYS = (
    "kind",
    "name",
    "tenant",
    "command",
    "args",
    "env",
    "envFrom",
    "workingDir",
    "image",
    "port",
    "replicas",
    "cpus",
    "memory",
    "gpus",
    "readiness",
    "autoscale",
    "expose",
    "volumes",
    "labels",
)


@dataclass
class Service:
    """An inference service: identical replicas of one program serving on a port.

    ``port`` is given to replicas as ``PORT``. ``readiness``, ``autoscale`` and ``expose``
    take the spec's camelCase mappings: ``{"httpPath": "/healthz"}`` or ``{"tcp": True}``;
    ``{"minReplicas": 0, "maxReplicas": 8, "targetInFlight": 4}``;
    ``{"host": "models.example.com", "path": "/v1/models/mnist", "rpc": "mnist"}``
    (see docs/services.md). Specs are parsed, validated and rendered (:func:`render`); no
    backend serves them yet.
    """

    name: str
    tenant: str
    command: Sequence[str] = field(default_factory=list)
    args: Sequence[str] = field(default_factory=list)
    env: Mapping[str, str] | None = None
    env_from: Sequence[str] = field(default_factory=list)
    working_dir: str | None = None
    image: str | None = None
    port: int = 8080
    replicas: int = 1
    cpus: Quantity = 1
    memory: Quantity = "512Mi"
    gpus: int | str = 0
    readiness: Mapping[str, Any] | None = None
    autoscale: Mapping[str, Any] | None = None
    expose: Mapping[str, Any] | None = None
    volumes: Sequence[Volume] = field(default_factory=list)
    labels: Mapping[str, str] | None = None
    _others: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.command = _strings(self.command, "command")
        self.args = _strings(self.args, "args")
        self.env_from = _strings(self.env_from, "env_from")
        self.env = _mapping(self.env)
        self.labels = _mapping(self.labels)
        if self.working_dir is not None:
            self.working_dir = os.fspath(self.working_dir)
        self.volumes = [
            volume if isinstance(volume, Volume) else Volume.from_dict(volume)
            for volume in self.volumes
        ]
        for name in ("readiness", "autoscale", "expose"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{name} must be a mapping, not {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": "Service", "name": self.name, "tenant": self.tenant}
        if self.command:
            data["command"] = list(self.command)
        if self.args:
            data["args"] = list(self.args)
        if self.env:
            data["env"] = dict(self.env)
        if self.env_from:
            data["envFrom"] = [{"secret": secret} for secret in self.env_from]
        if self.working_dir is not None:
            data["workingDir"] = self.working_dir
        if self.image is not None:
            data["image"] = self.image
        data["port"] = self.port
        data["replicas"] = self.replicas
        data["cpus"] = self.cpus
        data["memory"] = self.memory
        data["gpus"] = self.gpus
        for key in ("readiness", "autoscale", "expose"):
            value = getattr(self, key)
            if value is not None:
                data[key] = dict(value)
        if self.volumes:
            data["volumes"] = [volume.to_dict() for volume in self.volumes]
        if self.labels:
            data["labels"] = dict(self.labels)
        return {**data, **self._others}

    def validate(self) -> Service:
        """Checks the service as serving would, without a backend; returns it.

        Raises:
            InvalidSpec: The service breaks a rule; ``details`` says where and which.
        """
        _native.parse_spec_yaml(spec_json(self), "service")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Service:
        """A service from its camelCase mapping, validated by moon's parser.

        Raises:
            InvalidSpec: The mapping is not a valid service spec.
        """
        _, canonical = _native.parse_spec_yaml(json.dumps(dict(data)), "service")
        return cls._from_canonical(json.loads(canonical))

    @classmethod
    def _from_canonical(cls, data: Mapping[str, Any]) -> Service:
        return cls(
            name=data["name"],
            tenant=data["tenant"],
            command=data.get("command", ()),
            args=data.get("args", ()),
            env=data.get("env") or None,
            env_from=[source["secret"] for source in data.get("envFrom", ())],
            working_dir=data.get("workingDir"),
            image=data.get("image"),
            port=data["port"],
            replicas=data["replicas"],
            cpus=data["cpus"],
            memory=data["memory"],
            gpus=data["gpus"],
            readiness=data.get("readiness"),
            autoscale=data.get("autoscale"),
            expose=data.get("expose"),
            volumes=[Volume.from_dict(volume) for volume in data.get("volumes", ())],
            labels=data.get("labels") or None,
            _others=_others(data, _SERVICE_KEYS),
        )


def load_spec(source: str | os.PathLike[str], kind: str | None = None) -> Job | Tenant | Service:
    """Reads and validates a job, tenant or service spec.

    Args:
        source: A path to a YAML or JSON file, or the spec's text itself.
        kind: ``"job"``, ``"tenant"`` or ``"service"``; when left out, the spec's ``kind``
            key says (``kind: Job``), or for files without one, a spec with a
            ``tenant``, ``framework`` or ``roles`` key is a job and any other a
            tenant (a service always names its kind).

    Raises:
        InvalidSpec: The spec breaks a rule; ``errors`` lists every one.
        FileNotFoundError: ``source`` names a spec file that does not exist.
    """
    found_kind, canonical = _native.parse_spec_yaml(_read(source), kind)
    data = json.loads(canonical)
    if found_kind == "job":
        return Job._from_canonical(data)
    if found_kind == "service":
        return Service._from_canonical(data)
    return Tenant._from_canonical(data)


def _read(source: str | os.PathLike[str]) -> str:
    if not isinstance(source, str):
        with open(source, encoding="utf-8") as file:
            return file.read()
    if "\n" not in source and (os.path.isfile(source) or source.endswith(_SPEC_SUFFIXES)):
        # One line that names a file (or looks like it should) is a path;
        # opening a missing one raises FileNotFoundError naming it.
        with open(source, encoding="utf-8") as file:
            return file.read()
    return source


def spec_json(spec: Job | Tenant | Service | Mapping[str, Any]) -> str:
    """The JSON text the native layer parses, from a dataclass or a mapping."""
    return json.dumps(spec.to_dict() if isinstance(spec, (Job, Tenant, Service)) else dict(spec))


def render(
    spec: Job | Tenant | Service | Mapping[str, Any],
    *,
    image: str | None = None,
    tolerations: Sequence[str] | None = None,
    node_selector: Sequence[str] | None = None,
    output: Literal["yaml", "json"] = "yaml",
) -> str:
    """The Kubernetes objects a job or tenant spec becomes, as a YAML stream for
    ``kubectl apply -f -`` or a GitOps repository (or, with ``output="json"``,
    one compact JSON ``List``, which ``kubectl apply -f`` takes too); nothing is
    applied.

    Args:
        spec: A :class:`Job`, a :class:`Tenant`, or a mapping in the spec's keys
            (its kind told as :func:`load_spec` tells it).
        image: The container image of replicas whose spec names none (default: moon's).
        tolerations: Taints every replica's pod tolerates, as ``kubectl taint``
            writes them (``"dedicated=ml:NoSchedule"``).
        node_selector: Node labels every replica's pod asks for (``"pool=ml"``).

    Raises:
        InvalidSpec: The spec breaks a rule.
    """
    kind = {Job: "job", Tenant: "tenant", Service: "service"}.get(type(spec))
    return _native.render(
        spec_json(spec),
        kind,
        output,
        image,
        None if tolerations is None else list(tolerations),
        None if node_selector is None else list(node_selector),
    )
