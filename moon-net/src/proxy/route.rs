//! A route: one service's listening address and its replicas, as the agent
//! (or a routes file) gives them to the proxy.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::balancer::{BalancerConfig, ReplicaStatus};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::protocol::UpstreamProtocol;

/// A service behind the proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// The service's name.
    pub service: String,
    /// Where the proxy listens for it: the service's URL.
    pub listen: SocketAddr,
    /// Its replicas.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// What its replicas speak.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Active health checks; with them, a new replica takes requests only
    /// once a check has passed.
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// At zero ready replicas, hold requests this long (milliseconds) for
    /// one to start, instead of answering 503 at once: a service that
    /// scales to zero.
    #[serde(default)]
    pub hold_ms: Option<u64>,
    /// How replicas are weighed and ejected.
    #[serde(default)]
    pub balancer: BalancerConfig,
}

impl Route {
    /// Checks what serde cannot: names, and times that must not be zero.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, message: &str| {
            Err(Error::InvalidRoute {
                field: field.into(),
                message: message.into(),
            })
        };
        if self.service.is_empty()
            || !self
                .service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return invalid("service", "must be letters, digits, '-' and '.', not empty");
        }
        let mut ids = std::collections::HashSet::new();
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            if !ids.insert(endpoint.id.as_str()) {
                return invalid(&format!("endpoints[{i}].id"), "appears twice");
            }
        }
        if let Some(health) = &self.health {
            if health.interval_ms == 0 {
                return invalid("health.intervalMs", "must be at least 1");
            }
            if health.failure_threshold == 0 {
                return invalid("health.failureThreshold", "must be at least 1");
            }
            if health
                .http_path
                .as_deref()
                .is_some_and(|p| !p.starts_with('/'))
            {
                return invalid("health.httpPath", "must start with '/'");
            }
        }
        if self.balancer.outlier.consecutive_failures == 0 {
            return invalid("balancer.outlier.consecutiveFailures", "must be at least 1");
        }
        Ok(())
    }

    /// Whether `other` differs from this route in its replicas only.
    pub(crate) fn same_settings(&self, other: &Route) -> bool {
        self.protocol == other.protocol
            && self.health == other.health
            && self.hold_ms == other.hold_ms
            && self.balancer == other.balancer
    }

    pub(crate) fn hold(&self) -> Option<Duration> {
        self.hold_ms.map(Duration::from_millis)
    }
}

/// How the proxy checks a replica on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// GET this path and expect 2xx or 3xx; without it, a TCP connect.
    #[serde(default)]
    pub http_path: Option<String>,
    /// Between checks of a ready replica, in milliseconds. A replica not
    /// ready yet is checked every 50 ms, so that it starts taking requests
    /// as soon as it can.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// A check not answered within this is a failure, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Failed checks in a row that take a ready replica out.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
}

fn default_interval_ms() -> u64 {
    1_000
}

fn default_timeout_ms() -> u64 {
    1_000
}

fn default_failure_threshold() -> u32 {
    3
}

/// A route now: where it listens and how its replicas are doing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// The service.
    pub service: String,
    /// Where the proxy listens for it.
    pub listen: SocketAddr,
    /// Requests received since the route was made.
    pub requests_total: u64,
    /// Requests being served now.
    pub in_flight: u64,
    /// Requests waiting for a replica to start.
    pub held: u64,
    /// Its replicas.
    pub replicas: Vec<ReplicaStatus>,
}
