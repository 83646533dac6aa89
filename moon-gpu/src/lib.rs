//! moon-gpu: GPU inventory, health and placement, on its own: it knows
//! nothing of moon's jobs or backends, which use it.
//!
//! Selectors, health rules and placement are pure; reading GPUs through NVML
//! is the `nvml` feature (on by default), which a program that only parses
//! selectors or places jobs on inventories it is given turns off.

pub mod device;
mod error;
pub mod health;
pub mod labels;
pub mod placement;
pub mod provider;
pub mod selector;

pub use device::{GpuDevice, HealthCounters, Inventory, MigMode, ThrottleReason, XidEvent};
pub use error::{Error, Result};
pub use health::{Health, HealthStatus, classify};
pub use labels::node_labels;
pub use placement::{MachineGpu, NoFit, NodeGpus, ReplicaDevices};
pub use provider::{FixedProvider, GpuProvider, detect, detect_watching_xids};
#[cfg(feature = "nvml")]
pub use provider::{NvmlProvider, XidWatcher};
pub use selector::{ComputeCapability, GpuSelector, model_matches};
