//! moon-core's one error type. Every variant means something a caller can act
//! on; the Python and CLI layers map them to exceptions and exit codes.

use std::fmt;
use std::path::PathBuf;

pub use moon_spec::error::{FieldError, FieldErrors, PathPart, rule};

/// A `Result` whose error is moon's.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// A job can never fit its tenant's quota or the machine (or, on
    /// Kubernetes, the tenant's `jobs` quota is full), with the numbers.
    #[error("refused: {0}")]
    QuotaExceeded(Box<QuotaRefusal>),
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
    /// no other variant covers (a 5xx, a malformed object); it says whether
    /// trying again can help.
    #[error("kubernetes: {0}")]
    Cluster(ClusterError),
    /// This machine's GPUs could not be read: no NVML here, NVML failed,
    /// or the `MOON_GPU_INVENTORY` file is unreadable or invalid. Worded
    /// as moon-gpu words it (`no NVML on this machine: ...`).
    #[error(transparent)]
    Gpu(#[from] moon_gpu::Error),
    /// A store failed: the object is missing, the path is malformed, the server refused or is
    /// down (see [`moon_storage::Error`]), worded as moon-storage words it.
    #[error(transparent)]
    Storage(#[from] moon_storage::Error),
    /// A request balanced over a service's replicas was not answered: no
    /// replica was ready, or every one tried failed (see [`moon_net::Error`]),
    /// worded as moon-net words it.
    #[error(transparent)]
    Net(#[from] moon_net::Error),
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
        rule: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidSpec {
            kind,
            errors: FieldErrors(vec![FieldError::new(path, rule, message)]),
        }
    }
}

impl From<moon_spec::Error> for Error {
    fn from(error: moon_spec::Error) -> Self {
        match error {
            moon_spec::Error::InvalidSpec { kind, errors } => Error::InvalidSpec { kind, errors },
            moon_spec::Error::NotSupported(message) => Error::NotSupported(message),
            moon_spec::Error::Malformed(message) => {
                Error::Cluster(ClusterError::moon("Malformed", message, false))
            }
            moon_spec::Error::JobFailed { job, phase, reason } => {
                Error::JobFailed { job, phase, reason }
            }
            // moon-spec's enum is non-exhaustive; a variant added there is
            // worded as it words it until it gets one of its own here.
            other => Error::Cluster(ClusterError::moon("Unknown", other.to_string(), false)),
        }
    }
}

/// Why a job was refused for lack of room, with the numbers: which limit
/// (`tenant vision`'s quota, the machine's capacity), of what, how much is
/// in use, how much the job asks and what the limit is. Amounts are written
/// as the spec writes them (`2`, `500m`, `8Gi`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaRefusal {
    /// Whose limit: `tenant vision`, `machine`.
    pub scope: String,
    /// Of what: `cpus`, `memory`, `gpus`, `jobs`.
    pub resource: String,
    /// In use now (`0` when the job could never fit, even alone).
    pub used: String,
    /// What the job asks.
    pub asked: String,
    /// The limit.
    pub limit: String,
    /// The whole sentence, for people.
    pub message: String,
}

impl QuotaRefusal {
    /// A refusal whose sentence is `message`.
    pub fn new(
        scope: impl Into<String>,
        resource: impl Into<String>,
        used: impl Into<String>,
        asked: impl Into<String>,
        limit: impl Into<String>,
        message: impl Into<String>,
    ) -> QuotaRefusal {
        QuotaRefusal {
            scope: scope.into(),
            resource: resource.into(),
            used: used.into(),
            asked: asked.into(),
            limit: limit.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for QuotaRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What went wrong talking to a Kubernetes API server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterError {
    /// The HTTP status of the server's answer; `None` when there was no
    /// answer (unreachable, TLS, a stream that broke) or moon found the
    /// problem itself.
    pub status: Option<u16>,
    /// The server's machine-readable reason (`InternalError`,
    /// `ServiceUnavailable`, `TooManyRequests`), or moon's own when the
    /// server gave none (`Unreachable`, `Malformed`, `WatchEnded`).
    pub reason: String,
    /// The server's message, or what moon saw.
    pub message: String,
    /// Whether the same request may succeed later: the server was
    /// overloaded, restarting or unreachable, not refusing it.
    pub retryable: bool,
}

impl ClusterError {
    /// An answer of the API server. Retrying can help after 429 (too many
    /// requests) and 5xx other than 501 (not implemented).
    pub fn answered(status: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        ClusterError {
            status: Some(status),
            reason: reason.into(),
            message: message.into(),
            retryable: status == 429 || (status >= 500 && status != 501),
        }
    }

    /// A problem with no answer of the server behind it, named by moon.
    pub fn moon(reason: &str, message: impl Into<String>, retryable: bool) -> Self {
        ClusterError {
            status: None,
            reason: reason.to_string(),
            message: message.into(),
            retryable,
        }
    }

    /// The server could not be reached or the connection broke: worth
    /// another try.
    pub fn unreachable(message: impl Into<String>) -> Self {
        ClusterError::moon("Unreachable", message, true)
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} (HTTP {status}, {})", self.message, self.reason),
            None => f.write_str(&self.message),
        }
    }
}
