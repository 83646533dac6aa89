//! One replica's address as a registry reports it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A replica of a service: a stable id (the replica's name), where it
/// listens, and whether its registry calls it ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    /// Stable across address changes: a replica's name or a pod's name.
    pub id: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Ready as the registry sees it (an EndpointSlice's `ready`
    /// condition); the balancer's own health checks gate it further.
    #[serde(default = "ready_by_default")]
    pub ready: bool,
}

fn ready_by_default() -> bool {
    true
}

impl Endpoint {
    /// A ready endpoint.
    pub fn new(id: impl Into<String>, addr: SocketAddr) -> Self {
        Endpoint {
            id: id.into(),
            addr,
            ready: true,
        }
    }
}
