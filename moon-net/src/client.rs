//! The balancer as a tower `Service`: client-side balancing for RPC. A hyper
//! client, a tonic channel (`Channel` accepts any such service) or moon's
//! Python `svc.client()` sit on it and reach a service's replicas directly,
//! with no proxy hop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

use crate::balancer::{Balancer, BalancerConfig};
use crate::body::{BoxError, ProxyBody};
use crate::error::Result;
use crate::forward::forward;
use crate::protocol::UpstreamProtocol;
use crate::registry::Registry;

/// Requests balanced over a service's replicas, sent straight to them.
#[derive(Clone, Debug)]
pub struct BalancedClient {
    balancer: Arc<Balancer>,
    protocol: UpstreamProtocol,
    hold: Option<Duration>,
}

impl BalancedClient {
    /// A client over `balancer`'s replicas, which speak `protocol`.
    pub fn new(balancer: Arc<Balancer>, protocol: UpstreamProtocol) -> Self {
        BalancedClient {
            balancer,
            protocol,
            hold: None,
        }
    }

    /// A client over `service` as `registry` lists it, following its
    /// changes. Must be called within a tokio runtime.
    pub fn from_registry(
        registry: &dyn Registry,
        service: &str,
        config: BalancerConfig,
        protocol: UpstreamProtocol,
    ) -> Result<Self> {
        let balancer = Balancer::new(service, config);
        balancer.follow(registry.watch(service)?);
        Ok(BalancedClient::new(balancer, protocol))
    }

    /// Requests that find no ready replica wait up to `timeout` for one
    /// instead of failing at once.
    pub fn hold_when_empty(mut self, timeout: Duration) -> Self {
        self.hold = Some(timeout);
        self
    }

    /// The balancer underneath: its replicas' state and counters.
    pub fn balancer(&self) -> &Arc<Balancer> {
        &self.balancer
    }

    /// Sends `request` (its URI's path and query are kept; scheme and
    /// authority become the chosen replica's).
    pub async fn send(&self, request: Request<ProxyBody>) -> Result<Response<ProxyBody>> {
        forward(&self.balancer, self.protocol, request, self.hold).await
    }
}

/// An answer read whole, for callers that want its bytes rather than a
/// stream (Python's `svc.client()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Its headers, in order, values as text (lossily, if they are not).
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Bytes,
}

impl BalancedClient {
    /// Sends `method path` with `headers` and `body` to a replica and reads
    /// the answer whole. An answer of any status is an answer; an error is a
    /// request no replica answered.
    pub async fn fetch(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Answer> {
        let invalid = |what: &str, error: &dyn std::fmt::Display| {
            crate::Error::InvalidRequest(format!("{what}: {error}"))
        };
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|error| invalid(&format!("method {method:?}"), &error))?;
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(ProxyBody::full(body))
            .map_err(|error| invalid(&format!("{path:?} or its headers"), &error))?;
        let service = self.balancer.service().to_string();
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map_err(|error| crate::Error::Upstream {
                service,
                replica: "?".to_string(),
                message: format!("the answer's body broke off: {error}"),
            })?
            .to_bytes();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

impl<B> tower_service::Service<Request<B>> for BalancedClient
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = crate::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<()>> {
        // The balancer picks per request; there is nothing to wait for here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move { client.send(request.map(ProxyBody::boxed)).await })
    }
}
