//! Connections to a replica: a pool of HTTP/1.1 keep-alive connections, or
//! one shared HTTP/2 connection, and sending a request on them.
//!
//! Kept per replica, so a request finds its connections without hashing an
//! address, and without hyper-util's pooled client, which spawns a task per
//! request to learn when a connection is free again: here an HTTP/1.1
//! connection returns to its pool when the answer's body has been read.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::body::{BoxError, ProxyBody};
use crate::protocol::UpstreamProtocol;

/// At most this many idle connections are kept per replica.
const MAX_IDLE: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A replica's connections.
#[derive(Debug, Default)]
pub(crate) struct ConnectionPool {
    idle: Mutex<Vec<http1::SendRequest<ProxyBody>>>,
    shared: Mutex<Option<http2::SendRequest<ProxyBody>>>,
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) struct SendError(pub(crate) BoxError);

impl ConnectionPool {
    /// Puts back a connection whose last answer was read to its end.
    pub(crate) fn put(&self, connection: http1::SendRequest<ProxyBody>) {
        if connection.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn take_idle(&self) -> Option<http1::SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().expect("pool lock");
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Sends `request` to the replica at `addr` (its URI already in the
    /// form the protocol wants). An HTTP/1.1 answer comes with its
    /// connection, to be put back once its body has been read.
    ///
    /// A pooled connection that turns out closed before the request went
    /// out (the replica dropped it while idle) is replaced by a new one and
    /// the request sent there: it was never sent, so this is safe for any
    /// method.
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        protocol: UpstreamProtocol,
        mut request: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Option<http1::SendRequest<ProxyBody>>), SendError> {
        if protocol == UpstreamProtocol::Http2 {
            let mut sender = Box::pin(self.shared_http2(addr)).await?;
            return match sender.send_request(request).await {
                Ok(response) => Ok((response, None)),
                Err(error) => {
                    self.shared.lock().expect("pool lock").take();
                    Err(SendError(error.into()))
                }
            };
        }
        loop {
            let (mut sender, pooled) = match self.take_idle() {
                Some(sender) => (sender, true),
                // Boxed: connecting is rare, and its future would otherwise
                // grow every request's.
                None => (Box::pin(connect_http1(addr)).await?, false),
            };
            if sender.ready().await.is_err() {
                if pooled {
                    continue;
                }
                return Err(SendError("the new connection closed at once".into()));
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, Some(sender))),
                Err(mut error) => match error.take_message() {
                    Some(unsent) if pooled => request = unsent,
                    _ => return Err(SendError(error.into_error().into())),
                },
            }
        }
    }

    async fn shared_http2(
        &self,
        addr: SocketAddr,
    ) -> Result<http2::SendRequest<ProxyBody>, SendError> {
        if let Some(sender) = self.shared.lock().expect("pool lock").as_ref()
            && !sender.is_closed()
        {
            return Ok(sender.clone());
        }
        let stream = connect_tcp(addr).await?;
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| SendError(e.into()))?;
        tokio::spawn(connection);
        *self.shared.lock().expect("pool lock") = Some(sender.clone());
        Ok(sender)
    }
}

async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, SendError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| SendError(format!("connect to {addr} timed out").into()))?
        .map_err(|e| SendError(format!("connect to {addr}: {e}").into()))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

pub(crate) async fn connect_http1(
    addr: SocketAddr,
) -> Result<http1::SendRequest<ProxyBody>, SendError> {
    let stream = connect_tcp(addr).await?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| SendError(e.into()))?;
    // Drives the connection; ends when the replica or the pool lets go.
    tokio::spawn(connection);
    Ok(sender)
}

/// One GET of `path` on a connection of its own, closed after: the status.
/// For health checks, which are few and must not ride on (or spoil) the
/// connections that carry requests.
pub(crate) async fn get_once(addr: SocketAddr, path: &str) -> Result<http::StatusCode, SendError> {
    let mut sender = connect_http1(addr).await?;
    let request = Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(ProxyBody::empty())
        .map_err(|e| SendError(e.into()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| SendError(e.into()))?;
    Ok(response.status())
}
