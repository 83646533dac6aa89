//! moon-gpu's one error type.

use std::path::PathBuf;

/// Results of moon-gpu.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in moon-gpu.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A GPU selector string that does not parse; `column` counts from 1.
    #[error("gpu selector {input:?}, column {column}: {message}")]
    InvalidSelector {
        /// The whole string.
        input: String,
        /// Where it went wrong, from 1.
        column: usize,
        /// What was expected there.
        message: String,
    },
    /// The NVIDIA management library is not installed or not loadable here.
    #[error("no NVML on this machine: {0}")]
    NoNvml(String),
    /// NVML answered with an error.
    #[error("NVML: {0}")]
    Nvml(String),
    /// A static inventory file that cannot be read or parsed.
    #[error("GPU inventory {path:?}: {message}")]
    Inventory {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A static inventory file that parses but is wrong at `field`
    /// (`devices[3].memoryTotalMib`).
    #[error("GPU inventory {path:?}, {field}: {message}")]
    InvalidInventory {
        /// The file.
        path: PathBuf,
        /// Where in the file, as a path of keys and indices.
        field: String,
        /// What is wrong there.
        message: String,
    },
}
