//! Client-side balancing: `BalancedClient` over a static registry, as a
//! tower `Service`, following the registry's changes, over HTTP/1.1 and
//! HTTP/2, against real replicas on loopback.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use moon_net::proxy::{Proxy, Route};
use moon_net::{BalancedClient, BalancerConfig, ProxyBody, StaticRegistry, UpstreamProtocol};
use support::TestReplica;
use tower_service::Service;

async fn body_text(response: http::Response<ProxyBody>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn spread(client: &BalancedClient, requests: usize) -> Vec<String> {
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let request = Request::post(format!("/predict?i={i}"))
                    .body(Full::new(Bytes::from(format!("{i}"))))
                    .unwrap();
                let response = client.call(request).await.expect("an answer");
                assert_eq!(response.status(), 200);
                body_text(response).await
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for task in tasks {
        bodies.push(task.await.unwrap());
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_balanced_over_the_registry_and_follow_its_changes() {
    let (a, b, c) = (
        TestReplica::start("a").await,
        TestReplica::start("b").await,
        TestReplica::start("c").await,
    );
    let registry = StaticRegistry::new();
    registry.set("model", vec![a.endpoint(), b.endpoint()]);
    let client = BalancedClient::from_registry(
        &registry,
        "model",
        BalancerConfig::default(),
        UpstreamProtocol::Http1,
    )
    .unwrap();

    let bodies = spread(&client, 64).await;
    assert!(
        bodies
            .iter()
            .all(|b| b.starts_with("a:") || b.starts_with("b:")),
        "{bodies:?}"
    );
    assert!(
        a.served() > 8 && b.served() > 8,
        "a {} b {}",
        a.served(),
        b.served()
    );

    registry.set("model", vec![c.endpoint()]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let bodies = spread(&client, 16).await;
    assert!(bodies.iter().all(|b| b.starts_with("c:")), "{bodies:?}");
    let status = client.balancer().status();
    assert_eq!(
        status.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["c"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_is_a_typed_error() {
    let registry = StaticRegistry::new();
    let error = BalancedClient::from_registry(
        &registry,
        "nowhere",
        BalancerConfig::default(),
        UpstreamProtocol::Http1,
    )
    .unwrap_err();
    assert!(
        matches!(error, moon_net::Error::UnknownService(ref s) if s == "nowhere"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_replica_is_a_typed_error_not_a_hang() {
    let registry = StaticRegistry::new();
    registry.set("empty", vec![]);
    let client = BalancedClient::from_registry(
        &registry,
        "empty",
        BalancerConfig::default(),
        UpstreamProtocol::Http1,
    )
    .unwrap();
    let error = client
        .send(Request::get("/").body(ProxyBody::empty()).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, moon_net::Error::NoReadyReplica { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_replicas_are_reached_over_one_multiplexed_connection() {
    // moon's own proxy speaks HTTP/2 to its clients: it stands in for a
    // gRPC-style replica here.
    let replica = TestReplica::start("behind").await;
    let proxy = Proxy::new();
    let status = proxy
        .apply(Route {
            service: "inner".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            endpoints: vec![replica.endpoint()],
            protocol: UpstreamProtocol::Http1,
            health: None,
            hold_ms: None,
            balancer: BalancerConfig::default(),
        })
        .unwrap();
    let registry = StaticRegistry::new();
    registry.set("h2", vec![moon_net::Endpoint::new("proxy", status.listen)]);
    let client = BalancedClient::from_registry(
        &registry,
        "h2",
        BalancerConfig::default(),
        UpstreamProtocol::Http2,
    )
    .unwrap();
    let bodies = spread(&client, 20).await;
    assert!(
        bodies.iter().all(|b| b.starts_with("behind:")),
        "{bodies:?}"
    );
    assert_eq!(replica.served(), 20);
    let _keep: Arc<Proxy> = proxy;
}
