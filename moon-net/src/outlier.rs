//! Passive outlier ejection: when a replica fails several requests in a row
//! it is taken out of the rotation for a while, longer each time it happens
//! again, and let back in when the time is up or a health check passes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When to eject a failing replica and for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OutlierPolicy {
    /// Failures in a row (refused or broken connections, 502/503/504
    /// answers) that eject a replica.
    pub consecutive_failures: u32,
    /// How long the first ejection lasts, in milliseconds; the n-th in a row
    /// lasts n times as long.
    pub base_ejection_ms: u64,
    /// The longest an ejection lasts, in milliseconds.
    pub max_ejection_ms: u64,
    /// At most this share of a service's replicas is ejected at once (at
    /// least one, when there are two or more): ejecting everything would
    /// turn a partial failure into a whole one.
    pub max_ejected_percent: u8,
}

impl Default for OutlierPolicy {
    fn default() -> Self {
        OutlierPolicy {
            consecutive_failures: 3,
            base_ejection_ms: 1_000,
            max_ejection_ms: 30_000,
            max_ejected_percent: 50,
        }
    }
}

impl OutlierPolicy {
    /// How long the `nth` ejection in a row (from 1) lasts.
    pub fn ejection_time(&self, nth: u32) -> Duration {
        let ms = self.base_ejection_ms.saturating_mul(u64::from(nth.max(1)));
        Duration::from_millis(ms.min(self.max_ejection_ms))
    }

    /// How many of `replicas` may be ejected at the same time.
    pub fn max_ejected(&self, replicas: usize) -> usize {
        if replicas < 2 {
            return 0;
        }
        (replicas * usize::from(self.max_ejected_percent) / 100).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejections_in_a_row_last_longer_up_to_the_cap() {
        let policy = OutlierPolicy::default();
        assert_eq!(policy.ejection_time(1), Duration::from_secs(1));
        assert_eq!(policy.ejection_time(3), Duration::from_secs(3));
        assert_eq!(policy.ejection_time(100), Duration::from_secs(30));
    }

    #[test]
    fn a_lone_replica_is_never_ejected_and_two_allow_one() {
        let policy = OutlierPolicy::default();
        assert_eq!(policy.max_ejected(1), 0);
        assert_eq!(policy.max_ejected(2), 1);
        assert_eq!(policy.max_ejected(10), 5);
    }
}
