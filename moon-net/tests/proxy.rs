//! The proxy in front of real HTTP replicas on loopback: balancing, outlier
//! ejection, retries, draining, holding at zero replicas, health gating,
//! HTTP/2 clients and the admin API.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use moon_net::ReplicaState;
use moon_net::proxy::{HealthCheck, Proxy, Route};
use support::{TestReplica, client, get, send};

fn route(service: &str, replicas: &[&Arc<TestReplica>]) -> Route {
    Route {
        service: service.into(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        endpoints: replicas.iter().map(|r| r.endpoint()).collect(),
        protocol: Default::default(),
        health: None,
        hold_ms: None,
        balancer: Default::default(),
    }
}

fn url(proxy: &Proxy, service: &str, path: &str) -> String {
    let status = proxy.route_status(service).expect("the route");
    format!("http://{}{path}", status.listen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_bodies_pass_through_to_every_replica() {
    let (a, b) = (TestReplica::start("a").await, TestReplica::start("b").await);
    let proxy = Proxy::new();
    proxy.apply(route("echo", &[&a, &b])).unwrap();
    let client = client();
    for i in 0..40 {
        let (status, body) = send(
            &client,
            "POST",
            &url(&proxy, "echo", "/predict"),
            &format!("x{i}"),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert!(
            body == format!("a:x{i}") || body == format!("b:x{i}"),
            "{body}"
        );
    }
    assert_eq!(a.served() + b.served(), 40);
    // One at a time, the replica with the lower latency wins every pick;
    // concurrent requests spread by what each has outstanding.
    assert!(
        load(&client, &url(&proxy, "echo", "/"), 8, 10)
            .await
            .iter()
            .all(|&s| s == 200)
    );
    assert!(
        a.served() >= 10 && b.served() >= 10,
        "a {} b {}",
        a.served(),
        b.served()
    );
    let metrics = proxy.metrics();
    assert!(
        metrics.contains("moon_proxy_requests_total{service=\"echo\"} 120"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_replica_gets_almost_nothing() {
    let fast: Vec<_> = start_replicas(["f0", "f1", "f2"]).await;
    let slow = TestReplica::start("slow").await;
    slow.behaviour.delay_ms.store(100, Ordering::Relaxed);
    for replica in &fast {
        replica.behaviour.delay_ms.store(1, Ordering::Relaxed);
    }
    let proxy = Proxy::new();
    let all: Vec<&Arc<TestReplica>> = fast.iter().chain([&slow]).collect();
    proxy.apply(route("model", &all)).unwrap();
    let target = url(&proxy, "model", "/");
    let client = client();
    let workers: Vec<_> = (0..10)
        .map(|_| {
            let (client, target) = (client.clone(), target.clone());
            tokio::spawn(async move {
                for _ in 0..60 {
                    assert_eq!(get(&client, &target).await.0, 200);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    // 600 requests: the slow replica is tried once or twice at first (no
    // estimate yet), then avoided while its 100 ms weighs.
    assert!(
        slow.served() <= 6,
        "the slow replica got {} of 600",
        slow.served()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_replica_is_ejected_then_let_back_in() {
    let (good, bad) = (
        TestReplica::start("good").await,
        TestReplica::start("bad").await,
    );
    bad.behaviour.status.store(503, Ordering::Relaxed);
    let proxy = Proxy::new();
    let mut spec = route("svc", &[&good, &bad]);
    spec.balancer.outlier.base_ejection_ms = 1_000;
    proxy.apply(spec).unwrap();
    let target = url(&proxy, "svc", "/");
    let client = client();
    // Idempotent and retried on the other replica: every GET succeeds.
    assert!(all_succeed(&client, &target, 8, 10).await);
    let status = proxy.route_status("svc").unwrap();
    let bad_status = status.replicas.iter().find(|r| r.id == "bad").unwrap();
    assert_eq!(bad_status.state, ReplicaState::Ejected, "{status:?}");
    // Three failures in a row eject it; requests already on their way when
    // that happened make the rest.
    assert!(
        bad.served() <= 10,
        "the bad replica kept getting requests: {} of 80",
        bad.served()
    );

    bad.behaviour.status.store(0, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let before = bad.served();
    assert!(all_succeed(&client, &target, 8, 20).await);
    assert!(
        bad.served() > before + 5,
        "re-admitted, it serves again: {}",
        bad.served() - before
    );
    let status = proxy.route_status("svc").unwrap();
    assert!(
        status
            .replicas
            .iter()
            .all(|r| r.state == ReplicaState::Ready)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_never_sent_twice() {
    let (a, b) = (TestReplica::start("a").await, TestReplica::start("b").await);
    for replica in [&a, &b] {
        replica.behaviour.drop_posts.store(true, Ordering::Relaxed);
    }
    let proxy = Proxy::new();
    proxy.apply(route("svc", &[&a, &b])).unwrap();
    let target = url(&proxy, "svc", "/orders");
    let client = client();
    // The replica that takes it dies holding it.
    let sent = tokio::spawn({
        let (client, target) = (client.clone(), target.clone());
        async move { send(&client, "POST", &target, "order-1").await }
    });
    let taker = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if a.served() + b.served() > 0 {
            break if a.served() > 0 { &a } else { &b };
        }
    };
    taker.kill();
    let (status, body) = sent.await.unwrap().expect("the proxy answers");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("failed"), "{body}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        a.served() + b.served(),
        1,
        "the POST reached a replica once and only once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_under_load_fails_no_get() {
    let replicas: Vec<_> = start_replicas(["r0", "r1", "r2"]).await;
    let proxy = Proxy::new();
    proxy
        .apply(route("svc", &replicas.iter().collect::<Vec<_>>()))
        .unwrap();
    let target = url(&proxy, "svc", "/");
    let client = client();
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, target) = (client.clone(), target.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while started.elapsed() < Duration::from_millis(1500) {
                    match support::send(&client, "GET", &target, "").await {
                        Ok((200, _)) => {}
                        other => failures.push(format!("{other:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    replicas[1].kill();
    let killed_at = Instant::now();
    let ejected_after = loop {
        let status = proxy.route_status("svc").unwrap();
        if status
            .replicas
            .iter()
            .any(|r| r.id == "r1" && r.state == ReplicaState::Ejected)
        {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(1),
            "not ejected within 1 s: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    assert!(failures.is_empty(), "failed GETs: {failures:?}");
    assert!(ejected_after < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_replica_finishes_its_requests_before_it_goes() {
    let (a, b) = (TestReplica::start("a").await, TestReplica::start("b").await);
    a.behaviour.delay_ms.store(400, Ordering::Relaxed);
    let proxy = Proxy::new();
    // b joins later, so the first request surely goes to a.
    proxy.apply(route("svc", &[&a])).unwrap();
    let target = url(&proxy, "svc", "/");
    let client = client();
    let slow = tokio::spawn({
        let (client, target) = (client.clone(), target.clone());
        async move { get(&client, &target).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Scale down: a leaves, b stays.
    proxy.apply(route("svc", &[&b])).unwrap();
    let during = proxy.route_status("svc").unwrap();
    let draining = during
        .replicas
        .iter()
        .find(|r| r.id == "a")
        .expect("a is still there");
    assert_eq!(
        (draining.state, draining.in_flight),
        (ReplicaState::Draining, 1)
    );
    for _ in 0..10 {
        assert_eq!(get(&client, &target).await, (200, "b".to_owned()));
    }
    assert_eq!(
        slow.await.unwrap(),
        (200, "a".to_owned()),
        "the request in flight finished"
    );
    let balancer = proxy.balancer("svc").unwrap();
    balancer.sweep_drained();
    let ids: Vec<String> = proxy
        .route_status("svc")
        .unwrap()
        .replicas
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec!["b".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_zero_replicas_a_request_is_held_until_one_starts() {
    let proxy = Proxy::new();
    let mut spec = route("cold", &[]);
    spec.hold_ms = Some(5_000);
    proxy.apply(spec.clone()).unwrap();
    let target = url(&proxy, "cold", "/");
    let client = client();
    let held = tokio::spawn({
        let (client, target) = (client.clone(), target.clone());
        async move { get(&client, &target).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        proxy.route_status("cold").unwrap().held,
        1,
        "the autoscaler sees the demand"
    );
    let replica = TestReplica::start("first").await;
    spec.endpoints = vec![replica.endpoint()];
    spec.listen = proxy.route_status("cold").unwrap().listen;
    proxy.apply(spec).unwrap();
    assert_eq!(held.await.unwrap(), (200, "first".to_owned()));
    let metrics = proxy.metrics();
    assert!(
        metrics.contains("moon_proxy_cold_starts_total{service=\"cold\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("moon_proxy_cold_start_seconds_count{service=\"cold\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hold_zero_replicas_answer_503_at_once() {
    let proxy = Proxy::new();
    proxy.apply(route("empty", &[])).unwrap();
    let (status, body) = get(&client(), &url(&proxy, "empty", "/")).await;
    assert_eq!(status, 503);
    assert!(
        body.contains("service \"empty\" has no ready replica"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_take_requests_once_their_readiness_check_passes() {
    let (ready, starting) = (
        TestReplica::start("ready").await,
        TestReplica::start("starting").await,
    );
    starting.behaviour.ready.store(false, Ordering::Relaxed);
    let proxy = Proxy::new();
    let mut spec = route("svc", &[&ready, &starting]);
    spec.health = Some(HealthCheck {
        http_path: Some("/ready".into()),
        interval_ms: 200,
        timeout_ms: 500,
        failure_threshold: 2,
    });
    proxy.apply(spec).unwrap();
    let target = url(&proxy, "svc", "/");
    let client = client();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        assert_eq!(get(&client, &target).await, (200, "ready".to_owned()));
    }
    assert_eq!(starting.served(), 0);
    starting.behaviour.ready.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(all_succeed(&client, &target, 8, 20).await);
    assert!(
        starting.served() > 5,
        "once ready it serves: {}",
        starting.served()
    );
    // Failing its checks takes it out again.
    starting.behaviour.ready.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = proxy.route_status("svc").unwrap();
    let state = status
        .replicas
        .iter()
        .find(|r| r.id == "starting")
        .unwrap()
        .state;
    assert_eq!(state, ReplicaState::NotReady);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_served_by_http1_replicas() {
    let replica = TestReplica::start("a").await;
    let proxy = Proxy::new();
    proxy.apply(route("svc", &[&replica])).unwrap();
    let h2: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let request = http::Request::get(url(&proxy, "svc", "/"))
        .body(Default::default())
        .unwrap();
    let response = h2.request(request).await.expect("an HTTP/2 answer");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_makes_routes_and_names_the_field_at_fault() {
    let proxy = Proxy::new();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_url = format!("http://{}", admin.local_addr().unwrap());
    tokio::spawn(moon_net::proxy::serve_admin(admin, Arc::clone(&proxy)));
    let client = client();
    let replica = TestReplica::start("a").await;

    let bad =
        r#"{"service": "svc", "listen": "127.0.0.1:0", "endpoints": [{"id": "a", "adr": "x"}]}"#;
    let (status, body) = send(&client, "PUT", &format!("{admin_url}/routes/svc"), bad)
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(
        body.contains("endpoints[0]") && body.contains("unknown field `adr`"),
        "{body}"
    );

    let good = serde_json::json!({
        "service": "svc",
        "listen": "127.0.0.1:0",
        "endpoints": [{"id": "a", "addr": replica.addr.to_string()}],
    });
    let (status, body) = send(
        &client,
        "PUT",
        &format!("{admin_url}/routes/svc"),
        &good.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let made: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listen = made["listen"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&client, &format!("http://{listen}/")).await,
        (200, "a".to_owned())
    );

    let (status, metrics) = send(&client, "GET", &format!("{admin_url}/metrics"), "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics
            .contains("moon_replica_responses_total{service=\"svc\",replica=\"a\",code=\"2xx\"} 1"),
        "{metrics}"
    );

    let (status, _) = send(&client, "DELETE", &format!("{admin_url}/routes/svc"), "")
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (status, _) = send(&client, "GET", &format!("{admin_url}/routes/svc"), "")
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert!(
        send(&client, "GET", &format!("http://{listen}/"), "")
            .await
            .is_err(),
        "the listener closed"
    );
}

/// Whether every GET of [`load`] succeeds.
async fn all_succeed(
    client: &support::TestClient,
    target: &str,
    workers: usize,
    each: usize,
) -> bool {
    load(client, target, workers, each)
        .await
        .iter()
        .all(|&s| s == 200)
}

/// `workers` clients sending `each` GETs at once; their statuses.
async fn load(client: &support::TestClient, target: &str, workers: usize, each: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, target) = (client.clone(), target.to_owned());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..each {
                    statuses.push(get(&client, &target).await.0);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.unwrap());
    }
    statuses
}

async fn start_replicas<const N: usize>(names: [&str; N]) -> Vec<Arc<TestReplica>> {
    let mut replicas = Vec::new();
    for name in names {
        replicas.push(TestReplica::start(name).await);
    }
    replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_keeps_routes_as_the_agent_does() {
    let proxy = Proxy::new();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = moon_net::proxy::AdminClient::new(admin.local_addr().unwrap());
    tokio::spawn(moon_net::proxy::serve_admin(admin, Arc::clone(&proxy)));
    assert!(client.is_up().await);
    let replica = TestReplica::start("a").await;

    let made = client.put_route(&route("svc", &[&replica])).await.unwrap();
    assert_eq!(made.replicas.len(), 1);
    assert_eq!(
        get(&support::client(), &format!("http://{}/", made.listen)).await,
        (200, "a".into())
    );
    let routes = client.routes().await.unwrap();
    assert_eq!(
        routes
            .iter()
            .map(|r| r.service.as_str())
            .collect::<Vec<_>>(),
        ["svc"]
    );
    assert_eq!(routes[0].requests_total, 1);

    let mut broken = route("svc", &[&replica, &replica]);
    broken.listen = made.listen;
    let error = client.put_route(&broken).await.unwrap_err().to_string();
    assert!(error.contains("endpoints[1].id: appears twice"), "{error}");

    assert!(client.delete_route("svc").await.unwrap());
    assert!(!client.delete_route("svc").await.unwrap());
    assert!(client.routes().await.unwrap().is_empty());
}
