//! Active health checks of a route's replicas: a replica not ready yet is
//! checked as soon as it is added, then every 50 ms, a ready one every
//! interval; a pass lets a replica in (and back in after an ejection),
//! failures in a row take it out.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::balancer::{Balancer, ReplicaState};
use crate::proxy::route::HealthCheck;
use crate::upstream::get_once;

const NOT_READY_INTERVAL: Duration = Duration::from_millis(50);

/// Checks `balancer`'s replicas until the balancer is dropped.
pub(crate) async fn check_replicas(balancer: Weak<Balancer>, check: HealthCheck) {
    let interval = Duration::from_millis(check.interval_ms);
    let timeout = Duration::from_millis(check.timeout_ms);
    let mut last_checked: HashMap<String, Instant> = HashMap::new();
    let mut failures: HashMap<String, u32> = HashMap::new();
    let mut tick = tokio::time::interval(NOT_READY_INTERVAL.min(interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(balancer) = balancer.upgrade() else {
            return;
        };
        // A replica just added is checked at once: a request may be held
        // waiting for it (a cold start).
        tokio::select! {
            _ = tick.tick() => {}
            _ = balancer.changed() => {}
        }
        balancer.sweep_drained();
        let now = Instant::now();
        let replicas = balancer.status();
        let due: Vec<_> = replicas
            .into_iter()
            .filter(|r| r.state != ReplicaState::Draining)
            .filter(|r| {
                let every = if r.state == ReplicaState::Ready {
                    interval
                } else {
                    NOT_READY_INTERVAL
                };
                last_checked
                    .get(&r.id)
                    .is_none_or(|at| now.duration_since(*at) >= every)
            })
            .collect();
        let checks = due.iter().map(|replica| {
            let check = &check;
            async move {
                let passed = tokio::time::timeout(timeout, probe(check, replica.addr))
                    .await
                    .unwrap_or(false);
                (replica, passed)
            }
        });
        for (replica, passed) in futures::future::join_all(checks).await {
            last_checked.insert(replica.id.clone(), now);
            let failed_in_a_row = failures.entry(replica.id.clone()).or_default();
            if passed {
                *failed_in_a_row = 0;
                balancer.set_healthy(&replica.id, true);
            } else {
                *failed_in_a_row += 1;
                if *failed_in_a_row >= check.failure_threshold
                    || replica.state == ReplicaState::NotReady
                {
                    balancer.set_healthy(&replica.id, false);
                }
            }
        }
        let present: std::collections::HashSet<String> =
            balancer.status().into_iter().map(|r| r.id).collect();
        last_checked.retain(|id, _| present.contains(id));
        failures.retain(|id, _| present.contains(id));
    }
}

async fn probe(check: &HealthCheck, addr: std::net::SocketAddr) -> bool {
    match &check.http_path {
        None => TcpStream::connect(addr).await.is_ok(),
        Some(path) => get_once(addr, path)
            .await
            .is_ok_and(|status| status.is_success() || status.is_redirection()),
    }
}
