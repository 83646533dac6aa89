//! Kubernetes: the objects a tenant, a job and a service become on a cluster. Rendering
//! is pure (a spec in, typed `k8s-openapi` objects out) so that it is tested
//! with golden files and printed by `moon render` for `kubectl apply`; the
//! Kubernetes backend applies what these functions return.
//!
//! The objects use only what every Kubernetes version of `k8s-openapi` 0.29
//! has (1.33 to 1.37); moon-core's default feature `kubernetes-v1_34` picks
//! 1.34, and a program that picks its own turns the feature off.
//!
//! # A tenant
//!
//! [`render_tenant`] gives, in this order:
//!
//! | kind          | name                                             | what for                                             |
//! |---------------|--------------------------------------------------|------------------------------------------------------|
//! | Namespace     | `<tenant>`                                       | the tenant's own space; Pod Security `baseline`      |
//! | ResourceQuota | `moon-quota`                                     | `requests`/`limits` of `cpu` and `memory`, `requests.nvidia.com/gpu` |
//! | LimitRange    | `moon-defaults`                                  | a container that names no resources gets a moon role's defaults, so the quota admits it |
//! | ServiceAccount| `moon-workload`                                  | what replicas run as; no API token is mounted        |
//! | Role          | `moon-tenant-user`                               | what the tenant's people may do in the namespace     |
//! | RoleBinding   | `moon-tenant-user`                               | the tenant's `users` and `groups` to that Role       |
//! | NetworkPolicy | `moon-default-deny-ingress-from-other-namespaces`| pods accept connections from this namespace only     |
//! | NetworkPolicy | `moon-allow-egress-same-namespace`               | pods connect to this namespace only...               |
//! | NetworkPolicy | `moon-allow-egress-dns`                          | ...and to DNS, on port 53                            |
//!
//! [`render_tenant_storage`] gives the objects of its `storage:`, applied
//! after these: PersistentVolumes and their claims `moon-seaweedfs` and
//! `moon-gluster`, and a Fluid Dataset and AlluxioRuntime `moon-hdfs`.
//!
//! The quota's `jobs` limit has no Kubernetes counterpart that means the same
//! (a count of batch Jobs would count replicas here); moon's admission keeps it.
//! Egress beyond the namespace and DNS (storage, package indexes) is refused
//! until another policy allows it: NetworkPolicies add up, so the storage and
//! network crates render their allow-lists as policies of their own.
//!
//! # A service
//!
//! [`render_service`] gives a Deployment of the replicas and a Service in front of them, then
//! as the spec asks a PodDisruptionBudget (when more than one replica is possible), a
//! HorizontalPodAutoscaler (autoscaling from one) or a KEDA ScaledObject (from zero), and an
//! Ingress of class `nginx` (`expose`); `docs/services.md` has the table.
//!
//! # A job
//!
//! [`render_job`] gives the job's anchor ConfigMap, its headless Service (and
//! for xgboost the tracker's), then one batch Job per replica, hidden roles
//! first. Every name derives from the job's: `<job>` for the anchor and the
//! Service, `<job>-<role>-<index>` for a replica's Job and its pod's hostname.
//! A replica's container gets the role's CPUs and memory as both request and
//! limit, its GPUs as an `nvidia.com/gpu` limit with the toleration GPU nodes'
//! taint asks for, and a memory-backed `/dev/shm` (a runtime's own is 64 MiB,
//! too small for PyTorch's data loaders and NCCL).
//!
//! ## One Job per replica, not one Indexed Job per role
//!
//! An Indexed Job runs every index from one pod template; the only thing that
//! differs between its pods is `JOB_COMPLETION_INDEX`, which an environment
//! value can quote (`$(JOB_COMPLETION_INDEX)`) but not do arithmetic on. The
//! rendezvous needs arithmetic: `MOON_RANK` is the replicas of the roles
//! before plus the index, and PyTorch's `RANK` and `PET_NODE_RANK` of worker
//! `i` are `1 + i`. Computing them inside the pod would mean wrapping the
//! user's command in a shell or a moon entrypoint baked into the image, and
//! moon keeps user containers unmodified. So each replica is its own
//! single-completion Job (`completions: 1`, `completionMode: NonIndexed`)
//! whose pod template carries that replica's exact environment, as
//! [`rendezvous::replica_env`](crate::rendezvous::replica_env) computes it,
//! the same function the local backend uses. The template also fixes the
//! pod's `hostname` (`<job>-<role>-<index>`) and `subdomain` (`<job>`, the
//! headless Service), so a replica's DNS name,
//! `<job>-<role>-<index>.<job>.<tenant>.svc`, survives its pod being replaced;
//! `podReplacementPolicy: Failed` keeps a replacement from starting while the
//! old pod still holds that name. This is what Kubeflow's training operators
//! do (a pod per replica, with a stable name), expressed with built-in Jobs.
//! The price is one Job object per replica instead of per role.
//!
//! ## Restarts and deadlines
//!
//! Pods always run with `restartPolicy: Never`, so a failed replica leaves a
//! failed pod to read. For `restartPolicy: never` a replica's Job has
//! `backoffLimit: 0`; for `on-failure` it has the job's `backoffLimit`: the
//! Job controller replaces a failed pod with a fresh one (possibly on another
//! node, with the same hostname) up to that many times. The spec's limit
//! counts restarts across the whole job, which per-replica Jobs cannot share:
//! each replica's Job gets the whole budget as its ceiling and the backend,
//! which watches every replica, fails the job once the sum passes it. Likewise only the backend sees across
//! replicas: it fails the job when a replica fails for good and stops the
//! roles that do not decide success once the ones that do have succeeded.
//! `activeDeadlineSeconds` is set on every replica's Job, all created at once.
//!
//! ## One delete removes everything
//!
//! The anchor is a ConfigMap named `<job>` that holds the job's spec
//! (`job.json`), so the cluster itself records what was submitted. Owner
//! references need the owner's UID, which the API server assigns when the
//! anchor is created; rendering cannot know it. With
//! [`RenderOptions::anchor_uid`] set (the backend applies the anchor first and
//! renders again with its UID), every other object of the job names the
//! anchor as its owner with `blockOwnerDeletion`, so deleting the anchor
//! deletes the Services and Jobs, and their pods with them, and a foreground
//! delete of the anchor ends only when all of them are gone. Without it (the
//! `kubectl apply` stream of `moon render`) no owner references are written and
//! `kubectl delete jobs,services,configmaps -l moon.dev/job=<job>` removes the job.
//!
//! ## Rendezvous
//!
//! Every framework listens on its usual port: PyTorch's master on 29500,
//! TensorFlow's replicas on 2222, the XGBoost tracker and the MXNet scheduler
//! on 9091, the Spark driver on 7078. Each pod declares its own port; the
//! headless Service (`clusterIP: None`, `publishNotReadyAddresses: true`, so
//! names resolve as soon as pods have addresses) lists each port number once.
//!
//! XGBoost's workers give up on a tracker that is not listening yet, so the
//! tracker (the hidden role of
//! [`rendezvous::hidden_roles`](crate::rendezvous::hidden_roles), bound to
//! `0.0.0.0`) is gated: its pod is Ready only once its port is in the LISTEN
//! state (an exec probe that reads `/proc/net/tcp`, since a probe that
//! connected would be taken for a worker), a second headless Service
//! `<job>-tracker` publishes only Ready pods, its name is the workers'
//! `DMLC_TRACKER_URI`, and each worker's pod first runs an init container that
//! waits for that name to resolve. The probe and the init container run the
//! workers' image and Python, as the tracker itself does, and the order holds
//! under a plain `kubectl apply` as well as under the backend.
//!
//! ## What the spec does not say yet
//!
//! Images: a role's `image`, else the job's, else [`RenderOptions::image`]
//! (the backend's configured image, `python:3.12-slim` unless set); the
//! XGBoost tracker takes the workers' image, whose Python it runs. A role's `workingDir` must be an absolute path here:
//! there is no submitting directory on a cluster to resolve it against.
//! A job's name must start with a letter (it names a Service) and
//! `<job>-<role>-<index>` must fit in 63 characters (a hostname), which the
//! spec's own limits allow only up to index 9; such jobs are refused with
//! the same `InvalidSpec` error as a broken rule of the spec.
//! Values in `command`, `args` and `env` are written with every `$` doubled,
//! because Kubernetes expands `$(NAME)` in them and moon's specs mean what
//! they say on every backend.

use crate::spec::Spec;

mod custom;
pub mod fluid;
mod gpu;
mod job;
pub mod keda;
pub(crate) mod meta;
mod network;
pub mod network_kinds;
mod node_selector;
mod object;
mod secret;
mod service;
mod service_status;
pub mod status;
mod storage;
mod tenant;
mod toleration;
pub mod volumes;

pub use gpu::{KNOWN_GPU_PRODUCTS, node_affinity};
pub use job::{
    DEFAULT_IMAGE, MXNET_SCHEDULER_PORT, PYTORCH_MASTER_PORT, RenderOptions, SPARK_DRIVER_PORT,
    SPEC_KEY, TENSORFLOW_PORT, XGBOOST_TRACKER_PORT, endpoints, render_job, replica_name,
};
pub use meta::{
    JOB_LABEL, MANAGED_BY_LABEL, MANAGER, REPLICA_INDEX_LABEL, ROLE_LABEL, SERVICE_LABEL,
    SUBMITTED_ANNOTATION, TENANT_LABEL,
};
pub use network::{
    ALLOW_DNS_POLICY, ALLOW_EGRESS_LIST_POLICY, ALLOW_SAME_NAMESPACE_POLICY,
    CALICO_ISOLATION_POLICY, CALICO_TIER, CALICO_TIER_ORDER, DENY_OTHER_NAMESPACES_POLICY,
    EXPOSE_POLICY_PREFIX, GUARD_RAIL_NETS, GUARD_RAILS_POLICY, ISOLATION_LABEL, calico_guard_rails,
};
pub use node_selector::parse_node_selector;
pub use object::{Object, to_json, to_yaml};
pub use secret::render_secret;
pub use service::{
    HTTP_PORT, IN_FLIGHT_METRIC, INGRESS_CLASS, PROMETHEUS_ADDRESS, REQUESTS_PER_SECOND_METRIC,
    SERVER, render_service,
};
pub use service_status::{ObservedService, derive_service};
pub use status::{Conclusion, Derived, Observed, anchor_spec, derive};
pub use storage::{
    GLUSTER_CLAIM, GLUSTER_CSI_DRIVER, HDFS_DATASET, HDFS_DATASET_MOUNT, KEYTAB_DIR, KEYTAB_KEY,
    SEAWEEDFS_CLAIM, SEAWEEDFS_CSI_DRIVER, StorageEndpoints, render_tenant_storage,
};
pub use tenant::{
    LIMIT_RANGE, QUOTA, TENANT_SPEC_ANNOTATION, USER_ROLE, WORKLOAD_SERVICE_ACCOUNT, render_tenant,
};
pub use toleration::parse_tolerations;

/// The objects a spec of any kind becomes.
pub fn render_spec(spec: &Spec, options: &RenderOptions) -> crate::Result<Vec<Object>> {
    match spec {
        Spec::Job(job) => render_job(job, options),
        Spec::Tenant(tenant) => render_tenant(tenant),
        Spec::Service(service) => render_service(service, options),
    }
}

/// Renders a spec (YAML or JSON; its kind told by
/// [`spec_kind`](crate::spec::spec_kind)) to the YAML stream of objects moon
/// would apply — what `moon render` prints for `kubectl apply` and GitOps.
pub fn render_spec_yaml(text: &str, options: &RenderOptions) -> crate::Result<String> {
    let spec = crate::spec::spec_from_yaml(text, None)?;
    Ok(to_yaml(&render_spec(&spec, options)?))
}
