//! The TCP ports of jobs' rendezvous on this machine: free loopback ports
//! handed out when a job is admitted, and waiting until a job's startup
//! ports listen before the replicas that connect to them start.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long the job's own replicas wait for its startup ports.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A free loopback port for each of `names`, none of them in `in_use`;
/// each port given is added to `in_use`.
pub fn allocate(names: Vec<String>, in_use: &mut HashSet<u16>) -> Result<BTreeMap<String, u16>> {
    let mut ports = BTreeMap::new();
    for name in names {
        let port = moon_net::free_loopback_port(in_use)
            .map_err(|error| Error::io("finding a free port", "127.0.0.1", error))?;
        in_use.insert(port);
        ports.insert(name, port);
    }
    Ok(ports)
}

/// Waits until every one of a job's startup ports listens, or gives up
/// after `STARTUP_TIMEOUT`: the replicas start either way, and a tracker
/// that never listened fails them in their own words.
pub async fn wait_for_startup(ports: &[u16]) {
    wait_for_listeners(ports, STARTUP_TIMEOUT).await;
}

/// Waits until every port listens on this machine, looking at the kernel's
/// socket tables rather than connecting: a probe connection would look like
/// a worker to XGBoost's tracker. Gives up after `limit`.
async fn wait_for_listeners(ports: &[u16], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut delay = Duration::from_millis(5);
    loop {
        let listening = listening_ports();
        if ports.iter().all(|port| listening.contains(port)) || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// TCP ports in LISTEN state, from `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_ports() -> HashSet<u16> {
    const LISTEN: &str = "0A";
    let mut ports = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut fields = line.split_whitespace();
            let (Some(local), Some(_remote), Some(state)) =
                (fields.nth(1), fields.next(), fields.next())
            else {
                continue;
            };
            if state == LISTEN
                && let Some((_, port)) = local.rsplit_once(':')
                && let Ok(port) = u16::from_str_radix(port, 16)
            {
                ports.insert(port);
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_listener_shows_in_the_kernel_tables() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        assert!(listening_ports().contains(&port));
        drop(listener);
        assert!(!listening_ports().contains(&port));
    }

    #[test]
    fn allocated_ports_are_distinct_and_kept_from_later_jobs() {
        let mut in_use = HashSet::new();
        let names = vec!["master".to_string(), "tracker".to_string()];
        let first = allocate(names.clone(), &mut in_use).expect("ports");
        let second = allocate(names, &mut in_use).expect("ports");
        let all: HashSet<u16> = first.values().chain(second.values()).copied().collect();
        assert_eq!(all.len(), 4, "{first:?} {second:?}");
        assert_eq!(in_use, all);
    }
}
