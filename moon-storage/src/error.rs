//! The one error type every store returns.
//!
//! Variants name what went wrong for the caller (the object is missing, the path is malformed, the
//! server is down), never which library noticed it: each backend maps its own errors into these in
//! one place. Messages never carry credentials: URLs are redacted before they are stored here.

use std::ops::Range;

/// What a store operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object exists at `path`.
    #[error("no object at '{path}'")]
    NotFound {
        /// The path that was asked for.
        path: String,
    },
    /// An object already exists where the operation needed none.
    #[error("an object already exists at '{path}'")]
    AlreadyExists {
        /// The path that is taken.
        path: String,
    },
    /// The backend refused access to `path`.
    #[error("permission denied for '{path}': {message}")]
    PermissionDenied {
        /// The path that was refused.
        path: String,
        /// Why, in the backend's words.
        message: String,
    },
    /// The store's current state does not allow the operation on `path` (for example, a
    /// filesystem cannot hold an object at `a` and another at `a/b`).
    #[error("precondition failed for '{path}': {message}")]
    PreconditionFailed {
        /// The path the operation was on.
        path: String,
        /// Which condition did not hold.
        message: String,
    },
    /// The store is out of space or the caller's quota is used up.
    #[error("quota exceeded: {message}")]
    QuotaExceeded {
        /// The backend's words.
        message: String,
    },
    /// A path was refused before any backend saw it.
    #[error("invalid path '{path}': {reason}")]
    InvalidPath {
        /// The refused path, with control characters escaped.
        path: String,
        /// The rule it broke.
        reason: String,
    },
    /// A byte range that starts past the end of the object, or ends before it starts.
    #[error("invalid range {}..{} for '{path}' of {size} bytes", range.start, range.end)]
    InvalidRange {
        /// The object read.
        path: String,
        /// The range asked for.
        range: Range<u64>,
        /// The object's size.
        size: u64,
    },
    /// A store URL could not be understood.
    #[error("invalid store URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL, with any user information replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend could not be reached or failed while serving the request.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// Which backend (`local`, `memory`, `seaweedfs`, ...).
        backend: String,
        /// The server's or operating system's own words.
        message: String,
    },
    /// The backend does not offer this operation.
    #[error("{backend} does not support {operation}")]
    NotSupported {
        /// Which backend.
        backend: String,
        /// The operation asked for.
        operation: String,
    },
}

/// A store result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub(crate) fn not_supported(backend: &str, operation: &str) -> Self {
        Error::NotSupported {
            backend: backend.to_string(),
            operation: operation.to_string(),
        }
    }
}
