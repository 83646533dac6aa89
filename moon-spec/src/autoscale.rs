//! How many replicas a service should have, from what its proxy observed:
//! the HorizontalPodAutoscaler's rule, so that a service scales the same way
//! on one machine as on a cluster.
//!
//! - desired = ceil(current × observed per replica / target), left at the
//!   current count while within 10% of the target (HPA's tolerance);
//! - a scale-up takes the lowest recommendation of its window, a scale-down
//!   the highest of its own (HPA's stabilization, which keeps a burst or a
//!   lull from flapping the count);
//! - held within `[minReplicas, maxReplicas]`;
//! - at zero replicas, a request waiting for one starts one at once, whatever
//!   the scale-up window: it is a user waiting, not a trend.

use std::collections::VecDeque;

use crate::spec::Autoscale;

/// HPA's tolerance: no change while observed / target is within 1 ± 0.1.
const TOLERANCE: f64 = 0.1;

/// What the proxy saw of a service since the last decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// When, in milliseconds on any monotonic clock.
    pub now_ms: u64,
    /// Replicas running now.
    pub replicas: u32,
    /// Requests per second over all replicas.
    pub requests_per_second: f64,
    /// Requests being served now, over all replicas.
    pub in_flight: f64,
    /// Requests waiting for a replica (the service is at zero).
    pub held: u64,
}

/// A decision: the replica count to have, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Replicas to have.
    pub replicas: u32,
    /// Why, for an event: `"2 requests/s per replica against a target of 1"`.
    pub reason: String,
}

/// A service's autoscaler: its spec and its recent recommendations.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    spec: Autoscale,
    /// (time, recommended replicas), oldest first, within the longer window.
    recommendations: VecDeque<(u64, u32)>,
}

impl Autoscaler {
    /// An autoscaler with no history.
    pub fn new(spec: Autoscale) -> Self {
        Autoscaler {
            spec,
            recommendations: VecDeque::new(),
        }
    }

    /// The spec it follows.
    pub fn spec(&self) -> &Autoscale {
        &self.spec
    }

    /// Decides the replica count for `seen`, and remembers the
    /// recommendation for the windows of later decisions.
    pub fn decide(&mut self, seen: &Observation) -> Decision {
        let (raw, reason) = self.recommend(seen);
        let recommended = raw.clamp(self.spec.min_replicas, self.spec.max_replicas.max(1));
        let longest = u64::from(
            self.spec
                .scale_up_stabilization_seconds
                .max(self.spec.scale_down_stabilization_seconds),
        ) * 1000;
        while self
            .recommendations
            .front()
            .is_some_and(|&(at, _)| at + longest < seen.now_ms)
        {
            self.recommendations.pop_front();
        }
        self.recommendations.push_back((seen.now_ms, recommended));

        if seen.replicas == 0 && seen.held > 0 {
            return Decision {
                replicas: recommended.max(1),
                reason: format!("{} requests wait at zero replicas", seen.held),
            };
        }
        let within = |seconds: u32| {
            let since = seen.now_ms.saturating_sub(u64::from(seconds) * 1000);
            self.recommendations
                .iter()
                .filter(move |&&(at, _)| at >= since)
                .map(|&(_, n)| n)
        };
        let up = within(self.spec.scale_up_stabilization_seconds)
            .min()
            .unwrap_or(recommended);
        let down = within(self.spec.scale_down_stabilization_seconds)
            .max()
            .unwrap_or(recommended);
        let replicas = if seen.replicas < up {
            up
        } else if seen.replicas > down {
            down
        } else {
            seen.replicas
        };
        Decision { replicas, reason }
    }

    /// The count the metric asks for now, before windows and bounds.
    fn recommend(&self, seen: &Observation) -> (u32, String) {
        let (observed, target, unit) = match (
            self.spec.target_in_flight,
            self.spec.target_requests_per_second,
        ) {
            (Some(target), _) => (seen.in_flight, target, "requests in flight"),
            (None, Some(target)) => (seen.requests_per_second, target, "requests/s"),
            (None, None) => return (seen.replicas, "no target".into()),
        };
        if seen.replicas == 0 {
            let wanted = if observed > 0.0 || seen.held > 0 {
                (observed / target).ceil().max(1.0)
            } else {
                0.0
            };
            return (
                wanted as u32,
                format!("{observed:.1} {unit} at zero replicas, target {target} per replica"),
            );
        }
        let per_replica = observed / f64::from(seen.replicas);
        let ratio = per_replica / target;
        let reason = format!("{per_replica:.2} {unit} per replica against a target of {target}");
        if (ratio - 1.0).abs() <= TOLERANCE {
            return (seen.replicas, reason);
        }
        let desired = (f64::from(seen.replicas) * ratio).ceil();
        (desired.min(f64::from(u32::MAX)) as u32, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: u32, max: u32, up: u32, down: u32) -> Autoscale {
        Autoscale {
            min_replicas: min,
            max_replicas: max,
            target_requests_per_second: None,
            target_in_flight: Some(4.0),
            scale_up_stabilization_seconds: up,
            scale_down_stabilization_seconds: down,
        }
    }

    fn seen(now_s: u64, replicas: u32, in_flight: f64) -> Observation {
        Observation {
            now_ms: now_s * 1000,
            replicas,
            requests_per_second: 0.0,
            in_flight,
            held: 0,
        }
    }

    #[test]
    fn the_count_follows_the_metric_over_the_target() {
        let mut scaler = Autoscaler::new(spec(1, 10, 0, 0));
        // 2 replicas with 20 in flight, target 4 each: 5 replicas.
        assert_eq!(scaler.decide(&seen(1, 2, 20.0)).replicas, 5);
        // Within 10% of the target: no change.
        assert_eq!(scaler.decide(&seen(2, 5, 21.0)).replicas, 5);
        // Bounded by maxReplicas.
        assert_eq!(scaler.decide(&seen(3, 5, 400.0)).replicas, 10);
    }

    #[test]
    fn a_scale_down_waits_out_its_window() {
        let mut scaler = Autoscaler::new(spec(1, 10, 0, 60));
        assert_eq!(scaler.decide(&seen(0, 4, 16.0)).replicas, 4);
        // The load drops: 1 replica would do, but 4 was recommended within 60 s.
        assert_eq!(scaler.decide(&seen(10, 4, 4.0)).replicas, 4);
        assert_eq!(scaler.decide(&seen(59, 4, 4.0)).replicas, 4);
        // Once the high recommendation is older than the window, down it goes.
        assert_eq!(scaler.decide(&seen(61, 4, 4.0)).replicas, 1);
    }

    #[test]
    fn a_scale_up_window_takes_the_lowest_recommendation() {
        let mut scaler = Autoscaler::new(spec(1, 10, 30, 0));
        assert_eq!(scaler.decide(&seen(0, 1, 4.0)).replicas, 1);
        // A burst asks for 5, but 1 was recommended within 30 s.
        assert_eq!(scaler.decide(&seen(5, 1, 20.0)).replicas, 1);
        assert_eq!(scaler.decide(&seen(31, 1, 20.0)).replicas, 5);
    }

    #[test]
    fn an_idle_service_goes_to_zero_and_a_waiting_request_brings_one_back_at_once() {
        let mut scaler = Autoscaler::new(spec(0, 4, 300, 0));
        assert_eq!(scaler.decide(&seen(0, 1, 0.0)).replicas, 0);
        let mut waiting = seen(1, 0, 0.0);
        waiting.held = 1;
        let decision = scaler.decide(&waiting);
        assert_eq!(
            decision.replicas, 1,
            "the scale-up window does not hold a waiting request"
        );
        assert_eq!(decision.reason, "1 requests wait at zero replicas");
        // Nothing waits and nothing flows: it stays at zero.
        assert_eq!(scaler.decide(&seen(2, 0, 0.0)).replicas, 0);
    }

    #[test]
    fn min_replicas_holds_when_idle() {
        let mut scaler = Autoscaler::new(spec(2, 4, 0, 0));
        assert_eq!(scaler.decide(&seen(0, 3, 0.0)).replicas, 2);
    }

    #[test]
    fn requests_per_second_are_a_target_too() {
        let mut scaler = Autoscaler::new(Autoscale {
            target_in_flight: None,
            target_requests_per_second: Some(100.0),
            ..spec(1, 10, 0, 0)
        });
        let observed = Observation {
            requests_per_second: 450.0,
            ..seen(0, 2, 0.0)
        };
        let decision = scaler.decide(&observed);
        assert_eq!(decision.replicas, 5);
        assert_eq!(
            decision.reason,
            "225.00 requests/s per replica against a target of 100"
        );
    }
}
