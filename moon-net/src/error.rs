//! moon-net's one error type.

use std::net::SocketAddr;

/// Results of moon-net.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in moon-net.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A service has no replica that is ready, healthy and not draining.
    #[error("service {service:?} has no ready replica")]
    NoReadyReplica {
        /// The service.
        service: String,
    },
    /// Every attempt at a replica failed (the last error is given).
    #[error("service {service:?}: replica {replica} failed: {message}")]
    Upstream {
        /// The service.
        service: String,
        /// The last replica tried, as `id@address`.
        replica: String,
        /// What went wrong there.
        message: String,
    },
    /// A request that cannot be sent as given (a method or header that is
    /// not valid HTTP), with what is wrong.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A registry does not know the service.
    #[error("no service {0:?} in the registry")]
    UnknownService(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A route or configuration that is not valid, with its field.
    #[error("{field}: {message}")]
    InvalidRoute {
        /// The field path (`routes[2].listen`).
        field: String,
        /// The rule it breaks.
        message: String,
    },
    /// A proxy's admin API refused or failed a call.
    #[error("proxy admin at {addr}: {message}")]
    Admin {
        /// The admin API's address.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// A network policy, selector or address that is not valid: the field
    /// path (`spec.ingress[0].source.selector`), the column of the fault in
    /// the field's text where there is one (from 1), and the rule broken.
    #[error("{field}{}: {message}", column.map(|c| format!(" (column {c})")).unwrap_or_default())]
    InvalidPolicy {
        /// The field path.
        field: String,
        /// Where in the field's text, counted in characters from 1.
        column: Option<usize>,
        /// The rule it breaks.
        message: String,
    },
    /// Other input/output.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
