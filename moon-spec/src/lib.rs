//! moon-spec: what moon's users write and what moon makes of it, without IO.
//!
//! Specs (parsed from YAML or JSON, every error with its field path),
//! their validation, the rendezvous settings of each framework, the
//! Kubernetes objects a spec becomes and the status derived from the objects
//! a cluster holds. No Kubernetes client, async runtime, SQLite or NVML is
//! compiled in: a service that checks or renders specs depends on this crate
//! alone, and `moon-core` (the facade, with the backends) re-exports it.
//!
//! ```
//! use moon_spec::kubernetes::{RenderOptions, render_job, to_yaml};
//! use moon_spec::spec::job_from_yaml;
//!
//! let job = job_from_yaml(
//!     "name: mnist\ntenant: vision\nframework: xgboost\n\
//!      roles: [{name: worker, replicas: 2, command: [python, train.py]}]",
//! )?;
//! let yaml = to_yaml(&render_job(&job, &RenderOptions::default())?);
//! assert!(yaml.contains("kind: Job"));
//! # Ok::<(), moon_spec::Error>(())
//! ```

pub mod autoscale;
pub mod error;
pub mod kubernetes;
pub mod rendezvous;
pub mod secret;
pub mod spec;
pub mod status;
pub mod storage;
pub mod volumes;

pub use error::{Error, FieldError, FieldErrors, Result};
/// GPU selectors, health rules and placement (the `moon-gpu` crate, without NVML).
pub use moon_gpu as gpu;
