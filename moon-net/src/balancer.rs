//! A service's replicas and the choice among them: power of two choices over
//! peak-EWMA latency times outstanding requests.
//!
//! tower's `p2c::Balance` over `PeakEwma` is the same algorithm; moon does
//! not use it because it takes `&mut self` to pick, so a proxy serving many
//! connections must put it behind a `Buffer` (a task and a channel hop for
//! every request, all picks serialised through that task), and its
//! `PeakEwma` counts outstanding requests by the reference count of a
//! handle, which sharing across connections would break. Here the picking is
//! `&self`: replicas' state is atomics and a per-replica mutex on the
//! latency estimate, shared by every connection and every thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use http::uri::Authority;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::body::{ProxyBody, Release};
use crate::endpoint::Endpoint;
use crate::ewma::RttEstimate;
use crate::metrics::{ReplicaCounters, ServiceCounters};
use crate::outlier::OutlierPolicy;
use crate::retry::RetryBudget;
use crate::upstream::ConnectionPool;

/// How a balancer weighs and gates replicas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BalancerConfig {
    /// The time constant of the latency estimate, in milliseconds: how long
    /// a slow sample keeps weighing on a replica.
    pub decay_ms: u64,
    /// The latency a replica is assumed to have before its first answer, in
    /// milliseconds.
    pub initial_rtt_ms: u64,
    /// A new replica takes requests only once a health check has passed.
    pub gate_on_health: bool,
    /// Passive outlier ejection.
    pub outlier: OutlierPolicy,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            decay_ms: 10_000,
            initial_rtt_ms: 1,
            gate_on_health: false,
            outlier: OutlierPolicy::default(),
        }
    }
}

/// Where a replica stands in the rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReplicaState {
    /// Taking requests.
    Ready,
    /// Not ready yet: its registry or its health checks say so.
    NotReady,
    /// Out of the rotation for a while after failing requests in a row.
    Ejected,
    /// Leaving: no new requests; it goes once its in-flight ones finish.
    Draining,
}

/// One replica as a balancer sees it, for status and tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// The replica's id.
    pub id: String,
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Where it stands.
    pub state: ReplicaState,
    /// Requests it is serving now.
    pub in_flight: u32,
    /// Requests sent to it.
    pub requests: u64,
    /// Requests it did not answer.
    pub failures: u64,
    /// Times it was ejected.
    pub ejections: u64,
    /// Its latency estimate now, in milliseconds.
    pub latency_ewma_ms: f64,
}

/// A replica and what the balancer keeps about it.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) endpoint: Endpoint,
    pub(crate) authority: Authority,
    registry_ready: AtomicBool,
    healthy: AtomicBool,
    draining: AtomicBool,
    in_flight: AtomicU32,
    rtt: Mutex<RttEstimate>,
    consecutive_failures: AtomicU32,
    ejections_in_a_row: AtomicU32,
    /// Nanoseconds since the balancer's epoch; 0 when not ejected.
    ejected_until_ns: AtomicU64,
    /// Since when, in nanoseconds since the epoch, the replica has had
    /// requests outstanding and given no answer. A replica that went slow
    /// has not answered yet, so its estimate cannot show it: the time it
    /// has kept a request waiting is a lower bound of its latency now.
    quiet_since_ns: AtomicU64,
    pub(crate) counters: ReplicaCounters,
    connections: ConnectionPool,
    /// The balancer's: woken when a draining replica's last request ends.
    changed: Arc<Notify>,
}

impl Replica {
    fn new(
        endpoint: Endpoint,
        healthy: bool,
        initial_rtt: Duration,
        now: Instant,
        changed: Arc<Notify>,
    ) -> Self {
        let authority = Authority::try_from(endpoint.addr.to_string().as_str())
            .expect("a socket address is a valid authority");
        Replica {
            registry_ready: AtomicBool::new(endpoint.ready),
            endpoint,
            authority,
            healthy: AtomicBool::new(healthy),
            draining: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            rtt: Mutex::new(RttEstimate::new(initial_rtt, now)),
            consecutive_failures: AtomicU32::new(0),
            ejections_in_a_row: AtomicU32::new(0),
            ejected_until_ns: AtomicU64::new(0),
            quiet_since_ns: AtomicU64::new(0),
            counters: ReplicaCounters::default(),
            connections: ConnectionPool::default(),
            changed,
        }
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A request to it ended.
    fn end_request(&self) {
        let before = self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if before == 1 && self.draining.load(Ordering::Relaxed) {
            self.changed.notify_waiters();
        }
    }

    fn is_ejected(&self, now_ns: u64) -> bool {
        self.ejected_until_ns.load(Ordering::Relaxed) > now_ns
    }

    fn state(&self, now_ns: u64) -> ReplicaState {
        if self.draining.load(Ordering::Relaxed) {
            ReplicaState::Draining
        } else if !self.registry_ready.load(Ordering::Relaxed)
            || !self.healthy.load(Ordering::Relaxed)
        {
            ReplicaState::NotReady
        } else if self.is_ejected(now_ns) {
            ReplicaState::Ejected
        } else {
            ReplicaState::Ready
        }
    }

    /// Latency × (outstanding + 1), the latency being the larger of the
    /// estimate and how long an outstanding request has waited unanswered.
    fn cost(&self, decay: Duration, now: Instant, now_ns: u64) -> f64 {
        let estimate = self.rtt.lock().expect("rtt lock").at(decay, now);
        let in_flight = self.in_flight();
        let waited = if in_flight > 0 {
            now_ns.saturating_sub(self.quiet_since_ns.load(Ordering::Relaxed)) as f64
        } else {
            0.0
        };
        estimate.max(waited) * f64::from(in_flight + 1)
    }
}

/// A service's replicas, the choice among them, and the service's counters.
#[derive(Debug)]
pub struct Balancer {
    service: String,
    config: BalancerConfig,
    decay: Duration,
    epoch: Instant,
    replicas: RwLock<Arc<[Arc<Replica>]>>,
    changed: Arc<Notify>,
    counters: ServiceCounters,
    retry_budget: RetryBudget,
}

impl Balancer {
    /// A balancer for `service` with no replicas yet.
    pub fn new(service: impl Into<String>, config: BalancerConfig) -> Arc<Self> {
        Arc::new(Balancer {
            service: service.into(),
            decay: Duration::from_millis(config.decay_ms),
            config,
            epoch: Instant::now(),
            replicas: RwLock::new(Arc::from(Vec::new())),
            changed: Arc::new(Notify::new()),
            counters: ServiceCounters::default(),
            retry_budget: RetryBudget::default(),
        })
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// How it weighs and gates replicas.
    pub fn config(&self) -> &BalancerConfig {
        &self.config
    }

    pub(crate) fn counters(&self) -> &ServiceCounters {
        &self.counters
    }

    /// Resolves at the next change of replicas or of their health.
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    pub(crate) fn retry_budget(&self) -> &RetryBudget {
        &self.retry_budget
    }

    pub(crate) fn replicas(&self) -> Arc<[Arc<Replica>]> {
        self.replicas.read().expect("replicas lock").clone()
    }

    fn nanos_since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Replaces the replicas with `endpoints`. Replicas that stay keep their
    /// latency estimate and counters; those that are gone drain: they take
    /// no new requests and are forgotten once their in-flight ones finish.
    pub fn set_endpoints(&self, endpoints: Vec<Endpoint>) {
        let now = Instant::now();
        let initial_rtt = Duration::from_millis(self.config.initial_rtt_ms);
        let mut guard = self.replicas.write().expect("replicas lock");
        let mut old: HashMap<&str, &Arc<Replica>> =
            guard.iter().map(|r| (r.endpoint.id.as_str(), r)).collect();
        let mut next: Vec<Arc<Replica>> = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            match old.remove(endpoint.id.as_str()) {
                Some(kept) if kept.endpoint.addr == endpoint.addr => {
                    kept.registry_ready.store(endpoint.ready, Ordering::Relaxed);
                    kept.draining.store(false, Ordering::Relaxed);
                    next.push(Arc::clone(kept));
                }
                moved => {
                    if let Some(moved) = moved {
                        moved.draining.store(true, Ordering::Relaxed);
                        if moved.in_flight() > 0 {
                            next.push(Arc::clone(moved));
                        }
                    }
                    let healthy = !self.config.gate_on_health;
                    let changed = Arc::clone(&self.changed);
                    next.push(Arc::new(Replica::new(
                        endpoint,
                        healthy,
                        initial_rtt,
                        now,
                        changed,
                    )));
                }
            }
        }
        for gone in old.into_values() {
            gone.draining.store(true, Ordering::Relaxed);
            if gone.in_flight() > 0 {
                next.push(Arc::clone(gone));
            }
        }
        *guard = Arc::from(next);
        drop(guard);
        self.changed.notify_waiters();
    }

    /// Marks a replica healthy or not, as an active health check found it.
    /// A healthy replica that was ejected is let back in at once.
    pub fn set_healthy(&self, id: &str, healthy: bool) {
        let replicas = self.replicas();
        let Some(replica) = replicas.iter().find(|r| r.endpoint.id == id) else {
            return;
        };
        let was = replica.healthy.swap(healthy, Ordering::Relaxed);
        let readmitted = healthy && replica.is_ejected(self.nanos_since_epoch(Instant::now()));
        if readmitted {
            replica.ejected_until_ns.store(0, Ordering::Relaxed);
            replica.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if healthy != was || readmitted {
            self.changed.notify_waiters();
        }
    }

    /// Forgets draining replicas whose requests have all finished.
    pub fn sweep_drained(&self) {
        let mut guard = self.replicas.write().expect("replicas lock");
        if guard
            .iter()
            .any(|r| r.draining.load(Ordering::Relaxed) && r.in_flight() == 0)
        {
            let kept: Vec<Arc<Replica>> = guard
                .iter()
                .filter(|r| !(r.draining.load(Ordering::Relaxed) && r.in_flight() == 0))
                .cloned()
                .collect();
            *guard = Arc::from(kept);
        }
    }

    /// The replicas now, with their state and counters.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        let now = Instant::now();
        let now_ns = self.nanos_since_epoch(now);
        self.replicas()
            .iter()
            .map(|r| ReplicaStatus {
                id: r.endpoint.id.clone(),
                addr: r.endpoint.addr,
                state: r.state(now_ns),
                in_flight: r.in_flight(),
                requests: r.counters.requests(),
                failures: r.counters.failures.load(Ordering::Relaxed),
                ejections: r.counters.ejections.load(Ordering::Relaxed),
                latency_ewma_ms: r.rtt.lock().expect("rtt lock").at(self.decay, now) / 1e6,
            })
            .collect()
    }

    /// Requests received, over the balancer's life.
    pub fn requests_total(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// Requests being served now.
    pub fn requests_in_flight(&self) -> u64 {
        self.replicas()
            .iter()
            .map(|r| u64::from(r.in_flight()))
            .sum()
    }

    /// Requests waiting for a replica (at zero replicas).
    pub fn requests_held(&self) -> u64 {
        self.counters.held.load(Ordering::Relaxed).max(0) as u64
    }

    /// Picks a replica among those ready, not `tried` already: of two taken
    /// at random, the one with the lower latency × (outstanding + 1).
    pub fn pick(self: &Arc<Self>, tried: &[&str]) -> Option<Lease> {
        let now = Instant::now();
        let now_ns = self.nanos_since_epoch(now);
        let replicas = self.replicas();
        let eligible = |r: &&Arc<Replica>| {
            r.state(now_ns) == ReplicaState::Ready && !tried.contains(&r.endpoint.id.as_str())
        };
        let count = replicas.iter().filter(eligible).count();
        let chosen = match count {
            0 => return None,
            1 => replicas.iter().find(eligible)?,
            _ => {
                let a = fastrand::usize(..count);
                let mut b = fastrand::usize(..count - 1);
                if b >= a {
                    b += 1;
                }
                let first = replicas.iter().filter(eligible).nth(a)?;
                let second = replicas.iter().filter(eligible).nth(b)?;
                if first.cost(self.decay, now, now_ns) <= second.cost(self.decay, now, now_ns) {
                    first
                } else {
                    second
                }
            }
        };
        if chosen.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            chosen.quiet_since_ns.store(now_ns, Ordering::Relaxed);
        }
        Some(Lease {
            balancer: Arc::clone(self),
            replica: Arc::clone(chosen),
            started: now,
            handed_over: false,
        })
    }

    /// Like [`pick`](Self::pick), but when no replica is ready waits up to
    /// `timeout` for one (a service scaled to zero starting a replica).
    /// Returns the lease and whether it had to wait.
    pub async fn pick_or_wait(self: &Arc<Self>, timeout: Duration) -> Option<(Lease, bool)> {
        if let Some(lease) = self.pick(&[]) {
            return Some((lease, false));
        }
        self.counters.held.fetch_add(1, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + timeout;
        let lease = loop {
            let changed = self.changed.notified();
            if let Some(lease) = self.pick(&[]) {
                break Some(lease);
            }
            // Ejections end without a notice: look again now and then.
            let next_look = (tokio::time::Instant::now() + Duration::from_millis(50)).min(deadline);
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(next_look) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break self.pick(&[]);
            }
        };
        self.counters.held.fetch_sub(1, Ordering::Relaxed);
        lease.map(|lease| (lease, true))
    }

    fn ejected_count(&self, replicas: &[Arc<Replica>], now_ns: u64) -> usize {
        replicas.iter().filter(|r| r.is_ejected(now_ns)).count()
    }

    fn on_failure(&self, replica: &Replica, now: Instant) {
        replica.counters.failures.fetch_add(1, Ordering::Relaxed);
        let policy = &self.config.outlier;
        let failures = replica.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let now_ns = self.nanos_since_epoch(now);
        // A replica back from an ejection, with no success since, is on
        // probation: its first failure sends it out again, for longer.
        let on_probation = replica.ejections_in_a_row.load(Ordering::Relaxed) > 0;
        if (failures < policy.consecutive_failures && !on_probation) || replica.is_ejected(now_ns) {
            return;
        }
        let replicas = self.replicas();
        let serving = replicas
            .iter()
            .filter(|r| !r.draining.load(Ordering::Relaxed))
            .count();
        if self.ejected_count(&replicas, now_ns) >= policy.max_ejected(serving) {
            return;
        }
        let nth = replica.ejections_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        let until = now_ns.saturating_add(policy.ejection_time(nth).as_nanos() as u64);
        replica.ejected_until_ns.store(until, Ordering::Relaxed);
        replica.consecutive_failures.store(0, Ordering::Relaxed);
        replica.counters.ejections.fetch_add(1, Ordering::Relaxed);
    }

    fn on_success(&self, replica: &Replica) {
        if replica.consecutive_failures.load(Ordering::Relaxed) != 0 {
            replica.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if replica.ejections_in_a_row.load(Ordering::Relaxed) != 0 {
            replica.ejections_in_a_row.store(0, Ordering::Relaxed);
        }
    }
}

/// A request's hold on a replica: counted as outstanding from the pick
/// until the lease is dropped (the answer's body has been sent).
#[derive(Debug)]
pub struct Lease {
    balancer: Arc<Balancer>,
    replica: Arc<Replica>,
    started: Instant,
    /// The request's end is now the answer body's to tell.
    handed_over: bool,
}

impl Lease {
    /// The replica's id.
    pub fn replica_id(&self) -> &str {
        &self.replica.endpoint.id
    }

    /// Where the replica listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.replica.endpoint.addr
    }

    pub(crate) fn connections(&self) -> &ConnectionPool {
        &self.replica.connections
    }

    /// Ends the lease, leaving the request outstanding until the answer's
    /// body tells the replica it ended.
    pub(crate) fn hand_over(mut self) -> Arc<dyn Release> {
        self.handed_over = true;
        Arc::clone(&self.replica) as Arc<dyn Release>
    }

    /// Where the replica listens, as a URI authority.
    pub fn authority(&self) -> &Authority {
        &self.replica.authority
    }

    /// The replica answered with `status`: its latency is sampled and
    /// gateway errors (502, 503, 504) count towards ejection.
    pub fn answered(&self, status: u16) {
        let (now, latency) = self.sample();
        self.replica.counters.record_answer(status, latency);
        if matches!(status, 502..=504) {
            self.balancer.on_failure(&self.replica, now);
        } else {
            self.balancer.on_success(&self.replica);
        }
    }

    /// The replica did not answer (refused, reset or timed out): the time
    /// spent counts as its latency, and the failure towards ejection.
    pub fn failed(&self) {
        let (now, _) = self.sample();
        self.balancer.on_failure(&self.replica, now);
    }

    /// Folds the time since the pick into the replica's latency estimate.
    fn sample(&self) -> (Instant, Duration) {
        let now = Instant::now();
        let latency = now.saturating_duration_since(self.started);
        let now_ns = self.balancer.nanos_since_epoch(now);
        self.replica.quiet_since_ns.store(now_ns, Ordering::Relaxed);
        let mut rtt = self.replica.rtt.lock().expect("rtt lock");
        rtt.record(latency, self.balancer.decay, now);
        (now, latency)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.handed_over {
            self.replica.end_request();
        }
    }
}

impl Release for Replica {
    fn release(&self, connection: Option<hyper::client::conn::http1::SendRequest<ProxyBody>>) {
        if let Some(connection) = connection {
            self.connections.put(connection);
        }
        self.end_request();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn endpoint(id: &str, port: u16) -> Endpoint {
        Endpoint::new(id, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn balancer(ids: &[&str]) -> Arc<Balancer> {
        let balancer = Balancer::new("svc", BalancerConfig::default());
        let endpoints = ids
            .iter()
            .enumerate()
            .map(|(i, id)| endpoint(id, 9000 + i as u16))
            .collect();
        balancer.set_endpoints(endpoints);
        balancer
    }

    #[test]
    fn a_replica_that_answered_slowly_is_avoided() {
        let balancer = balancer(&["fast-0", "fast-1", "slow"]);
        for replica in balancer.replicas().iter() {
            let sample = if replica.endpoint.id == "slow" {
                100
            } else {
                1
            };
            replica.rtt.lock().unwrap().record(
                Duration::from_millis(sample),
                balancer.decay,
                Instant::now(),
            );
        }
        let picks: Vec<String> = (0..1000)
            .map(|_| balancer.pick(&[]).unwrap().replica_id().to_owned())
            .collect();
        assert_eq!(picks.iter().filter(|id| *id == "slow").count(), 0);
        assert!(picks.iter().filter(|id| *id == "fast-0").count() > 300);
    }

    #[test]
    fn outstanding_requests_spread_picks_across_equal_replicas() {
        let balancer = balancer(&["a", "b"]);
        let held: Vec<Lease> = (0..10).map(|_| balancer.pick(&[]).unwrap()).collect();
        let on_a = held.iter().filter(|l| l.replica_id() == "a").count();
        assert!(
            (4..=6).contains(&on_a),
            "10 outstanding requests split {on_a}/10"
        );
    }

    #[test]
    fn failures_in_a_row_eject_and_the_ejection_ends() {
        let balancer = balancer(&["a", "b"]);
        for _ in 0..3 {
            let lease = balancer.pick(&["b"]).unwrap();
            lease.failed();
        }
        let states: Vec<_> = balancer
            .status()
            .into_iter()
            .map(|s| (s.id, s.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("a".into(), ReplicaState::Ejected),
                ("b".into(), ReplicaState::Ready)
            ]
        );
        assert!((0..100).all(|_| balancer.pick(&[]).unwrap().replica_id() == "b"));
        // A passing health check lets it back in before its time is up.
        balancer.set_healthy("a", true);
        assert_eq!(balancer.status()[0].state, ReplicaState::Ready);
    }

    #[test]
    fn the_last_replica_standing_is_not_ejected() {
        let balancer = balancer(&["a", "b"]);
        for _ in 0..5 {
            for other in ["a", "b"] {
                if let Some(lease) = balancer.pick(&[other]) {
                    lease.failed();
                }
            }
        }
        let ejected = balancer
            .status()
            .iter()
            .filter(|s| s.state == ReplicaState::Ejected)
            .count();
        assert_eq!(ejected, 1);
    }

    #[test]
    fn a_removed_replica_drains_then_goes() {
        let balancer = balancer(&["a", "b"]);
        let on_a = loop {
            let lease = balancer.pick(&[]).unwrap();
            if lease.replica_id() == "a" {
                break lease;
            }
        };
        balancer.set_endpoints(vec![endpoint("b", 9001)]);
        let status = balancer.status();
        assert_eq!(status.len(), 2);
        assert_eq!(status[1].state, ReplicaState::Draining);
        assert!((0..100).all(|_| balancer.pick(&[]).unwrap().replica_id() == "b"));
        drop(on_a);
        balancer.sweep_drained();
        assert_eq!(balancer.status().len(), 1);
    }

    #[test]
    fn gated_replicas_wait_for_a_health_check() {
        let balancer = Balancer::new(
            "svc",
            BalancerConfig {
                gate_on_health: true,
                ..BalancerConfig::default()
            },
        );
        balancer.set_endpoints(vec![endpoint("a", 9000)]);
        assert!(balancer.pick(&[]).is_none());
        balancer.set_healthy("a", true);
        assert_eq!(balancer.pick(&[]).unwrap().replica_id(), "a");
    }
}
