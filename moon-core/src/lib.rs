//! moon-core: the specs of moon, their validation, the `Backend` trait and the
//! local backend that runs jobs as supervised processes on one machine.
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
pub mod error;
pub mod kubernetes;
pub mod local;
pub mod rendezvous;
pub mod secret;
pub mod spec;

pub use backend::{
    Backend, Event, JobStatus, LogLine, LogOptions, Phase, ReplicaPhase, ReplicaStatus,
};
pub use client::Client;
pub use error::{DatabaseError, Error, FieldError, FieldErrors, Result};
/// GPU selectors, inventory and placement (the `moon-gpu` crate).
pub use moon_gpu as gpu;
pub use secret::{SecretData, SecretInfo};
