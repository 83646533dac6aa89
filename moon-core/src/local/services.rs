//! What makes a service's job different on this machine: a port for its URL
//! and one per replica, `PORT` in each replica's environment, and the route
//! the proxy serves it by.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use moon_net::proxy::{HealthCheck, Route, RouteStatus};
use moon_net::{BalancerConfig, Endpoint, ReplicaState, UpstreamProtocol};

use super::store::{JobRecord, ReplicaRecord};
use crate::backend::{ReplicaPhase, ServiceReplicaStatus, ServiceStatus};
use crate::rendezvous::port_name;
use crate::spec::{Job, REPLICA_ROLE, Service};

/// The name of a service's own port among its job's: where the proxy listens for it.
pub const URL_PORT: &str = "service";

/// How long a request to a service at zero replicas waits for one to start.
const HOLD_MS: u64 = 60_000;

/// The ports a service's job needs: its URL's and one per replica.
pub fn port_names(job: &Job) -> Vec<String> {
    let replicas = job
        .roles
        .iter()
        .find(|r| r.name == REPLICA_ROLE)
        .map_or(0, |r| r.replicas);
    std::iter::once(URL_PORT.to_string())
        .chain((0..replicas).map(|index| port_name(REPLICA_ROLE, index)))
        .collect()
}

/// What a service's replica finds in its environment: `PORT`, where to listen.
pub fn replica_env(job: &JobRecord, index: u32) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(port) = job.ports.get(&port_name(REPLICA_ROLE, index)) {
        env.insert("PORT".to_string(), port.to_string());
    }
    env.insert("MOON_SERVICE".to_string(), job.spec.name.clone());
    env
}

/// The replicas a service's job should have now.
pub fn desired_replicas(job: &JobRecord) -> u32 {
    job.spec
        .roles
        .iter()
        .find(|r| r.name == REPLICA_ROLE)
        .map_or(0, |r| r.replicas)
}

/// Whether the proxy has drained replica `index` of `route`: gone from the
/// route, or draining with nothing in flight.
pub fn drained(seen: &[RouteStatus], route: &str, index: u32) -> bool {
    let name = port_name(REPLICA_ROLE, index);
    let Some(route) = seen.iter().find(|r| r.service == route) else {
        return true;
    };
    match route.replicas.iter().find(|replica| replica.id == name) {
        None => true,
        Some(replica) => replica.state == ReplicaState::Draining && replica.in_flight == 0,
    }
}

/// The proxy's name for a service: unique on the machine, as routes are.
pub fn route_name(tenant: &str, name: &str) -> String {
    format!("{tenant}.{name}")
}

/// Where the proxy listens for a service's job, once admitted.
pub fn url_addr(job: &JobRecord) -> Option<SocketAddr> {
    job.ports
        .get(URL_PORT)
        .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
}

/// The route of a running service: its URL's port, and its replicas whose
/// process runs (the proxy's readiness checks decide which take requests).
pub fn route(job: &JobRecord, service: &Service, replicas: &[ReplicaRecord]) -> Option<Route> {
    let listen = url_addr(job)?;
    let endpoints = replicas
        .iter()
        .filter(|replica| replica.role == REPLICA_ROLE && replica.phase == ReplicaPhase::Running)
        .filter_map(|replica| {
            let port = job.ports.get(&replica.name())?;
            Some(Endpoint::new(
                replica.name(),
                SocketAddr::from(([127, 0, 0, 1], *port)),
            ))
        })
        .collect();
    let readiness = service.readiness_or_default();
    let holds = service
        .autoscale
        .as_ref()
        .is_some_and(|a| a.min_replicas == 0);
    Some(Route {
        service: route_name(&service.tenant, &service.name),
        listen,
        endpoints,
        protocol: UpstreamProtocol::Http1,
        health: Some(HealthCheck {
            http_path: readiness.http_path.clone(),
            interval_ms: u64::from(readiness.period_seconds) * 1000,
            timeout_ms: u64::from(readiness.timeout_seconds) * 1000,
            failure_threshold: readiness.failure_threshold,
        }),
        hold_ms: holds.then_some(HOLD_MS),
        balancer: BalancerConfig::default(),
    })
}

/// A service's status from its job, its replicas and, when the proxy runs,
/// the proxy's view of them (readiness, requests) among `routes`.
pub fn status(
    job: &JobRecord,
    service: &Service,
    replicas: &[ReplicaRecord],
    routes: &[RouteStatus],
) -> ServiceStatus {
    let name = route_name(&service.tenant, &service.name);
    let route = routes.iter().find(|route| route.service == name);
    let seen = |name: &str| route.and_then(|r| r.replicas.iter().find(|seen| seen.id == name));
    let replicas: Vec<ServiceReplicaStatus> = replicas
        .iter()
        .filter(|replica| replica.role == REPLICA_ROLE)
        .map(|replica| {
            let name = replica.name();
            let proxy = seen(&name);
            ServiceReplicaStatus {
                ready: replica.phase == ReplicaPhase::Running
                    && proxy.is_some_and(|p| p.state == ReplicaState::Ready),
                address: job.ports.get(&name).map(|port| format!("127.0.0.1:{port}")),
                attempts: replica.attempts,
                in_flight: proxy.map_or(0, |p| u64::from(p.in_flight)),
                requests: proxy.map_or(0, |p| p.requests),
                phase: replica.phase,
                name,
            }
        })
        .collect();
    ServiceStatus {
        tenant: service.tenant.clone(),
        name: service.name.clone(),
        phase: job.phase,
        reason: job.reason.clone(),
        message: job.message.clone(),
        url: url_addr(job)
            .filter(|_| job.phase == crate::backend::Phase::Running)
            .map(|addr| format!("http://{addr}")),
        desired_replicas: job.spec.roles.iter().map(|r| r.replicas).sum(),
        ready_replicas: replicas.iter().filter(|r| r.ready).count() as u32,
        created_ms: job.created_ms,
        replicas,
    }
}
