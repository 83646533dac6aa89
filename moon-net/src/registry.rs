//! Where a balancer learns a service's replicas, as they change.
//!
//! Three sources feed the same balancer: a static list (here), the local
//! agent's service table and Kubernetes EndpointSlices (both in moon-core,
//! which has the agent's protocol and the Kubernetes client; moon-net has
//! neither).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use crate::balancer::Balancer;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// A source of services' endpoints.
pub trait Registry: Send + Sync {
    /// The endpoints of `service` now, and each change after.
    fn watch(&self, service: &str) -> Result<watch::Receiver<Vec<Endpoint>>>;
}

/// Hands `endpoints` to a service's watchers, only if they differ from what
/// the watchers last saw: a registry that reads its source again and again
/// wakes its balancers only on a change.
pub fn publish(sender: &watch::Sender<Vec<Endpoint>>, endpoints: Vec<Endpoint>) {
    sender.send_if_modified(|seen| {
        let changed = *seen != endpoints;
        if changed {
            *seen = endpoints;
        }
        changed
    });
}

/// Endpoints given by hand: a fixed list, or one a program updates.
#[derive(Debug, Default)]
pub struct StaticRegistry {
    services: Mutex<HashMap<String, watch::Sender<Vec<Endpoint>>>>,
}

impl StaticRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        StaticRegistry::default()
    }

    /// Sets `service`'s endpoints; watchers see the change.
    pub fn set(&self, service: &str, endpoints: Vec<Endpoint>) {
        let mut services = self.services.lock().expect("registry lock");
        match services.get(service) {
            Some(sender) => {
                sender.send_replace(endpoints);
            }
            None => {
                services.insert(service.to_owned(), watch::channel(endpoints).0);
            }
        }
    }
}

impl Registry for StaticRegistry {
    fn watch(&self, service: &str) -> Result<watch::Receiver<Vec<Endpoint>>> {
        let services = self.services.lock().expect("registry lock");
        services
            .get(service)
            .map(watch::Sender::subscribe)
            .ok_or_else(|| Error::UnknownService(service.to_owned()))
    }
}

impl Balancer {
    /// Keeps the balancer's replicas equal to `endpoints` as they change,
    /// on a task that ends when the source does or the balancer is dropped.
    /// Must be called within a tokio runtime.
    pub fn follow(self: &Arc<Self>, mut endpoints: watch::Receiver<Vec<Endpoint>>) {
        self.set_endpoints(endpoints.borrow_and_update().clone());
        let balancer: Weak<Balancer> = Arc::downgrade(self);
        tokio::spawn(async move {
            while endpoints.changed().await.is_ok() {
                let Some(balancer) = balancer.upgrade() else {
                    return;
                };
                balancer.set_endpoints(endpoints.borrow_and_update().clone());
            }
        });
    }
}
