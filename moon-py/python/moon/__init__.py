"""moon: run multi-tenant distributed ML training jobs.

Example::

    import moon

    client = moon.Client()
    client.create_tenant("vision", quota=moon.Quota(cpus=8, memory="32Gi"))
    job = client.submit(
        moon.Job(
            name="hello",
            tenant="vision",
            roles=[moon.Role("main", command=["python", "-c", "print('hi')"])],
        )
    )
    for line in job.logs(follow=True):
        print(line)  # [main-0] hi
    print(job.wait().phase)  # Succeeded
"""

from . import errors, gpu, xgboost
from ._native import __version__
from .client import Client, JobHandle, Stream
from .errors import (
    AgentError,
    AlreadyExists,
    ClusterError,
    Conflict,
    ErrorDetails,
    GpuError,
    InvalidSpec,
    JobCancelled,
    JobFailed,
    MoonError,
    NotFound,
    NotSupported,
    PermissionDenied,
    QuotaExceeded,
    Timeout,
)
from .gpu import GpuDevice, GpuInventory, gpus
from .spec import (
    Framework,
    Job,
    Quantity,
    Quota,
    RestartPolicy,
    Role,
    Tenant,
    load_spec,
    render,
)
from .status import Event, JobStatus, LogLine, ReplicaStatus, SecretInfo, TenantStatus

__all__ = [
    "AgentError",
    "AlreadyExists",
    "Client",
    "ClusterError",
    "Conflict",
    "ErrorDetails",
    "Event",
    "Framework",
    "GpuDevice",
    "GpuError",
    "GpuInventory",
    "InvalidSpec",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobStatus",
    "LogLine",
    "MoonError",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "Quantity",
    "Quota",
    "QuotaExceeded",
    "ReplicaStatus",
    "RestartPolicy",
    "Role",
    "SecretInfo",
    "Stream",
    "Tenant",
    "TenantStatus",
    "Timeout",
    "__version__",
    "errors",
    "gpu",
    "gpus",
    "load_spec",
    "render",
    "xgboost",
]
