//! The admin API from the other side: what the local agent calls to keep a
//! proxy's routes in step with its replicas, and to read their state.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;

use super::{Route, RouteStatus};
use crate::body::ProxyBody;
use crate::error::{Error, Result};
use crate::upstream::connect_http1;

/// How long one admin call may take: the proxy answers from memory.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one proxy's admin API.
#[derive(Debug, Clone, Copy)]
pub struct AdminClient {
    addr: SocketAddr,
}

impl AdminClient {
    /// The admin API at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        AdminClient { addr }
    }

    /// Whether the proxy answers.
    pub async fn is_up(&self) -> bool {
        matches!(
            self.call(Method::GET, "/healthz", None).await,
            Ok((StatusCode::OK, _))
        )
    }

    /// Makes or updates a route; its status after.
    pub async fn put_route(&self, route: &Route) -> Result<RouteStatus> {
        let body = serde_json::to_vec(route).map_err(|e| self.failed(e.to_string()))?;
        let path = format!("/routes/{}", route.service);
        let (status, answer) = self.call(Method::PUT, &path, Some(body.into())).await?;
        self.decode(status, &answer)
    }

    /// Removes a route; `false` when there was none.
    pub async fn delete_route(&self, service: &str) -> Result<bool> {
        let (status, answer) = self
            .call(Method::DELETE, &format!("/routes/{service}"), None)
            .await?;
        match status {
            StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failed(format!("{status}: {}", String::from_utf8_lossy(&answer)))),
        }
    }

    /// Every route's status.
    pub async fn routes(&self) -> Result<Vec<RouteStatus>> {
        let (status, answer) = self.call(Method::GET, "/routes", None).await?;
        self.decode(status, &answer)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        status: StatusCode,
        answer: &[u8],
    ) -> Result<T> {
        if status != StatusCode::OK {
            return Err(self.failed(format!("{status}: {}", String::from_utf8_lossy(answer))));
        }
        serde_json::from_slice(answer)
            .map_err(|e| self.failed(format!("an answer that does not parse: {e}")))
    }

    fn failed(&self, message: String) -> Error {
        Error::Admin {
            addr: self.addr,
            message,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let exchange = async {
            let mut sender = connect_http1(self.addr)
                .await
                .map_err(|e| self.failed(e.0.to_string()))?;
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, self.addr.to_string())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.map_or_else(ProxyBody::empty, ProxyBody::full))
                .map_err(|e| self.failed(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| self.failed(e.to_string()))?;
            let status = response.status();
            let answer = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.failed(e.to_string()))?;
            Ok((status, answer.to_bytes()))
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| self.failed(format!("no answer within {CALL_TIMEOUT:?}")))?
    }
}
