//! A retry budget: retries may add at most a fixed share to the requests a
//! service gets (plus a small floor per second), so that retrying cannot
//! multiply the load on replicas that are already failing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Retries allowed: `ratio` of the requests seen, plus `floor_per_second`.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor_per_second: f64,
    cap: f64,
    /// Requests since the last withdrawal: counted without the lock, as
    /// every request deposits and few withdraw.
    deposits: AtomicU64,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    tokens: f64,
    refilled_at: Instant,
}

impl RetryBudget {
    /// A budget of `ratio` retries per request (0.2: one retry for every
    /// five requests) plus `floor_per_second`.
    pub fn new(ratio: f64, floor_per_second: f64) -> Self {
        let cap = (floor_per_second * 10.0).max(10.0) + 100.0 * ratio;
        RetryBudget {
            ratio,
            floor_per_second,
            cap,
            deposits: AtomicU64::new(0),
            state: Mutex::new(BudgetState {
                tokens: floor_per_second,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// A request was made: it earns `ratio` of a retry.
    pub fn deposit(&self) {
        self.deposits.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget, if there is one.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(Instant::now())
    }

    fn try_withdraw_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("retry budget lock");
        let elapsed = now
            .saturating_duration_since(state.refilled_at)
            .as_secs_f64();
        let earned = self.deposits.swap(0, Ordering::Relaxed) as f64 * self.ratio;
        state.tokens = (state.tokens + earned + elapsed * self.floor_per_second).min(self.cap);
        state.refilled_at = state.refilled_at.max(now);
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Default for RetryBudget {
    /// One retry per five requests, and 10 a second whatever the traffic
    /// (Finagle's defaults).
    fn default() -> Self {
        RetryBudget::new(0.2, 10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retries_are_limited_to_the_ratio_of_requests() {
        let budget = RetryBudget::new(0.2, 0.0);
        let now = Instant::now();
        for _ in 0..50 {
            budget.deposit();
        }
        let granted = (0..50).filter(|_| budget.try_withdraw_at(now)).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn the_floor_refills_with_time() {
        let budget = RetryBudget::new(0.0, 10.0);
        let start = Instant::now();
        let at_start = (0..100).filter(|_| budget.try_withdraw_at(start)).count();
        assert_eq!(at_start, 10);
        let later = start + Duration::from_millis(500);
        let after_half_a_second = (0..100).filter(|_| budget.try_withdraw_at(later)).count();
        assert_eq!(after_half_a_second, 5);
    }
}
