//! The Kubernetes backend: moon's specs applied to a cluster and followed
//! there. What a tenant or a job becomes on a cluster, and how a job's status
//! is derived from the objects the cluster holds, is pure and lives in
//! [`moon_spec::kubernetes`], re-exported here; this module does the IO: it
//! connects ([`KubernetesConfig`]), applies what rendering returns, watches
//! the objects ([`informer`]-shared watches) and reads logs. Reads need
//! only the cluster's `view` role; what a reader [records](record) is
//! best-effort.

mod api;
mod backend;
mod config;
mod informer;
mod observe;
mod record;
mod registry;
mod secret;
mod services;
mod tenant_network;
mod watch;

pub use api::USER_AGENT;
pub use backend::KubernetesBackend;
pub use config::KubernetesConfig;
pub use moon_spec::kubernetes::*;
pub use registry::{EndpointSliceRegistry, endpoints_of};
