//! Services on the local backend: replicas supervised like a job's, on ports
//! of their own, behind the home's proxy, which outlives the agent.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Home, tenant};
use moon_core::ServiceStatus;
use moon_core::spec::{Autoscale, Quantity, Service, TenantQuota, service_from_yaml};
use moon_core::status::ApplyOutcome;

/// A replica that answers every GET with its own pid, on `PORT`, with
/// keep-alive (HTTP/1.1), and `/healthz` for readiness; `/slow` takes 300 ms.
const REPLICA: &str = r#"
import http.server, os, time
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(0.3)
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn service(name: &str, replicas: u32) -> Service {
    let yaml = format!(
        "kind: Service\nname: {name}\ntenant: team\ncommand: [python3, -c, {script}]\n\
         replicas: {replicas}\ncpus: 100m\nmemory: 64Mi\nreadiness: {{httpPath: /healthz, periodSeconds: 1}}\n",
        script = serde_json::to_string(REPLICA).unwrap()
    );
    service_from_yaml(&yaml).expect("a valid service")
}

/// `service(name, replicas)`, scaled by requests in flight between `min` and `max`,
/// scaling down after 1 s of lower recommendations.
fn autoscaled(name: &str, replicas: u32, min: u32, max: u32) -> Service {
    let mut spec = service(name, replicas);
    spec.autoscale = Some(Autoscale {
        min_replicas: min,
        max_replicas: max,
        target_requests_per_second: None,
        target_in_flight: Some(1.0),
        scale_up_stabilization_seconds: 0,
        scale_down_stabilization_seconds: 1,
    });
    spec
}

/// Waits for an event of `kind` of service `name`; its message.
async fn event(home: &Home, name: &str, kind: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = home.client.events("team", name, None).await.unwrap();
        if let Some(event) = events.iter().find(|e| e.kind == kind) {
            return event.message.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} event in time: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until service `name`'s status is `wanted`; that status.
async fn until(home: &Home, name: &str, wanted: impl Fn(&ServiceStatus) -> bool) -> ServiceStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = home.client.get_service("team", name).await.unwrap();
        if wanted(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "not in time: {status:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The messages of service `name`'s `Autoscaled` events, oldest first.
async fn autoscaled_events(home: &Home, name: &str) -> Vec<String> {
    let events = home.client.events("team", name, None).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.kind == "Autoscaled")
        .map(|e| e.message)
        .collect()
}

async fn ready(home: &Home, name: &str, replicas: u32) -> ServiceStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = home
            .client
            .get_service("team", name)
            .await
            .expect("the service");
        if status.ready_replicas == replicas && status.url.is_some() {
            return status;
        }
        assert!(Instant::now() < deadline, "not ready in time: {status:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answers_at_its_url_from_every_replica_until_deleted() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let spec = service("echo", 2);
    let outcome = home
        .client
        .apply(&moon_core::spec::Spec::Service(spec.clone()))
        .await
        .unwrap();
    assert_eq!(outcome, ApplyOutcome::Created);
    let status = ready(&home, "echo", 2).await;
    let url = status.url.clone().unwrap();
    assert_eq!(status.desired_replicas, 2);
    assert!(
        status.replicas.iter().all(|r| r.address.is_some()),
        "{status:#?}"
    );

    let client = reqwest::Client::new();
    let mut pids = HashSet::new();
    let answers = futures::future::join_all((0..40).map(|_| get(&client, &url))).await;
    for answer in answers {
        pids.insert(answer.expect("an answer"));
    }
    assert_eq!(pids.len(), 2, "both replicas answered: {pids:?}");

    assert_eq!(
        home.client.apply_service(&spec).await.unwrap(),
        ApplyOutcome::Unchanged
    );
    // A service is not a job, though a job runs its replicas.
    let error = home.client.get_job("team", "echo").await.unwrap_err();
    assert!(
        matches!(error, moon_core::Error::NotFound { kind: "job", .. }),
        "{error}"
    );
    assert!(
        home.client
            .list_jobs(Some("team"))
            .await
            .unwrap()
            .is_empty()
    );
    let listed = home.client.list_services(Some("team")).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["echo"]
    );

    home.client.delete_service("team", "echo").await.unwrap();
    let error = home.client.get_service("team", "echo").await.unwrap_err();
    assert!(
        matches!(
            error,
            moon_core::Error::NotFound {
                kind: "service",
                ..
            }
        ),
        "{error}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&client, &url).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the URL still answers after the delete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs `url` every 10 ms until `stop`; counts failures.
fn keep_asking(
    url: String,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Vec<String>> {
    keep_sending(reqwest::Method::GET, url, stop, failures)
}

/// Sends `method` requests to `url` every 10 ms until `stop`; counts failures.
fn keep_sending(
    method: reqwest::Method,
    url: String,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut errors = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let mut request = client.request(method.clone(), &url);
            if method == reqwest::Method::POST {
                request = request.body("x");
            }
            let answer = match request.send().await {
                Ok(response) if response.status() == 200 => Ok(()),
                Ok(response) => Err(response.status().to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = answer {
                failures.fetch_add(1, Ordering::Relaxed);
                errors.push(error);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        errors
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_restarted_and_no_request_fails_meanwhile() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .apply_service(&service("sturdy", 2))
        .await
        .unwrap();
    let url = ready(&home, "sturdy", 2).await.url.unwrap();
    let client = reqwest::Client::new();
    let victim: i32 = get(&client, &url).await.unwrap().parse().unwrap();

    let (stop, failures) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let asking = keep_asking(url.clone(), stop.clone(), failures.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // SAFETY: kill a replica of our own service, by the pid it told us.
    unsafe {
        libc::kill(victim, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = home.client.get_service("team", "sturdy").await.unwrap();
        if status.ready_replicas == 2 && status.replicas.iter().any(|r| r.attempts == 2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not restarted in time: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let errors = asking.await.unwrap();
    assert!(errors.is_empty(), "failed GETs: {errors:?}");
    let pids: HashSet<String> = futures::future::join_all((0..20).map(|_| get(&client, &url)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(!pids.contains(&victim.to_string()), "{pids:?}");
    home.client.delete_service("team", "sturdy").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_answers_while_the_agent_is_killed_and_after_it_comes_back() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .apply_service(&service("lasting", 1))
        .await
        .unwrap();
    let url = ready(&home, "lasting", 1).await.url.unwrap();
    let client = reqwest::Client::new();
    let before = get(&client, &url).await.unwrap();

    let agent = home.agent_pid().expect("an agent runs");
    // SAFETY: kill our own home's agent.
    unsafe {
        libc::kill(agent, libc::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        assert_eq!(
            get(&client, &url).await.unwrap(),
            before,
            "the same replica, through the same proxy"
        );
    }
    // A service applied now starts a new agent, which takes the proxy and
    // the replica over and routes both services.
    home.client
        .apply_service(&service("second", 1))
        .await
        .unwrap();
    let second = ready(&home, "second", 1).await.url.unwrap();
    assert_ne!(home.agent_pid(), Some(agent), "a new agent runs");
    assert_ne!(get(&client, &second).await.unwrap(), before);
    let status = ready(&home, "lasting", 1).await;
    assert_eq!(status.url.as_deref(), Some(url.as_str()));
    assert_eq!(get(&client, &url).await.unwrap(), before);
    home.client.delete_service("team", "second").await.unwrap();
    home.client.delete_service("team", "lasting").await.unwrap();
    assert!(get(&client, &url).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_adds_replicas_and_scaling_down_drains_them_without_a_failed_post() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .apply_service(&service("elastic", 1))
        .await
        .unwrap();
    let url = ready(&home, "elastic", 1).await.url.unwrap();
    let client = reqwest::Client::new();

    let status = home
        .client
        .scale_service("team", "elastic", 3)
        .await
        .unwrap();
    assert_eq!(status.desired_replicas, 3);
    let status = ready(&home, "elastic", 3).await;
    assert_eq!(status.url.as_deref(), Some(url.as_str()), "the URL stays");
    let pids: HashSet<String> = futures::future::join_all((0..60).map(|_| get(&client, &url)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");

    // POSTs are never retried: one lost to a replica stopped mid-request would show.
    let (stop, failures) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let posting = keep_sending(
        reqwest::Method::POST,
        url.clone(),
        stop.clone(),
        failures.clone(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    home.client
        .scale_service("team", "elastic", 1)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = home.client.get_service("team", "elastic").await.unwrap();
        if status.replicas.len() == 1 && status.ready_replicas == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not scaled down in time: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let errors = posting.await.unwrap();
    assert!(
        errors.is_empty(),
        "failed POSTs while scaling down: {errors:?}"
    );
    let events = home.client.events("team", "elastic", None).await.unwrap();
    let kinds: HashSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains("Scaled") && kinds.contains("ReplicaRetired"),
        "{kinds:?}"
    );

    // Applying the spec with another count scales too.
    let outcome = home
        .client
        .apply_service(&service("elastic", 2))
        .await
        .unwrap();
    assert_eq!(outcome, ApplyOutcome::Updated);
    ready(&home, "elastic", 2).await;
    home.client.delete_service("team", "elastic").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_service_scales_to_zero_and_a_request_brings_a_replica_back() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .apply_service(&autoscaled("napper", 1, 0, 2))
        .await
        .unwrap();
    let url = ready(&home, "napper", 1).await.url.unwrap();
    let client = reqwest::Client::new();
    let first = get(&client, &url).await.unwrap();

    let message = event(&home, "napper", "Autoscaled").await;
    assert!(message.starts_with("1 -> 0 replicas"), "{message}");
    let status = until(&home, "napper", |s| s.replicas.is_empty()).await;
    assert_eq!(status.desired_replicas, 0);
    assert!(status.url.is_some(), "the URL stays at zero replicas");

    // The request waits at the URL while a replica starts, then is answered.
    let second = get(&client, &url)
        .await
        .expect("an answer after a cold start");
    assert_ne!(second, first, "a new replica process answered");
    let message = event(&home, "napper", "ColdStart").await;
    assert!(
        message.contains("after the service scaled up from zero for 1 waiting request"),
        "{message}"
    );
    let scaled = autoscaled_events(&home, "napper").await;
    assert!(
        scaled[1].starts_with("0 -> 1 replicas: 1 requests wait"),
        "{scaled:?}"
    );
    home.client.delete_service("team", "napper").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_scales_a_service_up_as_far_as_the_quota_holds_and_back_down_after() {
    let home = Home::new();
    // Three replicas of 100m fit; the autoscaler may ask for five.
    let quota = TenantQuota {
        cpus: Some(Quantity::from("300m")),
        ..TenantQuota::default()
    };
    tenant(&home.client, "team", quota).await;
    home.client
        .apply_service(&autoscaled("busy", 1, 1, 5))
        .await
        .unwrap();
    let url = ready(&home, "busy", 1).await.url.unwrap();

    // Eight requests of 300 ms always in flight, against a target of one per replica.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (url, stop) = (format!("{url}/slow"), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    get(&client, &url).await.expect("an answer under load");
                }
            })
        })
        .collect();
    let limited = event(&home, "busy", "ScaleLimited").await;
    assert!(
        limited.contains("the autoscaler asks for 5 replicas")
            && limited.contains("held at 3")
            && limited.contains("quota is cpus"),
        "{limited}"
    );
    let status = ready(&home, "busy", 3).await;
    assert_eq!(status.desired_replicas, 3);
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    // Idle, it goes back to its minimum, one.
    until(&home, "busy", |s| {
        s.replicas.len() == 1 && s.desired_replicas == 1
    })
    .await;
    let scaled = autoscaled_events(&home, "busy").await;
    assert!(
        scaled.iter().any(|m| m.starts_with("3 -> 1 replicas")),
        "{scaled:?}"
    );
    home.client.delete_service("team", "busy").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_client_reaches_every_replica_directly_and_follows_the_scale() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .apply_service(&service("direct", 2))
        .await
        .unwrap();
    let url = ready(&home, "direct", 2).await.url.unwrap();
    let client = home.client.service_client("team", "direct").await.unwrap();
    let pids = |answers: Vec<moon_core::net::Answer>| -> HashSet<String> {
        answers
            .into_iter()
            .map(|answer| {
                assert_eq!(answer.status, 200);
                String::from_utf8(answer.body.to_vec()).unwrap()
            })
            .collect()
    };
    let direct = pids(
        futures::future::try_join_all(
            (0..40).map(|_| client.fetch("GET", "/", &[], bytes::Bytes::new())),
        )
        .await
        .expect("answers"),
    );
    let http = reqwest::Client::new();
    let proxied: HashSet<String> = futures::future::join_all((0..40).map(|_| get(&http, &url)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(direct, proxied, "the same replicas as the proxy's");
    assert_eq!(direct.len(), 2);

    home.client
        .scale_service("team", "direct", 3)
        .await
        .unwrap();
    ready(&home, "direct", 3).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = pids(
            futures::future::try_join_all(
                (0..30).map(|_| client.fetch("GET", "/", &[], bytes::Bytes::new())),
            )
            .await
            .expect("answers"),
        );
        if seen.len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "still {seen:?}");
    }
    let error = client
        .fetch("GE T", "/", &[], bytes::Bytes::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, moon_core::net::Error::InvalidRequest(_)),
        "{error}"
    );
    home.client.delete_service("team", "direct").await.unwrap();
}
