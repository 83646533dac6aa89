//! Sending one request through a balancer: pick a replica, send, and retry
//! on another replica when that is safe and the budget allows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::balancer::{Balancer, Lease};
use crate::body::ProxyBody;
use crate::error::Error;

/// The HTTP client to replicas, with its connection pool.
pub(crate) type UpstreamClient = Client<HttpConnector, ProxyBody>;

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

/// A client to replicas: pooled keep-alive connections, no Nagle delay.
pub(crate) fn upstream_client(protocol: UpstreamProtocol) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(Duration::from_secs(60));
    if protocol == UpstreamProtocol::Http2 {
        builder.http2_only(true);
    }
    builder.build(connector)
}

/// At most this many replicas are tried for one request.
const MAX_ATTEMPTS: usize = 3;

/// Headers that describe one connection, not the request: never forwarded.
const HOP_BY_HOP: [HeaderName; 5] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Sends `request` to one of `balancer`'s replicas. Requests that are
/// idempotent by their method and have no body are retried on another
/// replica when one does not answer or answers 502/503/504, within the
/// service's retry budget; no other request is ever sent twice. With
/// `hold`, a request that finds no ready replica waits that long for one.
pub(crate) async fn forward(
    balancer: &Arc<Balancer>,
    client: &UpstreamClient,
    protocol: UpstreamProtocol,
    request: Request<ProxyBody>,
    hold: Option<Duration>,
) -> Result<Response<ProxyBody>, Error> {
    let arrived = Instant::now();
    let counters = balancer.counters();
    counters.requests.fetch_add(1, Ordering::Relaxed);
    balancer.retry_budget().deposit();

    let (parts, body) = request.into_parts();
    let retryable = is_idempotent(&parts.method) && http_body::Body::is_end_stream(&body);
    let mut body = Some(body);
    let mut tried: Vec<String> = Vec::new();
    let mut held = false;
    loop {
        let lease = if tried.is_empty() {
            match hold {
                Some(timeout) => balancer.pick_or_wait(timeout).await.map(|(lease, waited)| {
                    held = waited;
                    lease
                }),
                None => balancer.pick(&[]),
            }
        } else {
            let tried: Vec<&str> = tried.iter().map(String::as_str).collect();
            balancer.pick(&tried)
        };
        let Some(lease) = lease else {
            counters.unavailable.fetch_add(1, Ordering::Relaxed);
            return Err(Error::NoReadyReplica {
                service: balancer.service().to_owned(),
            });
        };

        let mut upstream = Request::new(if retryable {
            ProxyBody::empty()
        } else {
            body.take()
                .expect("a request that is not retried is sent once")
        });
        *upstream.method_mut() = parts.method.clone();
        *upstream.uri_mut() = replica_uri(&parts.uri, &lease)?;
        *upstream.version_mut() = match protocol {
            UpstreamProtocol::Http1 => Version::HTTP_11,
            UpstreamProtocol::Http2 => Version::HTTP_2,
        };
        *upstream.headers_mut() = parts.headers.clone();
        strip_hop_by_hop(upstream.headers_mut());

        let attempts_left = tried.len() + 1 < MAX_ATTEMPTS;
        match client.request(upstream).await {
            Ok(response) => {
                let status = response.status().as_u16();
                lease.answered(status);
                if retryable
                    && matches!(status, 502..=504)
                    && attempts_left
                    && balancer.retry_budget().try_withdraw()
                {
                    counters.retries.fetch_add(1, Ordering::Relaxed);
                    tried.push(lease.replica_id().to_owned());
                    continue;
                }
                let elapsed = arrived.elapsed();
                counters.latency.observe(elapsed);
                if held {
                    counters.cold_starts.fetch_add(1, Ordering::Relaxed);
                    counters.cold_start_latency.observe(elapsed);
                }
                let (mut parts, incoming) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                return Ok(Response::from_parts(
                    parts,
                    ProxyBody::streamed_with_lease(incoming, lease),
                ));
            }
            Err(error) => {
                lease.failed();
                if retryable && attempts_left && balancer.retry_budget().try_withdraw() {
                    counters.retries.fetch_add(1, Ordering::Relaxed);
                    tried.push(lease.replica_id().to_owned());
                    continue;
                }
                counters.unavailable.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Upstream {
                    service: balancer.service().to_owned(),
                    replica: format!("{}@{}", lease.replica_id(), lease.authority()),
                    message: error_chain(&error),
                });
            }
        }
    }
}

/// GET, HEAD, OPTIONS, TRACE, PUT and DELETE: methods whose repetition
/// does no more than doing them once (RFC 9110, 9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn replica_uri(uri: &Uri, lease: &Lease) -> Result<Uri, Error> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Uri::builder()
        .scheme("http")
        .authority(lease.authority().clone())
        .path_and_query(path)
        .build()
        .map_err(|e| Error::InvalidRoute {
            field: "uri".into(),
            message: e.to_string(),
        })
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

/// An error with its causes, which hyper keeps apart ("client error
/// (Connect)" alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
