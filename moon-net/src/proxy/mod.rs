//! The HTTP proxy in front of services: a listener per service, the
//! balancer behind it, active health checks, and an admin API through which
//! the local agent keeps the routes in step with its replicas.
//!
//! The `moon-proxy` binary runs one [`Proxy`]; it is a process of its own so
//! that services keep answering while the agent is down or restarting.

mod admin;
mod admin_client;
mod health;
mod listener;
mod process;
mod route;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::balancer::{Balancer, BalancerConfig};
use crate::error::{Error, Result};
use crate::exposition::render_prometheus;

pub use admin::serve_admin;
pub use admin_client::AdminClient;
pub use process::{ProxyOptions, read_routes, run};
pub use route::{HealthCheck, Route, RouteStatus};

/// The routes a proxy serves.
#[derive(Debug, Default)]
pub struct Proxy {
    routes: Mutex<BTreeMap<String, RouteEntry>>,
}

#[derive(Debug)]
struct RouteEntry {
    route: Route,
    balancer: Arc<Balancer>,
    /// What the listener's requests use; swapped when settings change.
    context: Arc<RwLock<Arc<listener::RouteContext>>>,
    /// Turned true to close the listener and its connections, gracefully.
    closing: watch::Sender<bool>,
    health: Option<JoinHandle<()>>,
}

impl Drop for RouteEntry {
    fn drop(&mut self) {
        self.closing.send_replace(true);
        if let Some(health) = &self.health {
            health.abort();
        }
    }
}

impl Proxy {
    /// A proxy with no routes.
    pub fn new() -> Arc<Self> {
        Arc::new(Proxy::default())
    }

    /// Makes or updates `route`. Its listener is bound anew only when the
    /// address changes, and when only the replicas change those that stay
    /// keep their state: an update (a replica added, one draining) loses no
    /// request. Must be called within a tokio runtime.
    pub fn apply(&self, route: Route) -> Result<RouteStatus> {
        route.validate()?;
        let mut routes = self.routes.lock().expect("routes lock");
        if let Some(entry) = routes.get_mut(&route.service) {
            let same_address = entry.route.listen == route.listen || route.listen.port() == 0;
            if same_address && entry.route.same_settings(&route) {
                entry.balancer.set_endpoints(route.endpoints.clone());
                entry.route.endpoints = route.endpoints;
                return Ok(status_of(&entry.balancer, entry.route.listen));
            }
            if same_address {
                // New settings, same URL: requests from here on, on
                // connections already open too, go through a new balancer.
                let listen = entry.route.listen;
                let (context, health) = route_parts(&route);
                *entry.context.write().expect("context lock") = Arc::clone(&context);
                if let Some(old) = std::mem::replace(&mut entry.health, health) {
                    old.abort();
                }
                entry.balancer = Arc::clone(&context.balancer);
                entry.route = Route { listen, ..route };
                return Ok(status_of(&entry.balancer, listen));
            }
            routes.remove(&route.service);
        }
        let listener = std::net::TcpListener::bind(route.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .map_err(|source| Error::Bind {
                addr: route.listen,
                source,
            })?;
        let listen = listener.local_addr()?;
        let (context, health) = route_parts(&route);
        let shared = Arc::new(RwLock::new(Arc::clone(&context)));
        let (closing, closing_seen) = watch::channel(false);
        tokio::spawn(listener::serve(listener, Arc::clone(&shared), closing_seen));
        let entry = RouteEntry {
            route: Route { listen, ..route },
            balancer: Arc::clone(&context.balancer),
            context: shared,
            closing,
            health,
        };
        let status = status_of(&entry.balancer, listen);
        routes.insert(entry.route.service.clone(), entry);
        Ok(status)
    }

    /// Removes a service's route: its listener closes; requests in flight
    /// finish. Returns whether there was one.
    pub fn remove(&self, service: &str) -> bool {
        self.routes
            .lock()
            .expect("routes lock")
            .remove(service)
            .is_some()
    }

    /// Every route now.
    pub fn status(&self) -> Vec<RouteStatus> {
        let routes = self.routes.lock().expect("routes lock");
        routes
            .values()
            .map(|e| status_of(&e.balancer, e.route.listen))
            .collect()
    }

    /// One route now.
    pub fn route_status(&self, service: &str) -> Option<RouteStatus> {
        let routes = self.routes.lock().expect("routes lock");
        routes
            .get(service)
            .map(|e| status_of(&e.balancer, e.route.listen))
    }

    /// The balancer of a service's route.
    pub fn balancer(&self, service: &str) -> Option<Arc<Balancer>> {
        let routes = self.routes.lock().expect("routes lock");
        routes.get(service).map(|e| Arc::clone(&e.balancer))
    }

    /// Every route's metrics, in Prometheus's text format.
    pub fn metrics(&self) -> String {
        let balancers: Vec<Arc<Balancer>> = {
            let routes = self.routes.lock().expect("routes lock");
            routes.values().map(|e| Arc::clone(&e.balancer)).collect()
        };
        render_prometheus(balancers.iter().map(Arc::as_ref))
    }
}

/// A route's balancer, the context its requests need, and its health checks.
fn route_parts(route: &Route) -> (Arc<listener::RouteContext>, Option<JoinHandle<()>>) {
    let config = BalancerConfig {
        gate_on_health: route.health.is_some() || route.balancer.gate_on_health,
        ..route.balancer.clone()
    };
    let balancer = Balancer::new(route.service.clone(), config);
    balancer.set_endpoints(route.endpoints.clone());
    let health = route
        .health
        .clone()
        .map(|check| tokio::spawn(health::check_replicas(Arc::downgrade(&balancer), check)));
    let context = Arc::new(listener::RouteContext {
        balancer,
        protocol: route.protocol,
        hold: route.hold(),
    });
    (context, health)
}

fn status_of(balancer: &Balancer, listen: std::net::SocketAddr) -> RouteStatus {
    RouteStatus {
        service: balancer.service().to_owned(),
        listen,
        requests_total: balancer.requests_total(),
        in_flight: balancer.requests_in_flight(),
        held: balancer.requests_held(),
        replicas: balancer.status(),
    }
}
