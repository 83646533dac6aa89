//! The body type on both sides of the proxy: a body streamed from the other
//! side (holding the replica's lease until its end), or one the proxy writes.
//! An enum rather than a boxed body: no allocation per request.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

use crate::balancer::Lease;

/// The error of a body passing through: whichever side's it was.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body passing through the proxy.
///
/// Every variant is `Unpin`, so polling needs no pin projection.
#[derive(Debug)]
pub enum ProxyBody {
    /// Streamed from a client or a replica. An answer's body holds the
    /// replica's lease, so that the request counts as outstanding (and a
    /// draining replica is not stopped) until the last byte is through.
    Streamed {
        /// The body as it arrives.
        body: Incoming,
        /// Released at the body's end.
        lease: Option<Lease>,
    },
    /// Written whole by the proxy (its own errors, the admin API).
    Full {
        /// What is left to send.
        data: Option<Bytes>,
    },
    /// Any other body: what a [`BalancedClient`](crate::BalancedClient) user
    /// sends.
    Boxed {
        /// The body.
        body: UnsyncBoxBody<Bytes, BoxError>,
    },
}

impl ProxyBody {
    /// No body.
    pub fn empty() -> Self {
        ProxyBody::Full { data: None }
    }

    /// A whole body.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        ProxyBody::Full {
            data: (!data.is_empty()).then_some(data),
        }
    }

    /// A streamed body.
    pub fn streamed(body: Incoming) -> Self {
        ProxyBody::Streamed { body, lease: None }
    }

    /// Any body, boxed.
    pub fn boxed<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ProxyBody::Boxed {
            body: body.map_err(Into::into).boxed_unsync(),
        }
    }

    /// A streamed body that releases `lease` at its end.
    pub(crate) fn streamed_with_lease(body: Incoming, lease: Lease) -> Self {
        ProxyBody::Streamed {
            body,
            lease: Some(lease),
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
        match self.get_mut() {
            ProxyBody::Streamed { body, lease } => {
                let polled = Pin::new(body).poll_frame(cx);
                if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
                    lease.take();
                }
                polled.map_err(Into::into)
            }
            ProxyBody::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ProxyBody::Boxed { body } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Streamed { body, .. } => body.is_end_stream(),
            ProxyBody::Full { data } => data.is_none(),
            ProxyBody::Boxed { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Streamed { body, .. } => body.size_hint(),
            ProxyBody::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            ProxyBody::Boxed { body } => body.size_hint(),
        }
    }
}
