//! Real HTTP replicas on loopback for the proxy's tests: each answers with
//! its own name, after a delay it is told, with a status it is told, and can
//! be killed (listener and every open connection closed at once).

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use moon_net::Endpoint;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A replica's behaviour, changeable while it runs.
#[derive(Default)]
pub struct Behaviour {
    pub delay_ms: AtomicU64,
    /// 0: 200.
    pub status: AtomicU16,
    /// `/ready` answers 503 while this is false.
    pub ready: AtomicBool,
    /// Close POST connections without answering (a crash mid-request).
    pub drop_posts: AtomicBool,
}

pub struct TestReplica {
    pub name: String,
    pub addr: SocketAddr,
    pub behaviour: Arc<Behaviour>,
    /// Requests seen, health checks excluded.
    pub requests: Arc<AtomicU64>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TestReplica {
    pub async fn start(name: &str) -> Arc<TestReplica> {
        Self::start_on(name, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(name: &str, addr: SocketAddr) -> Arc<TestReplica> {
        let listener = TcpListener::bind(addr).await.expect("bind a replica");
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Behaviour {
            ready: AtomicBool::new(true),
            ..Behaviour::default()
        });
        let requests = Arc::new(AtomicU64::new(0));
        let replica = Arc::new(TestReplica {
            name: name.to_owned(),
            addr,
            behaviour: Arc::clone(&behaviour),
            requests: Arc::clone(&requests),
            server: Mutex::new(None),
        });
        let name = name.to_owned();
        let server = tokio::spawn(async move {
            // Connections live in the set: aborting the server aborts them.
            let mut connections = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                let _ = stream.set_nodelay(true);
                let behaviour = Arc::clone(&behaviour);
                let requests = Arc::clone(&requests);
                let name = name.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let behaviour = Arc::clone(&behaviour);
                        let requests = Arc::clone(&requests);
                        let name = name.clone();
                        async move { answer(&name, &behaviour, &requests, request).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *replica.server.lock().unwrap() = Some(server);
        replica
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.name.clone(), self.addr)
    }

    pub fn served(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Closes the listener and every connection, as SIGKILL would.
    pub fn kill(&self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }
}

impl Drop for TestReplica {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn answer(
    name: &str,
    behaviour: &Behaviour,
    requests: &AtomicU64,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/ready" {
        let status = if behaviour.ready.load(Ordering::Relaxed) {
            200
        } else {
            503
        };
        return Ok(respond(status, Bytes::from_static(b"")));
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let is_post = request.method() == http::Method::POST;
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if is_post && behaviour.drop_posts.load(Ordering::Relaxed) {
        // Never answer: the connection is dropped with the task below.
        std::future::pending::<()>().await;
    }
    let delay = behaviour.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = match behaviour.status.load(Ordering::Relaxed) {
        0 => 200,
        s => s,
    };
    let text = if body.is_empty() {
        name.to_owned()
    } else {
        format!("{name}:{}", String::from_utf8_lossy(&body))
    };
    Ok(respond(status, Bytes::from(text)))
}

fn respond(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request; answers (status, body) or the client's error.
pub async fn send(
    client: &TestClient,
    method: &str,
    url: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub async fn get(client: &TestClient, url: &str) -> (u16, String) {
    send(client, "GET", url, "").await.expect("an answer")
}
