//! Counters and latency histograms of services and their replicas. Every
//! update is a relaxed atomic add: these sit on the request path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with Prometheus's default-like buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last one is +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// What one replica has served.
#[derive(Debug, Default)]
pub(crate) struct ReplicaCounters {
    /// Answers by status class: 1xx to 5xx.
    pub(crate) answers: [AtomicU64; 5],
    /// Requests that got no answer (refused, reset, timed out).
    pub(crate) failures: AtomicU64,
    pub(crate) ejections: AtomicU64,
    pub(crate) latency: Histogram,
}

impl ReplicaCounters {
    pub(crate) fn record_answer(&self, status: u16, latency: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.answers[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(latency);
    }

    pub(crate) fn requests(&self) -> u64 {
        self.answers
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
            + self.failures.load(Ordering::Relaxed)
    }
}

/// What a service has seen, over all its replicas.
#[derive(Debug, Default)]
pub(crate) struct ServiceCounters {
    pub(crate) requests: AtomicU64,
    /// Requests waiting for a replica to start (scale from zero).
    pub(crate) held: AtomicI64,
    /// Answered by the proxy itself because no replica could be reached.
    pub(crate) unavailable: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) cold_starts: AtomicU64,
    /// From a request held at zero replicas to its answer's headers.
    pub(crate) cold_start_latency: Histogram,
    /// Every request, from arrival to its answer's headers.
    pub(crate) latency: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(20));
        let mut out = String::new();
        histogram.render(&mut out, "h", "service=\"s\"");
        assert!(
            out.contains("h_bucket{service=\"s\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{service=\"s\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{service=\"s\",le=\"10\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{service=\"s\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("h_count{service=\"s\"} 3\n"), "{out}");
        assert!(out.contains("h_sum{service=\"s\"} 20.0033\n"), "{out}");
    }
}
