//! Serving one route: accept connections (HTTP/1.1 or HTTP/2, told apart by
//! the first bytes) and forward each request through the balancer.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::balancer::Balancer;
use crate::body::ProxyBody;
use crate::error::Error;
use crate::forward::forward;
use crate::protocol::UpstreamProtocol;

/// What every request of a route needs.
#[derive(Debug)]
pub(crate) struct RouteContext {
    pub(crate) balancer: Arc<Balancer>,
    pub(crate) protocol: UpstreamProtocol,
    pub(crate) hold: Option<Duration>,
}

/// Accepts connections until `closing` turns true; then stops listening,
/// and every connection finishes the requests it has and closes.
pub(crate) async fn serve(
    listener: TcpListener,
    context: Arc<RwLock<Arc<RouteContext>>>,
    mut closing: watch::Receiver<bool>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = closing.wait_for(|closing| *closing) => return,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors, most likely: let some close.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let context = Arc::clone(&context);
        let builder = builder.clone();
        let mut closing = closing.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let context = Arc::clone(&context.read().expect("context lock"));
                async move { Ok::<_, Infallible>(handle(&context, request).await) }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            // A client that goes away mid-request is not the proxy's error.
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = closing.wait_for(|closing| *closing) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
}

async fn handle(context: &RouteContext, request: Request<Incoming>) -> Response<ProxyBody> {
    let request = request.map(ProxyBody::streamed);
    match forward(&context.balancer, context.protocol, request, context.hold).await {
        Ok(response) => response,
        Err(error) => {
            let status = match error {
                Error::NoReadyReplica { .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            };
            let mut response = Response::new(ProxyBody::full(format!("moon proxy: {error}\n")));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain"),
            );
            response
        }
    }
}
