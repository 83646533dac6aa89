//! Services' and replicas' counters in Prometheus's text exposition format.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::balancer::Balancer;
use crate::metrics::{Histogram, ServiceCounters};

/// The Prometheus text exposition of `balancers`.
pub fn render_prometheus<'a>(balancers: impl IntoIterator<Item = &'a Balancer>) -> String {
    let mut out = String::new();
    let balancers: Vec<&Balancer> = balancers.into_iter().collect();
    let service_metrics: [(&str, &str, &str); 6] = [
        ("moon_proxy_requests_total", "counter", "Requests received."),
        (
            "moon_proxy_requests_in_flight",
            "gauge",
            "Requests being served now.",
        ),
        (
            "moon_proxy_requests_held",
            "gauge",
            "Requests waiting for a replica to start.",
        ),
        (
            "moon_proxy_unavailable_total",
            "counter",
            "Requests answered 502/503 by the proxy.",
        ),
        (
            "moon_proxy_retries_total",
            "counter",
            "Requests retried on another replica.",
        ),
        (
            "moon_proxy_cold_starts_total",
            "counter",
            "Requests served after a wait at zero replicas.",
        ),
    ];
    for (name, kind, help) in service_metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for balancer in &balancers {
            let c = balancer.counters();
            let value = match name {
                "moon_proxy_requests_total" => c.requests.load(Ordering::Relaxed) as i64,
                "moon_proxy_requests_in_flight" => balancer.requests_in_flight() as i64,
                "moon_proxy_requests_held" => c.held.load(Ordering::Relaxed),
                "moon_proxy_unavailable_total" => c.unavailable.load(Ordering::Relaxed) as i64,
                "moon_proxy_retries_total" => c.retries.load(Ordering::Relaxed) as i64,
                _ => c.cold_starts.load(Ordering::Relaxed) as i64,
            };
            let _ = writeln!(out, "{name}{{service=\"{}\"}} {value}", balancer.service());
        }
    }
    for (name, help, pick) in [
        (
            "moon_proxy_request_duration_seconds",
            "Time to an answer's headers, over all replicas.",
            (|c: &ServiceCounters| &c.latency) as fn(&ServiceCounters) -> &Histogram,
        ),
        (
            "moon_proxy_cold_start_seconds",
            "Time a request waited at zero replicas, to its answer's headers.",
            |c: &ServiceCounters| &c.cold_start_latency,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for balancer in &balancers {
            let labels = format!("service=\"{}\"", balancer.service());
            pick(balancer.counters()).render(&mut out, name, &labels);
        }
    }
    let _ = writeln!(
        out,
        "# HELP moon_replica_responses_total Answers by replica and status class.\n\
         # TYPE moon_replica_responses_total counter"
    );
    for balancer in &balancers {
        for replica in balancer.replicas().iter() {
            for (i, count) in replica.counters.answers.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "moon_replica_responses_total{{service=\"{}\",replica=\"{}\",code=\"{}xx\"}} {}",
                    balancer.service(),
                    replica.endpoint.id,
                    i + 1,
                    count.load(Ordering::Relaxed)
                );
            }
        }
    }
    for (name, kind, help) in [
        (
            "moon_replica_failures_total",
            "counter",
            "Requests a replica did not answer.",
        ),
        (
            "moon_replica_ejections_total",
            "counter",
            "Times a replica was ejected as an outlier.",
        ),
        (
            "moon_replica_requests_in_flight",
            "gauge",
            "Requests a replica is serving now.",
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for balancer in &balancers {
            for replica in balancer.replicas().iter() {
                let value = match name {
                    "moon_replica_failures_total" => {
                        replica.counters.failures.load(Ordering::Relaxed)
                    }
                    "moon_replica_ejections_total" => {
                        replica.counters.ejections.load(Ordering::Relaxed)
                    }
                    _ => u64::from(replica.in_flight()),
                };
                let _ = writeln!(
                    out,
                    "{name}{{service=\"{}\",replica=\"{}\"}} {value}",
                    balancer.service(),
                    replica.endpoint.id
                );
            }
        }
    }
    let name = "moon_replica_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to a replica's answer's headers.\n# TYPE {name} histogram"
    );
    for balancer in &balancers {
        for replica in balancer.replicas().iter() {
            let labels = format!(
                "service=\"{}\",replica=\"{}\"",
                balancer.service(),
                replica.endpoint.id
            );
            replica.counters.latency.render(&mut out, name, &labels);
        }
    }
    out
}
