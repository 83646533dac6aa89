//! The proxy's admin API, on loopback, for the agent and for people:
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | every route's metrics, Prometheus text |
//! | `GET /routes` | every route's status, JSON |
//! | `GET /routes/{service}` | one route's status, or 404 |
//! | `PUT /routes/{service}` | make or update a route from a JSON [`Route`](super::Route) |
//! | `DELETE /routes/{service}` | remove a route (204), or 404 |
//!
//! Errors are JSON `{"error": "..."}` naming the field at fault.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;

use super::{Proxy, Route};
use crate::body::ProxyBody;

/// The largest route a PUT may send.
const MAX_BODY: usize = 1 << 20;

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve_admin(listener: TcpListener, proxy: Arc<Proxy>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let proxy = Arc::clone(&proxy);
                async move { Ok::<_, Infallible>(answer(&proxy, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(proxy: &Proxy, request: Request<Incoming>) -> Response<ProxyBody> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (request.method(), segments.as_slice()) {
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok\n"),
        (&Method::GET, ["metrics"]) => {
            let mut response = text(StatusCode::OK, proxy.metrics());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        (&Method::GET, ["routes"]) => json(StatusCode::OK, &proxy.status()),
        (&Method::GET, ["routes", service]) => match proxy.route_status(service) {
            Some(status) => json(StatusCode::OK, &status),
            None => error(
                StatusCode::NOT_FOUND,
                format!("no route for service {service:?}"),
            ),
        },
        (&Method::PUT, ["routes", service]) => {
            let service = (*service).to_owned();
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("request body: {e}")),
            };
            let mut deserializer = serde_json::Deserializer::from_slice(&body);
            let route: Route = match serde_path_to_error::deserialize(&mut deserializer) {
                Ok(route) => route,
                Err(e) => {
                    let field = e.path().to_string();
                    return error(StatusCode::BAD_REQUEST, format!("{field}: {}", e.inner()));
                }
            };
            if route.service != service {
                let message = format!(
                    "service: {:?} does not match the path's {service:?}",
                    route.service
                );
                return error(StatusCode::BAD_REQUEST, message);
            }
            match proxy.apply(route) {
                Ok(status) => json(StatusCode::OK, &status),
                Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        (&Method::DELETE, ["routes", service]) => {
            if proxy.remove(service) {
                text(StatusCode::NO_CONTENT, "")
            } else {
                error(
                    StatusCode::NOT_FOUND,
                    format!("no route for service {service:?}"),
                )
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no {} {path}", request.method()),
        ),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    response
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<ProxyBody> {
    let body = serde_json::to_vec(value).expect("statuses serialize");
    let mut response = text(status, body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: String) -> Response<ProxyBody> {
    json(status, &serde_json::json!({ "error": message }))
}
