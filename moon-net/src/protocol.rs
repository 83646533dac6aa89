//! What a service's replicas speak.

use serde::{Deserialize, Serialize};

/// The protocol replicas speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive: most model servers.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge: gRPC servers.
    Http2,
}
