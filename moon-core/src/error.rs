//! moon-core's one error type. Every variant means something a caller can act
//! on; the Python and CLI layers map them to exceptions and exit codes.

use std::fmt;
use std::path::PathBuf;

/// A `Result` whose error is moon's.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One broken rule at one place in a spec: `roles[1].replicas: must be at least 1, got 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where, as a path into the spec (`roles[1].replicas`); empty for the whole spec.
    pub path: String,
    /// The rule and what was found.
    pub message: String,
}

impl FieldError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All broken rules of one spec, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Why moon's state database failed, in moon's own words: the database
/// library's error stays inside moon-core, so that it can change without
/// changing this API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseError {
    message: String,
    busy: bool,
}

impl DatabaseError {
    /// A failure described by `message`; `busy` when another process held the
    /// database (busy or locked) past the wait, so that trying again may work.
    pub fn new(message: impl Into<String>, busy: bool) -> Self {
        DatabaseError {
            message: message.into(),
            busy,
        }
    }

    /// What failed, as the database said it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the database was busy or locked by another process: the
    /// operation may succeed if tried again.
    pub fn is_busy(&self) -> bool {
        self.busy
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DatabaseError {}

/// What can go wrong in moon.
#[derive(Debug, thiserror::Error)]
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
    Database(#[source] DatabaseError),
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
