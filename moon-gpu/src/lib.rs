//! moon-gpu: GPU inventory, health and placement, on its own: it knows
//! nothing of moon's jobs or backends, which use it.

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
pub use provider::{
    FixedProvider, GpuProvider, NvmlProvider, XidWatcher, detect, detect_watching_xids,
};
pub use selector::{ComputeCapability, GpuSelector, model_matches};
