//! moon-core's one error type. Every variant means something a caller can act
//! on; the Python and CLI layers map them to exceptions and exit codes.

use std::path::PathBuf;

pub use moon_spec::{FieldError, FieldErrors};

/// A `Result` whose error is moon's.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in moon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec broke one or more rules.
    #[error("invalid {kind}: {errors}")]
    InvalidSpec {
        /// `job`, `tenant` or `config`.
        kind: &'static str,
        /// Every broken rule.
        errors: FieldErrors,
    },
    /// A named thing does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// `tenant` or `job`.
        kind: &'static str,
        /// Its name (`vision/xgb` for jobs).
        name: String,
    },
    /// A thing with that name exists already.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// `job`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A job can never fit its tenant's quota or the machine.
    #[error("refused: {0}")]
    QuotaExceeded(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The request conflicts with the current state (e.g. cancel after the end).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend does not offer this (yet); the message says what, on
    /// which backend, and why.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A job ended Failed or Cancelled while being waited for.
    #[error("job {job} {phase}: {reason}")]
    JobFailed {
        /// `tenant/name`.
        job: String,
        /// `failed` or `cancelled`.
        phase: String,
        /// Why, as recorded.
        reason: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {seconds:.1}s waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        seconds: f64,
    },
    /// A file or socket operation failed.
    #[error("{context} {path:?}: {source}")]
    Io {
        /// What moon was doing.
        context: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// moon's state database failed.
    #[error("state database: {0}")]
    Database(#[from] rusqlite::Error),
    /// moon's background agent could not be reached or started.
    #[error("agent: {0}")]
    Agent(String),
    /// The Kubernetes API server could not be reached, or answered in a way
    /// no other variant covers (a 5xx, a malformed object).
    #[error("kubernetes: {0}")]
    Cluster(String),
    /// This machine's GPUs could not be read: no NVML here, NVML failed,
    /// or the `MOON_GPU_INVENTORY` file is unreadable or invalid. Worded
    /// as moon-gpu words it (`no NVML on this machine: ...`).
    #[error(transparent)]
    Gpu(#[from] moon_gpu::Error),
}

impl Error {
    /// An `Io` error with its context.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// A one-error `InvalidSpec`.
    pub fn invalid(
        kind: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidSpec {
            kind,
            errors: FieldErrors(vec![FieldError::new(path, message)]),
        }
    }
}

impl From<moon_spec::Error> for Error {
    fn from(error: moon_spec::Error) -> Self {
        match error {
            moon_spec::Error::InvalidSpec { kind, errors } => Error::InvalidSpec { kind, errors },
            moon_spec::Error::NotSupported(message) => Error::NotSupported(message),
            moon_spec::Error::Malformed(message) => Error::Cluster(message),
            moon_spec::Error::JobFailed { job, phase, reason } => {
                Error::JobFailed { job, phase, reason }
            }
            // moon-spec's enum is non-exhaustive; a variant added there is
            // worded as it words it until it gets one of its own here.
            other => Error::Cluster(other.to_string()),
        }
    }
}
