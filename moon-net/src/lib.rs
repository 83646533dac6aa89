//! moon-net: networking for moon's workloads, free of any Kubernetes client.
//!
//! - [`policy`]: network policies as types (Kubernetes, Calico `projectcalico.org/v3`,
//!   Multus attachments), Calico's selector language, and an evaluator that answers "may
//!   A reach B on port P, and which rule says so". Pure: it builds without the `proxy`
//!   feature, so a service that only renders or checks policies embeds it alone.
//! - [`underlay`]: Multus attachments of pods to host interfaces (macvlan, ipvlan, VLAN).
//! - [`free_loopback_port`]: ports that jobs on one machine rendezvous on.
//! - [`Balancer`]: a service's replicas, picked by power of two choices over
//!   peak-EWMA latency, with readiness gating, outlier ejection and draining.
//! - [`Registry`]: where a balancer learns its replicas (a static list here;
//!   the local agent's table and Kubernetes EndpointSlices live above, in moon-core).
//! - [`BalancedClient`]: the balancer as a tower `Service`, for RPC clients.
//! - [`proxy`]: the HTTP proxy in front of services (the `moon-proxy` binary).

/// Items of the `proxy` feature: the balancer, the proxy and their parts.
macro_rules! with_proxy {
    ($($item:item)*) => { $( #[cfg(feature = "proxy")] $item )* };
}

mod error;
pub mod policy;
mod ports;
pub mod underlay;

pub use error::{Error, Result};
pub use ports::free_loopback_port;

with_proxy! {
    mod balancer;
    mod body;
    mod client;
    mod endpoint;
    mod ewma;
    mod exposition;
    mod forward;
    mod metrics;
    mod outlier;
    mod protocol;
    pub mod proxy;
    mod registry;
    mod retry;
    mod upstream;
    pub use balancer::{Balancer, BalancerConfig, Lease, ReplicaState, ReplicaStatus};
    pub use body::{BoxError, ProxyBody};
    pub use client::{Answer, BalancedClient};
    pub use endpoint::Endpoint;
    pub use exposition::render_prometheus;
    pub use metrics::Histogram;
    pub use outlier::OutlierPolicy;
    pub use protocol::UpstreamProtocol;
    pub use registry::{Registry, StaticRegistry, publish};
    pub use retry::RetryBudget;
}
