//! Limits, what is in use against them, and the shortfall when a job does
//! not fit, with the numbers a person needs to see.

use moon_spec::spec::{Demand, TenantQuota, format_bytes, format_cpus};

/// Limits in whole units; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Millicores.
    pub millicores: Option<u64>,
    /// Bytes.
    pub bytes: Option<u64>,
    /// GPUs.
    pub gpus: Option<u64>,
    /// Jobs admitted and not finished.
    pub jobs: Option<u64>,
}

impl Limits {
    /// A tenant's quota in whole units (the spec was validated).
    pub fn of_quota(quota: &TenantQuota) -> Limits {
        Limits {
            millicores: quota.cpus.as_ref().and_then(|cpus| cpus.millicores().ok()),
            bytes: quota.memory.as_ref().and_then(|memory| memory.bytes().ok()),
            gpus: quota.gpus,
            jobs: quota.jobs,
        }
    }
}

/// What is held against a limit: resources and jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Resources held.
    pub demand: Demand,
    /// Jobs holding them.
    pub jobs: u64,
}

impl Usage {
    /// One job's worth.
    pub fn of(demand: Demand) -> Usage {
        Usage { demand, jobs: 1 }
    }

    /// Adds a job's worth.
    pub fn add(&mut self, other: Usage) {
        self.demand.millicores = self
            .demand
            .millicores
            .saturating_add(other.demand.millicores);
        self.demand.bytes = self.demand.bytes.saturating_add(other.demand.bytes);
        self.demand.gpus = self.demand.gpus.saturating_add(other.demand.gpus);
        self.jobs = self.jobs.saturating_add(other.jobs);
    }

    /// Takes a job's worth away.
    pub fn remove(&mut self, other: Usage) {
        self.demand.millicores = self
            .demand
            .millicores
            .saturating_sub(other.demand.millicores);
        self.demand.bytes = self.demand.bytes.saturating_sub(other.demand.bytes);
        self.demand.gpus = self.demand.gpus.saturating_sub(other.demand.gpus);
        self.jobs = self.jobs.saturating_sub(other.jobs);
    }
}

/// The resource a job ran short of, and the numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// `jobs`, `cpus`, `memory` or `gpus`.
    pub resource: &'static str,
    /// Held by running jobs.
    pub used: u64,
    /// Held back for jobs ahead in line that wait for it.
    pub reserved: u64,
    /// What the job asks.
    pub asks: u64,
    /// The limit.
    pub limit: u64,
}

impl Shortfall {
    /// Whether the job would fit but for what is held back for jobs ahead.
    pub fn only_reserved(&self) -> bool {
        self.used.saturating_add(self.asks) <= self.limit
    }

    /// An amount of this resource as people write it.
    pub fn show(&self, amount: u64) -> String {
        match self.resource {
            "cpus" => format_cpus(amount),
            "memory" => format_bytes(amount),
            _ => amount.to_string(),
        }
    }

    /// `jobs 1 of 1 running`, `gpus 4 of 4 in use, job asks 2`, or with
    /// what is held back: `cpus 2 of 8 in use and 4 held for jobs ahead,
    /// job asks 4`.
    pub fn describe(&self) -> String {
        let held = if self.reserved > 0 {
            format!(" and {} held for jobs ahead", self.show(self.reserved))
        } else {
            String::new()
        };
        if self.resource == "jobs" {
            format!("jobs {} of {} running{held}", self.used, self.limit)
        } else {
            format!(
                "{} {} of {} in use{held}, job asks {}",
                self.resource,
                self.show(self.used),
                self.show(self.limit),
                self.show(self.asks)
            )
        }
    }
}

/// The first resource (jobs, cpus, memory, gpus) for which `ask` does not
/// fit under `limits` beside `used` and `reserved`. A resource the job does
/// not ask for always fits: what others wait for is not taken by it.
pub fn shortfall(
    limits: &Limits,
    used: &Usage,
    reserved: &Usage,
    ask: &Usage,
) -> Option<Shortfall> {
    let checks = [
        ("jobs", limits.jobs, used.jobs, reserved.jobs, ask.jobs),
        (
            "cpus",
            limits.millicores,
            used.demand.millicores,
            reserved.demand.millicores,
            ask.demand.millicores,
        ),
        (
            "memory",
            limits.bytes,
            used.demand.bytes,
            reserved.demand.bytes,
            ask.demand.bytes,
        ),
        (
            "gpus",
            limits.gpus,
            used.demand.gpus,
            reserved.demand.gpus,
            ask.demand.gpus,
        ),
    ];
    checks
        .into_iter()
        .find_map(|(resource, limit, used, reserved, asks)| {
            let limit = limit?;
            let over = asks > 0 && used.saturating_add(reserved).saturating_add(asks) > limit;
            over.then_some(Shortfall {
                resource,
                used,
                reserved,
                asks,
                limit,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cpus: u64, gpus: u64, jobs: u64) -> Usage {
        Usage {
            demand: Demand {
                millicores: cpus * 1000,
                bytes: 0,
                gpus,
            },
            jobs,
        }
    }

    #[test]
    fn the_first_resource_over_its_limit_is_named_with_the_numbers() {
        let limits = Limits {
            millicores: Some(8000),
            gpus: Some(4),
            jobs: Some(3),
            ..Limits::default()
        };
        let none = Usage::default();
        let short = shortfall(&limits, &usage(2, 4, 1), &none, &usage(1, 2, 1)).unwrap();
        assert_eq!(short.describe(), "gpus 4 of 4 in use, job asks 2");
        let short = shortfall(&limits, &usage(2, 0, 3), &none, &usage(1, 0, 1)).unwrap();
        assert_eq!(short.describe(), "jobs 3 of 3 running");
        assert_eq!(
            shortfall(&limits, &usage(2, 0, 1), &none, &usage(6, 4, 1)),
            None
        );
    }

    #[test]
    fn what_is_held_for_others_is_counted_but_only_against_what_the_job_asks() {
        let limits = Limits {
            millicores: Some(8000),
            gpus: Some(8),
            ..Limits::default()
        };
        let held = usage(4, 8, 1);
        let short = shortfall(&limits, &usage(2, 0, 1), &held, &usage(4, 0, 1)).unwrap();
        assert!(short.only_reserved());
        assert_eq!(
            short.describe(),
            "cpus 2 of 8 in use and 4 held for jobs ahead, job asks 4"
        );
        // The GPUs are all held for others, but this job asks none.
        assert_eq!(
            shortfall(&limits, &usage(2, 0, 1), &held, &usage(2, 0, 1)),
            None
        );
    }
}
