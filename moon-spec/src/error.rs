//! moon-spec's one error type: what can be wrong with a spec or with an
//! object moon reads back, found without any IO. moon-core's error converts
//! from it, so callers of the facade see one enum.

use std::fmt;

/// A `Result` whose error is moon-spec's.
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

/// What can go wrong in moon-spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// A spec asks for something the chosen rendering cannot express; the
    /// message says what and why.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// An object read back does not hold what moon wrote into it (an
    /// anchor without its spec, say).
    #[error("malformed object: {0}")]
    Malformed(String),
    /// A job ended Failed or Cancelled ([`JobStatus::into_result`](crate::status::JobStatus::into_result)).
    #[error("job {job} {phase}: {reason}")]
    JobFailed {
        /// `tenant/name`.
        job: String,
        /// `failed` or `cancelled`.
        phase: String,
        /// Why, as recorded.
        reason: String,
    },
}

impl Error {
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
