//! A replica for the proxy benchmarks: answers every request with the same
//! 100 bytes after a fixed delay, on one thread, and counts what it served.
//!
//! ```text
//! bench-replica PORT [DELAY_MS]
//! ```
//!
//! `GET /__count` answers the number of other requests served so far (the
//! benchmark reads it to see how requests were spread).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The peer figures in the design notes were taken with a 100-byte body.
const BODY: &[u8; 100] = b"moon benchmark replica: a fixed answer of one hundred bytes, the same for every request, padded....\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| {
        eprintln!("usage: bench-replica PORT [DELAY_MS]");
        std::process::exit(2);
    });
    let delay = Duration::from_millis(args.next().and_then(|d| d.parse().ok()).unwrap_or(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(serve(SocketAddr::from(([127, 0, 0, 1], port)), delay));
}

async fn serve(addr: SocketAddr, delay: Duration) {
    let listener = TcpListener::bind(addr)
        .await
        .expect("bind the replica's port");
    let served = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let served = Arc::clone(&served);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let served = Arc::clone(&served);
                async move {
                    if request.uri().path() == "/__count" {
                        let count = served.load(Ordering::Relaxed).to_string();
                        return Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(count))));
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
