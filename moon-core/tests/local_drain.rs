//! A replica a scale-down drains is stopped once its drain deadline passes,
//! even with a request that never ends. (Its own test binary: it shortens
//! the deadline for every agent this process starts.)

mod common;

use std::time::{Duration, Instant};

use common::{Home, tenant};
use moon_core::spec::{TenantQuota, service_from_yaml};

/// A replica whose `/hang` never answers; anything else answers at once.
const REPLICA: &str = r#"
import http.server, os, time
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/hang":
            time.sleep(3600)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_a_request_that_never_ends_is_stopped_after_its_drain_deadline() {
    // SAFETY: this is the only test in this binary, and it sets the variable before any thread reads it.
    unsafe { std::env::set_var("MOON_SERVICE_DRAIN_SECONDS", "2") };
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let spec = service_from_yaml(&format!(
        "kind: Service\nname: stuck\ntenant: team\ncommand: [python3, -c, {}]\nreplicas: 2\n\
         cpus: 100m\nmemory: 64Mi\nreadiness: {{httpPath: /healthz}}\n",
        serde_json::to_string(REPLICA).unwrap()
    ))
    .unwrap();
    home.client.apply_service(&spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let status = home.client.get_service("team", "stuck").await.unwrap();
        if status.ready_replicas == 2
            && let Some(url) = status.url
        {
            break url;
        }
        assert!(Instant::now() < deadline, "not ready: {status:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Requests that hang on both replicas, so that the one scaled away has one.
    let client = reqwest::Client::new();
    let hanging: Vec<_> = (0..6)
        .map(|_| tokio::spawn(client.get(format!("{url}/hang")).send()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = home.client.get_service("team", "stuck").await.unwrap();
        if status.replicas.iter().all(|r| r.in_flight > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "not both busy: {status:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    home.client.scale_service("team", "stuck", 1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = home.client.get_service("team", "stuck").await.unwrap();
        if status.replicas.len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hung replica was never stopped: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = home.client.events("team", "stuck", None).await.unwrap();
    let timed_out: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "DrainTimedOut")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        timed_out,
        ["replica-1 still had requests in flight after 2s of draining: stopping it"]
    );
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        200,
        "the remaining replica serves"
    );
    home.client.delete_service("team", "stuck").await.unwrap();
    for request in hanging {
        request.abort();
    }
}
