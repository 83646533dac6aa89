//! moon-gpu: GPU inventory, health and placement, on its own: it knows
//! nothing of moon's jobs or backends, which use it.

mod error;
pub mod selector;

pub use error::{Error, Result};
pub use selector::{ComputeCapability, GpuSelector, model_matches};
