//! Client-side balancing on a cluster: a [`Registry`] whose services are
//! the EndpointSlices of their Kubernetes Service, followed by watch. A
//! program in the cluster balances its own requests over a service's ready
//! pods with moon's balancer (`BalancedClient`, or `Balancer::follow`),
//! without a proxy in the path, as gRPC's client-side balancing does.

use std::net::{IpAddr, SocketAddr};

use futures::StreamExt;
use k8s_openapi::api::discovery::v1 as discovery;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::watcher::{self, watcher};
use moon_net::{Endpoint, Registry, publish};
use tokio::sync::watch;

use moon_spec::kubernetes::HTTP_PORT;

/// The label the EndpointSlice controller puts on a Service's slices.
pub const SLICE_SERVICE_LABEL: &str = "kubernetes.io/service-name";

/// Services' endpoints from their EndpointSlices; a service is named
/// `tenant/name`.
#[derive(Clone)]
pub struct EndpointSliceRegistry {
    client: kube::Client,
}

impl EndpointSliceRegistry {
    /// A registry reading the cluster `client` talks to, with its rights:
    /// `list` and `watch` of EndpointSlices in the services' namespaces.
    pub fn new(client: kube::Client) -> Self {
        EndpointSliceRegistry { client }
    }
}

impl Registry for EndpointSliceRegistry {
    /// Starts following the service's slices on the current tokio runtime;
    /// the watch ends when every receiver is gone. Until the first list
    /// arrives the service has no endpoints.
    fn watch(&self, service: &str) -> moon_net::Result<watch::Receiver<Vec<Endpoint>>> {
        let Some((tenant, name)) = service.split_once('/') else {
            return Err(moon_net::Error::UnknownService(format!(
                "{service} (name a service on a cluster as tenant/name)"
            )));
        };
        let api = Api::<discovery::EndpointSlice>::namespaced(self.client.clone(), tenant);
        let config = watcher::Config::default().labels(&format!("{SLICE_SERVICE_LABEL}={name}"));
        let (reader, writer) = reflector::store();
        let (sender, receiver) = watch::channel(Vec::new());
        tokio::spawn(async move {
            let events = reflector(writer, watcher(api, config).default_backoff());
            futures::pin_mut!(events);
            loop {
                tokio::select! {
                    () = sender.closed() => return,
                    event = events.next() => match event {
                        None => return,
                        // The watcher retries by itself; its errors change nothing seen.
                        Some(Err(_)) => continue,
                        Some(Ok(_)) => {
                            let slices = reader.state();
                            publish(&sender, endpoints_of(slices.iter().map(|slice| slice.as_ref())));
                        }
                    },
                }
            }
        });
        Ok(receiver)
    }
}

/// The endpoints `slices` list, on their `http` port (or their only one),
/// ready as their conditions say, named by their pod, in a stable order.
pub fn endpoints_of<'a>(
    slices: impl IntoIterator<Item = &'a discovery::EndpointSlice>,
) -> Vec<Endpoint> {
    let mut endpoints = Vec::new();
    for slice in slices {
        let ports = slice.ports.as_deref().unwrap_or_default();
        let port = ports
            .iter()
            .find(|port| port.name.as_deref() == Some(HTTP_PORT))
            .or_else(|| (ports.len() == 1).then(|| &ports[0]))
            .and_then(|port| port.port)
            .and_then(|port| u16::try_from(port).ok());
        let Some(port) = port else { continue };
        for endpoint in &slice.endpoints {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|conditions| conditions.ready)
                .unwrap_or(true);
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    continue;
                };
                let id = endpoint
                    .target_ref
                    .as_ref()
                    .and_then(|target| target.name.clone())
                    .unwrap_or_else(|| address.clone());
                let mut found = Endpoint::new(id, SocketAddr::new(ip, port));
                found.ready = ready;
                endpoints.push(found);
            }
        }
    }
    endpoints.sort_by(|a, b| a.id.cmp(&b.id).then(a.addr.cmp(&b.addr)));
    endpoints.dedup();
    endpoints
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn slices_become_endpoints_on_the_http_port_with_their_readiness() {
        let slices: Vec<discovery::EndpointSlice> = serde_json::from_value(json!([
            {
                "metadata": {"name": "web-a"},
                "addressType": "IPv4",
                "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}],
                "endpoints": [
                    {"addresses": ["10.0.0.8"], "conditions": {"ready": false},
                     "targetRef": {"kind": "Pod", "name": "web-7d9-b"}},
                    {"addresses": ["10.0.0.7"], "conditions": {"ready": true},
                     "targetRef": {"kind": "Pod", "name": "web-7d9-a"}},
                ],
            },
            {
                "metadata": {"name": "web-b"},
                "addressType": "IPv4",
                "ports": [{"port": 8080}],
                "endpoints": [{"addresses": ["10.0.0.9"]}],
            },
            // A slice the controller has not given ports yet is skipped.
            {"metadata": {"name": "web-c"}, "addressType": "IPv4",
             "endpoints": [{"addresses": ["10.0.0.10"]}]},
        ]))
        .unwrap();
        let found: Vec<(String, String, bool)> = endpoints_of(&slices)
            .into_iter()
            .map(|e| (e.id, e.addr.to_string(), e.ready))
            .collect();
        assert_eq!(
            found,
            [
                ("10.0.0.9".into(), "10.0.0.9:8080".into(), true),
                ("web-7d9-a".into(), "10.0.0.7:8080".into(), true),
                ("web-7d9-b".into(), "10.0.0.8:8080".into(), false),
            ]
        );
    }
}
