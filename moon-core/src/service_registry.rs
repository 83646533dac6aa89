//! A [`Registry`] over any backend: a service's replicas as the backend's
//! status lists them (on this machine, the agent's table of the service's
//! replicas and ports; on a cluster, its EndpointSlices), read again every
//! half second while someone follows it. Requests balanced over it go
//! straight to the replicas, with no proxy in the path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use moon_net::{Endpoint, Registry, publish};
use tokio::sync::watch;

use crate::backend::Backend;
use crate::error::Error;
use crate::status::ServiceStatus;

/// How often a followed service's status is read.
const INTERVAL: Duration = Duration::from_millis(500);

/// Services' replicas as a backend reports them; a service is named
/// `tenant/name`.
#[derive(Clone)]
pub struct BackendRegistry {
    backend: Arc<dyn Backend>,
}

impl BackendRegistry {
    /// A registry over `backend`'s services.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        BackendRegistry { backend }
    }
}

impl Registry for BackendRegistry {
    /// Starts following the service on the current tokio runtime; it ends
    /// when every receiver is gone or the service is deleted. Until its
    /// first status is read the service has no endpoints.
    fn watch(&self, service: &str) -> moon_net::Result<watch::Receiver<Vec<Endpoint>>> {
        let Some((tenant, name)) = service.split_once('/') else {
            return Err(moon_net::Error::UnknownService(format!(
                "{service} (name a service as tenant/name)"
            )));
        };
        let (tenant, name) = (tenant.to_string(), name.to_string());
        let backend = self.backend.clone();
        let (sender, receiver) = watch::channel(Vec::new());
        tokio::spawn(async move {
            loop {
                let endpoints = match backend.get_service(&tenant, &name).await {
                    Ok(status) => endpoints_of(&status),
                    Err(Error::NotFound { .. }) => {
                        sender.send_replace(Vec::new());
                        return;
                    }
                    // Unreachable for now (the agent restarting): keep what was seen.
                    Err(_) => {
                        tokio::select! {
                            () = sender.closed() => return,
                            () = tokio::time::sleep(INTERVAL) => continue,
                        }
                    }
                };
                publish(&sender, endpoints);
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(INTERVAL) => {}
                }
            }
        });
        Ok(receiver)
    }
}

/// A service's replicas that have an address, ready as the status says.
pub fn endpoints_of(status: &ServiceStatus) -> Vec<Endpoint> {
    status
        .replicas
        .iter()
        .filter_map(|replica| {
            let addr: SocketAddr = replica.address.as_deref()?.parse().ok()?;
            let mut endpoint = Endpoint::new(replica.name.clone(), addr);
            endpoint.ready = replica.ready;
            Some(endpoint)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Phase, ReplicaPhase, ServiceReplicaStatus};

    fn replica(name: &str, address: Option<&str>, ready: bool) -> ServiceReplicaStatus {
        ServiceReplicaStatus {
            name: name.into(),
            phase: ReplicaPhase::Running,
            ready,
            address: address.map(String::from),
            attempts: 1,
            in_flight: 0,
            requests: 0,
        }
    }

    #[test]
    fn replicas_with_an_address_become_endpoints_ready_as_the_status_says() {
        let status = ServiceStatus {
            tenant: "vision".into(),
            name: "mnist".into(),
            phase: Phase::Running,
            reason: None,
            message: None,
            url: None,
            desired_replicas: 3,
            ready_replicas: 1,
            created_ms: 0,
            replicas: vec![
                replica("replica-0", Some("127.0.0.1:40001"), true),
                replica("replica-1", Some("127.0.0.1:40002"), false),
                replica("replica-2", None, false),
            ],
        };
        let found: Vec<(String, String, bool)> = endpoints_of(&status)
            .into_iter()
            .map(|e| (e.id, e.addr.to_string(), e.ready))
            .collect();
        assert_eq!(
            found,
            [
                ("replica-0".into(), "127.0.0.1:40001".into(), true),
                ("replica-1".into(), "127.0.0.1:40002".into(), false),
            ]
        );
    }
}
