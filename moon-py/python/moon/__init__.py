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

from . import errors, gpu, net, storage, xgboost
from ._native import __version__
from .client import Client, JobHandle, ServiceHandle, Stream
from .errors import (
    AgentError,
    AlreadyExists,
    ClusterError,
    Conflict,
    ErrorDetails,
    GpuError,
    InvalidPolicy,
    InvalidRange,
    InvalidRequest,
    InvalidSpec,
    InvalidStorePath,
    InvalidStoreUrl,
    JobCancelled,
    JobFailed,
    MoonError,
    NotFound,
    NotSupported,
    ObjectExists,
    ObjectNotFound,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
    ServiceUnavailable,
    StorageError,
    StorageNotSupported,
    StoragePermissionDenied,
    StorageQuotaExceeded,
    StorageUnavailable,
    Timeout,
)
from .gpu import GpuDevice, GpuInventory, gpus
from .service_client import Response, ServiceClient
from .spec import (
    Framework,
    Job,
    Quantity,
    Quota,
    RestartPolicy,
    Role,
    Service,
    Tenant,
    Volume,
    load_spec,
    render,
)
from .status import (
    Event,
    JobStatus,
    LogLine,
    ReplicaStatus,
    SecretInfo,
    ServiceReplicaStatus,
    ServiceStatus,
    TenantStatus,
)

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
    "InvalidPolicy",
    "InvalidRange",
    "InvalidRequest",
    "InvalidSpec",
    "InvalidStorePath",
    "InvalidStoreUrl",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobStatus",
    "LogLine",
    "MoonError",
    "NotFound",
    "NotSupported",
    "ObjectExists",
    "ObjectNotFound",
    "PermissionDenied",
    "PreconditionFailed",
    "Quantity",
    "Quota",
    "QuotaExceeded",
    "ReplicaStatus",
    "Response",
    "RestartPolicy",
    "Role",
    "SecretInfo",
    "Service",
    "ServiceClient",
    "ServiceHandle",
    "ServiceReplicaStatus",
    "ServiceStatus",
    "ServiceUnavailable",
    "StorageError",
    "StorageNotSupported",
    "StoragePermissionDenied",
    "StorageQuotaExceeded",
    "StorageUnavailable",
    "Stream",
    "Tenant",
    "TenantStatus",
    "Timeout",
    "Volume",
    "__version__",
    "errors",
    "gpu",
    "gpus",
    "load_spec",
    "net",
    "render",
    "storage",
    "xgboost",
]
