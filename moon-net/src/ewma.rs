//! Peak-EWMA latency: the load measure the balancer compares replicas by.
//!
//! The estimate jumps up to any sample above it at once (the peak) and
//! moves down towards lower samples, and towards zero while no sample comes,
//! with a time constant (`decay`). A replica that turned slow is avoided at
//! once; one that was slow long ago is tried again now and then. This is the
//! measure Finagle and Linkerd balance by, and tower's `PeakEwma`.

use std::time::{Duration, Instant};

/// A replica's latency estimate, in nanoseconds.
#[derive(Clone, Debug)]
pub(crate) struct RttEstimate {
    estimate_ns: f64,
    updated_at: Instant,
}

impl RttEstimate {
    /// An estimate that starts at `initial` (a replica with no samples yet).
    pub(crate) fn new(initial: Duration, now: Instant) -> Self {
        RttEstimate {
            estimate_ns: initial.as_nanos() as f64,
            updated_at: now,
        }
    }

    /// Folds in a sample taken at `now`.
    pub(crate) fn record(&mut self, sample: Duration, decay: Duration, now: Instant) {
        let sample_ns = sample.as_nanos() as f64;
        if sample_ns > self.estimate_ns {
            self.estimate_ns = sample_ns;
        } else {
            let weight = decay_weight(now.saturating_duration_since(self.updated_at), decay);
            self.estimate_ns = self.estimate_ns * weight + sample_ns * (1.0 - weight);
        }
        self.updated_at = self.updated_at.max(now);
    }

    /// The estimate at `now`, decayed towards zero for the time since the
    /// last sample, without changing it.
    pub(crate) fn at(&self, decay: Duration, now: Instant) -> f64 {
        self.estimate_ns * decay_weight(now.saturating_duration_since(self.updated_at), decay)
    }
}

/// How much of the old estimate is left after `elapsed`: e^(-elapsed/decay).
fn decay_weight(elapsed: Duration, decay: Duration) -> f64 {
    if decay.is_zero() {
        return 0.0;
    }
    (-(elapsed.as_secs_f64() / decay.as_secs_f64())).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: Duration = Duration::from_secs(10);

    #[test]
    fn a_slower_sample_is_taken_at_once() {
        let t0 = Instant::now();
        let mut rtt = RttEstimate::new(Duration::from_millis(1), t0);
        rtt.record(
            Duration::from_millis(100),
            DECAY,
            t0 + Duration::from_millis(5),
        );
        assert_eq!(rtt.at(DECAY, t0 + Duration::from_millis(5)), 100e6);
    }

    #[test]
    fn faster_samples_pull_the_estimate_down_with_time() {
        let t0 = Instant::now();
        let mut rtt = RttEstimate::new(Duration::from_millis(100), t0);
        rtt.record(
            Duration::from_millis(1),
            DECAY,
            t0 + Duration::from_millis(10),
        );
        let soon = rtt.at(DECAY, t0 + Duration::from_millis(10));
        assert!(
            soon > 99e6,
            "10 ms after, the estimate barely moved: {soon}"
        );
        rtt.record(
            Duration::from_millis(1),
            DECAY,
            t0 + Duration::from_secs(30),
        );
        let later = rtt.at(DECAY, t0 + Duration::from_secs(30));
        assert!(
            later < 6e6,
            "30 s of fast samples bring it near 1 ms: {later}"
        );
    }

    #[test]
    fn without_samples_the_estimate_decays_towards_zero() {
        let t0 = Instant::now();
        let rtt = RttEstimate::new(Duration::from_millis(100), t0);
        let after_one_decay = rtt.at(DECAY, t0 + DECAY);
        assert!((after_one_decay - 100e6 / std::f64::consts::E).abs() < 1e3);
        assert_eq!(rtt.at(DECAY, t0), 100e6);
    }
}
