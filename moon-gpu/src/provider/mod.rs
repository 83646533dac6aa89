//! Where an [`Inventory`] comes from: NVML on a machine with NVIDIA GPUs,
//! or a file for machines without them (tests, laptops, a cluster node
//! described by hand).
//!
//! [`detect`] picks one the same way everywhere: a file when
//! `MOON_GPU_INVENTORY` names one, else NVML. A machine without NVML gets the
//! typed [`Error::NoNvml`](crate::Error::NoNvml), which callers can tell apart
//! from a broken NVML.

pub mod fixed;
#[cfg(feature = "nvml")]
pub mod nvml;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::device::Inventory;
use crate::error::Result;

pub use fixed::{FixedProvider, parse_inventory};
#[cfg(feature = "nvml")]
pub use nvml::{NvmlProvider, XidWatcher};

/// The environment variable that names a static inventory file (YAML or
/// JSON) to use instead of NVML.
pub const INVENTORY_ENV: &str = "MOON_GPU_INVENTORY";

/// A source of GPU inventories.
pub trait GpuProvider: Send + Sync {
    /// The machine's GPUs as they are now, each with its health classified.
    fn inventory(&self) -> Result<Inventory>;
}

/// The provider for this machine, for a one-off look: the file named by
/// `MOON_GPU_INVENTORY` if set, else NVML.
pub fn detect() -> Result<Box<dyn GpuProvider>> {
    detect_from(inventory_file(), false)
}

/// The provider for a long-running process (an agent, a node labeller):
/// as [`detect`], but NVML also watches for XID errors from now on, so
/// that every later inventory lists those seen since.
pub fn detect_watching_xids() -> Result<Box<dyn GpuProvider>> {
    detect_from(inventory_file(), true)
}

/// The file `MOON_GPU_INVENTORY` names, if it names one.
pub fn inventory_file() -> Option<PathBuf> {
    std::env::var_os(INVENTORY_ENV)
        .filter(|value: &OsString| !value.is_empty())
        .map(PathBuf::from)
}

fn detect_from(file: Option<PathBuf>, watch_xids: bool) -> Result<Box<dyn GpuProvider>> {
    if let Some(path) = file {
        return Ok(Box::new(FixedProvider::from_file(path)?));
    }
    nvml_provider(watch_xids)
}

#[cfg(feature = "nvml")]
fn nvml_provider(watch_xids: bool) -> Result<Box<dyn GpuProvider>> {
    let provider = NvmlProvider::new()?;
    if watch_xids {
        Ok(Box::new(provider.watching_xids()?))
    } else {
        Ok(Box::new(provider))
    }
}

/// Built without the `nvml` feature: only a file can describe the GPUs.
#[cfg(not(feature = "nvml"))]
fn nvml_provider(_watch_xids: bool) -> Result<Box<dyn GpuProvider>> {
    Err(crate::Error::NoNvml(format!(
        "moon-gpu was built without its `nvml` feature; name an inventory file in {INVENTORY_ENV}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_file_wins_over_nvml() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/inventory-h100x8.yaml"
        );
        let provider = detect_from(Some(path.into()), true).unwrap();
        assert_eq!(provider.inventory().unwrap().devices.len(), 8);
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_fallback() {
        let error = detect_from(Some("/nonexistent/gpus.yaml".into()), false)
            .err()
            .unwrap();
        assert!(matches!(error, Error::Inventory { .. }), "{error}");
    }

    #[test]
    fn without_a_file_nvml_answers_or_is_missing() {
        // Here (no GPU) NVML is missing; on a GPU machine it answers.
        match detect_from(None, false) {
            Ok(provider) => {
                provider.inventory().unwrap();
            }
            Err(error) => {
                assert!(matches!(error, Error::NoNvml(_)), "{error}");
                assert!(error.to_string().starts_with("no NVML on this machine: "));
            }
        }
    }
}
