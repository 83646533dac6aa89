//! The body type on both sides of the proxy: a body streamed from the other
//! side, or one the proxy writes. An answer streamed from a replica holds
//! the replica and its connection until its last byte: then the request
//! stops counting as outstanding and the connection goes back to the
//! replica's pool. A plain enum inside, not a boxed body: no allocation
//! per request.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

/// The error of a body passing through: whichever side's it was.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body passing through the proxy.
#[derive(Debug)]
pub struct ProxyBody {
    kind: Kind,
}

/// Every variant is `Unpin`, so polling needs no pin projection.
#[derive(Debug)]
enum Kind {
    /// Streamed from a client or a replica.
    Streamed { body: Incoming, held: Option<Held> },
    /// Written whole by the proxy (its own errors, the admin API).
    Full(Option<Bytes>),
    /// Any other body: what a [`BalancedClient`](crate::BalancedClient) user sends.
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

/// What an answer's body tells when it ends: the replica that sent it,
/// which counts the request as outstanding until then. Implemented by the
/// balancer's replicas; a trait here so that bodies need not know them.
pub(crate) trait Release: Send + Sync + std::fmt::Debug {
    /// The answer ended; `connection`, when its body was read whole, may
    /// carry another request.
    fn release(&self, connection: Option<SendRequest<ProxyBody>>);
}

/// What an answer from a replica holds until its end.
#[derive(Debug)]
struct Held {
    replica: Arc<dyn Release>,
    connection: Option<SendRequest<ProxyBody>>,
    /// The body was read to its end: the connection can serve another.
    whole: bool,
}

impl Held {
    fn finish(mut self) {
        self.whole = true;
    }
}

impl Drop for Held {
    /// Dropped before its end, the connection is in no known state and
    /// closes with this.
    fn drop(&mut self) {
        let connection = if self.whole {
            self.connection.take()
        } else {
            None
        };
        self.replica.release(connection);
    }
}

fn finish(held: &mut Option<Held>) {
    if let Some(held) = held.take() {
        held.finish();
    }
}

impl ProxyBody {
    /// No body.
    pub fn empty() -> Self {
        ProxyBody {
            kind: Kind::Full(None),
        }
    }

    /// A whole body.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        ProxyBody {
            kind: Kind::Full((!data.is_empty()).then_some(data)),
        }
    }

    /// A body streamed as it arrives.
    pub fn streamed(body: Incoming) -> Self {
        ProxyBody {
            kind: Kind::Streamed { body, held: None },
        }
    }

    /// Any body, boxed.
    pub fn boxed<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ProxyBody {
            kind: Kind::Boxed(body.map_err(Into::into).boxed_unsync()),
        }
    }

    /// A replica's answer, holding the replica and its connection until
    /// its end.
    pub(crate) fn from_replica(
        body: Incoming,
        replica: Arc<dyn Release>,
        connection: Option<SendRequest<ProxyBody>>,
    ) -> Self {
        let held = Held {
            replica,
            connection,
            whole: false,
        };
        if body.is_end_stream() {
            held.finish();
            return ProxyBody::streamed(body);
        }
        ProxyBody {
            kind: Kind::Streamed {
                body,
                held: Some(held),
            },
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Streamed { body, held } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => finish(held),
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => finish(held),
                    // A broken body leaves the connection in no known state.
                    Poll::Ready(Some(Err(_))) => drop(held.take()),
                    _ => {}
                }
                polled.map_err(Into::into)
            }
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Streamed { body, .. } => body.is_end_stream(),
            Kind::Full(data) => data.is_none(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Streamed { body, .. } => body.size_hint(),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // Dropped at its end without a last poll (hyper stops once a body
        // says it has ended): the connection is still good.
        if let Kind::Streamed { body, held } = &mut self.kind
            && body.is_end_stream()
        {
            finish(held);
        }
    }
}
