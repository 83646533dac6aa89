//! moon-core: the facade of moon. The `Backend` trait, the `Client`, the
//! local backend that runs jobs as supervised processes on one machine and
//! the Kubernetes backend; specs, validation and rendering come from
//! `moon-spec` (pure, embeddable alone) and are re-exported here.
//!
//! ```no_run
//! use moon_core::{Client, spec::{Framework, Job, Role, Tenant}};
//! # async fn demo() -> moon_core::Result<()> {
//! let client = Client::local()?;
//! client.apply_tenant(&Tenant { name: "vision".into(), ..Tenant::default() }).await?;
//! let job = Job::new("hello", "vision", Framework::Custom, vec![Role::new("main", 1, &["echo", "hi"])]);
//! client.submit(&job).await?;
//! let status = client.wait("vision", "hello", None).await?;
//! println!("{}", status.phase);
//! # Ok(()) }
//! ```

pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod kubernetes;
pub mod local;
pub mod object_url;
pub mod service_registry;
pub mod storage;

/// Rendezvous settings per framework (the `moon-spec` crate's).
pub use moon_spec::rendezvous;
/// Tenant secrets' data (the `moon-spec` crate's).
pub use moon_spec::secret;
/// Specs and their validation (the `moon-spec` crate's).
pub use moon_spec::spec;
/// What backends report (the `moon-spec` crate's).
pub use moon_spec::status;
/// A job's volumes once resolved, and the variables that say where they are.
pub use moon_spec::volumes;

pub use backend::{
    Backend, Event, JobStatus, LogLine, LogOptions, Phase, ReplicaPhase, ReplicaStatus,
    ServiceReplicaStatus, ServiceStatus,
};
pub use client::Client;
pub use config::{BackendName, Config};
pub use error::{
    ClusterError, DatabaseError, Error, FieldError, FieldErrors, QuotaRefusal, Result,
};
/// GPU selectors, inventory and placement (the `moon-gpu` crate).
pub use moon_gpu as gpu;
/// The balancer, the proxy and client-side balancing (the `moon-net` crate).
pub use moon_net as net;
/// The error of what moon-spec does alone (parsing, validating, rendering);
/// converts into [`Error`].
pub use moon_spec::Error as SpecError;
pub use secret::{SecretData, SecretInfo};
