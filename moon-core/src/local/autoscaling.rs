//! Services scaled by load on this machine. The agent reads the proxy's
//! counters for each autoscaled service once a second, turns two readings
//! into the autoscaler's observation (requests per second from the change of
//! the request count, requests in flight, requests held), and scales the
//! service to the autoscaler's decision, as the HorizontalPodAutoscaler does
//! on a cluster with the same rule.
//!
//! A service that may sit at zero replicas is read five times a second
//! instead, and so is one whose first replica is starting: a request held
//! there is a user waiting for a replica to start, the wait for the next
//! reading adds to that user's cold start, and the cold start reported is
//! only as fine as the readings.
//!
//! This is the bookkeeping between readings, and nothing else: no IO, so
//! its timing is tested with plain numbers.

use std::collections::HashMap;

use moon_net::ReplicaState;
use moon_net::proxy::RouteStatus;
use moon_spec::autoscale::{Autoscaler, Decision, Observation};

use crate::spec::Autoscale;

/// How often an autoscaled service is read.
pub const INTERVAL_MS: i64 = 1_000;
/// How often a service at zero replicas that may stay there is read.
pub const AT_ZERO_INTERVAL_MS: i64 = 200;

/// What the agent remembers of its autoscaled services between readings.
#[derive(Debug, Default)]
pub struct Autoscaling {
    services: HashMap<i64, Scaled>,
    /// When the next reading is due; now when unknown.
    next_ms: Option<i64>,
}

/// What changed for one service at a reading.
#[derive(Debug, Default, PartialEq)]
pub struct Reading {
    /// The replica count to scale to, and why, when it differs from now.
    pub scale: Option<Decision>,
    /// A cold start that ended: a replica became ready after the service
    /// scaled up from zero for requests that waited.
    pub cold_start: Option<ColdStart>,
}

/// A scale-up from zero replicas, from its decision to a ready replica.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdStart {
    /// Milliseconds from the decision to the first ready replica.
    pub ms: i64,
    /// Requests that were waiting when the service scaled up.
    pub waiting: u64,
}

#[derive(Debug)]
struct Scaled {
    autoscaler: Autoscaler,
    /// The last reading of the route's request count, and when.
    last: Option<(i64, u64)>,
    /// The cold start under way: since when, and for how many requests.
    cold: Option<(i64, u64)>,
    /// The count last held back by the quota, told once rather than at every reading.
    limited: Option<u32>,
}

impl Autoscaling {
    /// Whether the services are due to be read at `now_ms`.
    pub fn due(&self, now_ms: i64) -> bool {
        self.next_ms.is_none_or(|at| at <= now_ms)
    }

    /// When the next reading is due, if a service is autoscaled.
    pub fn next_ms(&self) -> Option<i64> {
        self.next_ms
    }

    /// Forgets the services that are not in `running` (ended or deleted),
    /// and sets when the next reading is due for those that are, given the
    /// replica count and autoscale spec of each.
    pub fn schedule(&mut self, now_ms: i64, running: &[(i64, u32, &Autoscale)]) {
        self.services
            .retain(|id, _| running.iter().any(|(running, _, _)| running == id));
        let interval = running
            .iter()
            .map(|(id, replicas, spec)| {
                let cold = self.services.get(id).is_some_and(|s| s.cold.is_some());
                if cold || (*replicas == 0 && spec.min_replicas == 0) {
                    AT_ZERO_INTERVAL_MS
                } else {
                    INTERVAL_MS
                }
            })
            .min();
        self.next_ms = interval.map(|interval| now_ms + interval);
    }

    /// Notes that the quota held a scale of service `job_id` to `asked`
    /// back; whether that is news worth an event (it was not the last one noted).
    pub fn held_back(&mut self, job_id: i64, asked: u32) -> bool {
        self.services
            .get_mut(&job_id)
            .is_some_and(|scaled| scaled.limited.replace(asked) != Some(asked))
    }

    /// Notes that service `job_id` scaled as its autoscaler asked.
    pub fn scaled(&mut self, job_id: i64) {
        if let Some(scaled) = self.services.get_mut(&job_id) {
            scaled.limited = None;
        }
    }

    /// Takes one reading of a service: `replicas` is its replica count now,
    /// `route` what the proxy says of it (none while the proxy has no route
    /// for it yet). The first reading only starts the count of requests,
    /// unless a request waits at zero replicas, which scales up at once.
    pub fn read(
        &mut self,
        job_id: i64,
        spec: &Autoscale,
        replicas: u32,
        route: Option<&RouteStatus>,
        now_ms: i64,
    ) -> Reading {
        let scaled = self.services.entry(job_id).or_insert_with(|| Scaled {
            autoscaler: Autoscaler::new(spec.clone()),
            last: None,
            cold: None,
            limited: None,
        });
        if scaled.autoscaler.spec() != spec {
            scaled.autoscaler = Autoscaler::new(spec.clone());
        }
        let Some(route) = route else {
            return Reading::default();
        };
        let mut reading = Reading::default();
        if let Some((since, waiting)) = scaled.cold
            && route
                .replicas
                .iter()
                .any(|r| r.state == ReplicaState::Ready)
        {
            scaled.cold = None;
            reading.cold_start = Some(ColdStart {
                ms: now_ms - since,
                waiting,
            });
        }
        let previous = scaled.last.replace((now_ms, route.requests_total));
        let requests_per_second = match previous {
            // A count that went down belongs to a route made again (the
            // proxy restarted): it starts over.
            Some((at, total)) if now_ms > at && route.requests_total >= total => {
                (route.requests_total - total) as f64 * 1000.0 / (now_ms - at) as f64
            }
            _ if replicas == 0 && route.held > 0 => 0.0,
            _ => return reading,
        };
        let decision = scaled.autoscaler.decide(&Observation {
            now_ms: now_ms.max(0) as u64,
            replicas,
            requests_per_second,
            in_flight: route.in_flight as f64,
            held: route.held,
        });
        if decision.replicas != replicas {
            if replicas == 0 {
                scaled.cold = Some((now_ms, route.held));
            }
            reading.scale = Some(decision);
        }
        reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moon_net::ReplicaStatus;

    fn spec(min: u32, max: u32, target_rps: f64) -> Autoscale {
        Autoscale {
            min_replicas: min,
            max_replicas: max,
            target_requests_per_second: Some(target_rps),
            target_in_flight: None,
            scale_up_stabilization_seconds: 0,
            scale_down_stabilization_seconds: 0,
        }
    }

    fn route(requests_total: u64, held: u64, ready: usize) -> RouteStatus {
        RouteStatus {
            service: "t.s".into(),
            listen: "127.0.0.1:1".parse().unwrap(),
            requests_total,
            in_flight: 0,
            held,
            replicas: (0..ready)
                .map(|i| ReplicaStatus {
                    id: format!("replica-{i}"),
                    addr: "127.0.0.1:2".parse().unwrap(),
                    state: ReplicaState::Ready,
                    in_flight: 0,
                    requests: 0,
                    failures: 0,
                    ejections: 0,
                    latency_ewma_ms: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn the_first_reading_only_starts_the_count() {
        let mut scaling = Autoscaling::default();
        let reading = scaling.read(1, &spec(1, 4, 10.0), 1, Some(&route(500, 0, 1)), 0);
        assert_eq!(reading, Reading::default());
    }

    #[test]
    fn the_rate_is_the_change_of_the_count_over_the_time_between_readings() {
        let mut scaling = Autoscaling::default();
        let spec = spec(1, 8, 10.0);
        scaling.read(1, &spec, 1, Some(&route(0, 0, 1)), 0);
        // 40 requests in 1 s on one replica, against 10 per replica: 4.
        let reading = scaling.read(1, &spec, 1, Some(&route(40, 0, 1)), 1_000);
        let decision = reading.scale.expect("a scale-up");
        assert_eq!(decision.replicas, 4);
        assert!(
            decision.reason.contains("40.00 requests/s per replica"),
            "{decision:?}"
        );
        // 40 more over 2 s on four: 5 per replica, half the target.
        let reading = scaling.read(1, &spec, 4, Some(&route(80, 0, 4)), 3_000);
        assert_eq!(reading.scale.map(|d| d.replicas), Some(2));
    }

    #[test]
    fn a_count_that_went_down_starts_over_without_a_decision() {
        let mut scaling = Autoscaling::default();
        let spec = spec(1, 8, 10.0);
        scaling.read(1, &spec, 2, Some(&route(900, 0, 2)), 0);
        let reading = scaling.read(1, &spec, 2, Some(&route(3, 0, 2)), 1_000);
        assert_eq!(reading, Reading::default());
        let reading = scaling.read(1, &spec, 2, Some(&route(43, 0, 2)), 2_000);
        assert_eq!(reading.scale.map(|d| d.replicas), Some(4));
    }

    #[test]
    fn a_request_waiting_at_zero_scales_up_at_the_first_reading_and_times_the_cold_start() {
        let mut scaling = Autoscaling::default();
        let spec = spec(0, 4, 10.0);
        let reading = scaling.read(1, &spec, 0, Some(&route(2, 2, 0)), 5_000);
        let decision = reading.scale.expect("a scale-up from zero");
        assert_eq!(decision.replicas, 1);
        assert!(decision.reason.contains("2 requests wait"), "{decision:?}");
        // Started, not ready yet: no cold start to report.
        let reading = scaling.read(1, &spec, 1, Some(&route(2, 2, 0)), 5_200);
        assert_eq!(reading.cold_start, None);
        let reading = scaling.read(1, &spec, 1, Some(&route(2, 0, 1)), 5_400);
        assert_eq!(
            reading.cold_start,
            Some(ColdStart {
                ms: 400,
                waiting: 2
            })
        );
    }

    #[test]
    fn an_idle_service_scales_to_zero_and_stays_there_without_requests() {
        let mut scaling = Autoscaling::default();
        let spec = spec(0, 4, 10.0);
        scaling.read(1, &spec, 1, Some(&route(7, 0, 1)), 0);
        let reading = scaling.read(1, &spec, 1, Some(&route(7, 0, 1)), 1_000);
        assert_eq!(reading.scale.map(|d| d.replicas), Some(0));
        let reading = scaling.read(1, &spec, 0, Some(&route(7, 0, 0)), 1_200);
        assert_eq!(reading.scale, None);
    }

    #[test]
    fn a_scale_held_back_by_the_quota_is_news_once_until_it_changes() {
        let mut scaling = Autoscaling::default();
        let spec = spec(1, 8, 10.0);
        scaling.read(1, &spec, 1, None, 0);
        assert!(scaling.held_back(1, 6));
        assert!(!scaling.held_back(1, 6));
        assert!(scaling.held_back(1, 8));
        scaling.scaled(1);
        assert!(scaling.held_back(1, 8));
        assert!(!scaling.held_back(2, 8), "an unknown service is never news");
    }

    #[test]
    fn services_at_zero_are_read_more_often_and_ended_ones_forgotten() {
        let mut scaling = Autoscaling::default();
        assert!(scaling.due(0));
        let (at_zero, busy) = (spec(0, 4, 1.0), spec(1, 4, 1.0));
        scaling.read(1, &at_zero, 0, None, 0);
        scaling.read(2, &busy, 3, None, 0);
        scaling.schedule(10_000, &[(1, 0, &at_zero), (2, 3, &busy)]);
        assert_eq!(scaling.next_ms(), Some(10_000 + AT_ZERO_INTERVAL_MS));
        assert!(!scaling.due(10_100));
        scaling.schedule(10_000, &[(2, 3, &busy)]);
        assert_eq!(scaling.next_ms(), Some(10_000 + INTERVAL_MS));
        // A cold start under way is timed at the finer interval.
        scaling.read(3, &at_zero, 0, Some(&route(1, 1, 0)), 10_000);
        scaling.schedule(10_000, &[(2, 3, &busy), (3, 1, &at_zero)]);
        assert_eq!(scaling.next_ms(), Some(10_000 + AT_ZERO_INTERVAL_MS));
        scaling.schedule(10_000, &[(2, 3, &busy)]);
        assert_eq!(scaling.services.len(), 1);
        scaling.schedule(10_000, &[]);
        assert_eq!(scaling.next_ms(), None);
        assert!(scaling.services.is_empty());
    }
}
