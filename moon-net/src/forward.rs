//! Sending one request through a balancer: pick a replica, send, and retry
//! on another replica when that is safe and the budget allows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, Uri, Version};

use crate::balancer::{Balancer, Lease};
use crate::body::ProxyBody;
use crate::error::Error;
use crate::protocol::UpstreamProtocol;

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
            match (balancer.pick(&[]), hold) {
                (Some(lease), _) => Some(lease),
                (None, None) => None,
                // Boxed: the wait is rare, and its future would otherwise
                // grow every request's.
                (None, Some(timeout)) => {
                    Box::pin(balancer.pick_or_wait(timeout))
                        .await
                        .map(|(lease, waited)| {
                            held = waited;
                            lease
                        })
                }
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
        *upstream.uri_mut() = replica_uri(&parts.uri, &lease, protocol)?;
        *upstream.version_mut() = match protocol {
            UpstreamProtocol::Http1 => Version::HTTP_11,
            UpstreamProtocol::Http2 => Version::HTTP_2,
        };
        *upstream.headers_mut() = parts.headers.clone();
        strip_hop_by_hop(upstream.headers_mut());

        let attempts_left = tried.len() + 1 < MAX_ATTEMPTS;
        match lease
            .connections()
            .send(lease.addr(), protocol, upstream)
            .await
        {
            Ok((response, connection)) => {
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
                    ProxyBody::from_replica(incoming, lease.hand_over(), connection),
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
                    message: error_chain(error.0.as_ref()),
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

/// The request's target as the replica gets it: the path alone over
/// HTTP/1.1 (origin form, RFC 9112 3.2.1), with scheme and authority over
/// HTTP/2, whose `:authority` hyper takes from it.
fn replica_uri(uri: &Uri, lease: &Lease, protocol: UpstreamProtocol) -> Result<Uri, Error> {
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(path);
    if protocol == UpstreamProtocol::Http2 {
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = Some(lease.authority().clone());
    }
    Uri::from_parts(parts).map_err(|e| Error::InvalidRoute {
        field: "uri".into(),
        message: e.to_string(),
    })
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the few headers a request has, rather than a lookup
    // per name: most requests have none of them.
    if headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
    }
}

/// An error with its causes, which hyper keeps apart ("client error
/// (Connect)" alone says little).
fn error_chain(error: &(dyn std::error::Error + Send + Sync)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
