//! GPU health: a pure verdict on what a device reports.
//!
//! [`classify`] turns a device's error counters, XID events, temperature and
//! throttle reasons into a [`Health`]: a [`HealthStatus`] and the sentences
//! that explain it. The verdict is for placement. **Unhealthy** means "give
//! this device no new work until someone resets or replaces it". Work already
//! running is not stopped by the label. **Degraded** means "usable, but look at
//! it". Every rule that fires adds one reason. The status is the worst of them.
//!
//! # Unhealthy
//!
//! - **Volatile uncorrectable ECC errors** (`eccVolatileUncorrected > 0`).
//!   Data on the device has already been wrong since the driver loaded. DCGM's
//!   memory health watch fails a GPU on any volatile double-bit error
//!   (`MonitorMemVolatileDbes` in `NVIDIA/DCGM`,
//!   `modules/health/DcgmHealthWatch.cpp`).
//! - **Pages pending retirement** (`retiredPagesPending`). On GPUs before
//!   Ampere, a page with a double-bit error stays in use until a reset or
//!   driver reload retires it. DCGM's diagnostic rates pending retirements
//!   after a DBE as `ISOLATE` (`DCGM_FR_DBE_PENDING_PAGE_RETIREMENTS`). Its
//!   background watch only warns, but a reset is what clears the state, so
//!   moon keeps new work off until then.
//! - **A row remapping that failed or is pending** (`remappingFailed`,
//!   `remappingPending`). A failure means the memory can no longer repair
//!   itself (DCGM: `DCGM_FR_ROW_REMAP_FAILURE`, a health-watch failure). A
//!   pending remap takes effect only at the next GPU reset (DCGM:
//!   `DCGM_FR_PENDING_ROW_REMAP`, severity `ISOLATE`).
//! - **Temperature at or over the shutdown threshold**, which NVML reports per
//!   device: the hardware is about to power itself off.
//! - **XIDs after which the device must be reset, or is gone.** From NVIDIA's
//!   Xid catalogue (<https://docs.nvidia.com/deploy/xid-errors/>, "Analyzing
//!   Xid Errors with the Xid Catalog") and its A100 memory error management
//!   guide (<https://docs.nvidia.com/deploy/a100-gpu-mem-error-mgmt/>):
//!   - 48, double-bit ECC error: "a GPU reset or node reboot is needed to
//!     clear this error";
//!   - 63, row remapping (or, before Ampere, page retirement) recorded: it is
//!     applied at the next reset, the same state as `remappingPending`;
//!   - 64, the remapping or retirement could not be recorded;
//!   - 74, NVLink error: a reset or reboot clears it;
//!   - 79, the GPU has fallen off the bus;
//!   - 95, uncontained ECC error: "the affected GPU must be reset";
//!   - 119 and 120, the GSP firmware timed out or failed: reset the GPU;
//!   - 140, unrecovered ECC error, and 154, the driver says that the GPU
//!     needs a reset or the node a reboot. These two are not in the list moon
//!     started from, but the catalogue rates both critical.
//!
//! # Degraded
//!
//! - **Lifetime uncorrectable ECC errors without volatile ones**: the memory
//!   failed before this driver load. A reset has dealt with that failure, so
//!   the device is not unhealthy, but the memory has failed before.
//! - **Many retired pages**: 63 or more in all, or more than 15 for double-bit
//!   errors. These are DCGM's limits (`DCGM_LIMIT_MAX_RETIRED_PAGES`, matched
//!   to NVIDIA's field diagnostic, and `DCGM_LIMIT_MAX_RETIRED_PAGES_SOFT_LIMIT`).
//!   Each retired page is repaired memory. Many of them are a reason to plan a
//!   replacement, not to stop using the device.
//! - **Protective throttling**: hardware slowdown, hardware thermal slowdown,
//!   hardware power brake or software thermal slowdown. The device works at
//!   half speed or less. DCGM's thermal and power watches warn on these
//!   (`DCGM_FR_CLOCK_THROTTLE_THERMAL`, `DCGM_FR_CLOCK_THROTTLE_POWER`). The
//!   power cap, idling and clock settings are ordinary and change nothing.
//! - **Temperature at or over the slowdown threshold** (under shutdown).
//! - **XIDs 92 and 94.** 92, a high single-bit ECC error rate, is corrected
//!   by the hardware. The catalogue rates it not critical. 94, a contained
//!   ECC error, ends one application. NVIDIA's guide says others "can
//!   continue to be run until the reset can be performed". The remap it
//!   leaves pending is covered by the rule above.
//! - **Any other XID** that is in neither list: something went wrong and moon
//!   does not know how badly, so it reports the XID without taking the device
//!   away.
//!
//! # No change
//!
//! Application XIDs say that a program failed on a sound GPU: 13 (graphics
//! engine exception), 31 (GPU memory page fault), 43 (GPU stopped
//! processing), 45 (preemptive cleanup after an earlier error), 68 (video
//! processor exception) and 109 (context switch timeout). This is the list
//! NVIDIA's device plugin ignores in its health check (`NVIDIA/k8s-device-plugin`,
//! `internal/rm/health.go`, "Application errors: the GPU should still be
//! healthy").

use std::collections::BTreeMap;

use crate::device::{GpuDevice, HealthCounters, ThrottleReason, XidEvent};
pub use crate::device::{Health, HealthStatus};

/// DCGM's limit on retired pages of all kinds (`DCGM_LIMIT_MAX_RETIRED_PAGES`).
pub const RETIRED_PAGES_LIMIT: u64 = 63;

/// DCGM's limit on pages retired for double-bit errors
/// (`DCGM_LIMIT_MAX_RETIRED_PAGES_SOFT_LIMIT`).
pub const RETIRED_PAGES_DOUBLE_BIT_LIMIT: u64 = 15;

/// Classifies a device from its counters, XID events, temperature,
/// thresholds and throttle reasons. Its `health` field is ignored. The rules
/// are in the [module documentation](self).
pub fn classify(device: &GpuDevice) -> Health {
    let mut health = Health::default();
    memory(&device.counters, &mut health);
    xids(&device.counters.xid_errors, &mut health);
    temperature(device, &mut health);
    throttling(&device.throttle_reasons, &mut health);
    health
}

fn memory(counters: &HealthCounters, health: &mut Health) {
    let volatile = counters.ecc_volatile_uncorrected.unwrap_or(0);
    if volatile > 0 {
        health.add(
            HealthStatus::Unhealthy,
            format!(
                "{} volatile uncorrectable ECC {}",
                volatile,
                plural(volatile, "error")
            ),
        );
    } else if let Some(lifetime @ 1..) = counters.ecc_aggregate_uncorrected {
        health.add(
            HealthStatus::Degraded,
            format!(
                "{lifetime} uncorrectable ECC {} over the device's lifetime, none since the driver loaded",
                plural(lifetime, "error")
            ),
        );
    }
    if counters.retired_pages_pending == Some(true) {
        health.add(
            HealthStatus::Unhealthy,
            "pages are pending retirement; a GPU reset or driver reload retires them",
        );
    }
    if counters.remapping_failed == Some(true) {
        health.add(
            HealthStatus::Unhealthy,
            "a row remapping has failed; the memory can no longer repair itself",
        );
    }
    if counters.remapping_pending == Some(true) {
        health.add(
            HealthStatus::Unhealthy,
            "a row remapping is pending; a GPU reset applies it",
        );
    }
    let double_bit = counters.retired_pages_double_bit.unwrap_or(0);
    let retired = counters.retired_pages_single_bit.unwrap_or(0) + double_bit;
    if retired >= RETIRED_PAGES_LIMIT {
        health.add(
            HealthStatus::Degraded,
            format!("{retired} retired pages, at or over the limit of {RETIRED_PAGES_LIMIT}"),
        );
    }
    if double_bit > RETIRED_PAGES_DOUBLE_BIT_LIMIT {
        health.add(
            HealthStatus::Degraded,
            format!(
                "{double_bit} pages retired for double-bit errors, over the limit of {RETIRED_PAGES_DOUBLE_BIT_LIMIT}"
            ),
        );
    }
}

const APPLICATION: Option<HealthStatus> = None;
const DEGRADED: Option<HealthStatus> = Some(HealthStatus::Degraded);
const UNHEALTHY: Option<HealthStatus> = Some(HealthStatus::Unhealthy);

/// The XIDs moon knows: the number, what it does to health (`None` for an
/// application error) and what it means. The module documentation says why.
#[rustfmt::skip]
const XID_RULES: &[(u64, Option<HealthStatus>, &str)] = &[
    (13, APPLICATION, "graphics engine exception"),
    (31, APPLICATION, "GPU memory page fault"),
    (43, APPLICATION, "GPU stopped processing"),
    (45, APPLICATION, "preemptive cleanup after an earlier error"),
    (48, UNHEALTHY, "double-bit ECC error; a GPU reset clears it"),
    (63, UNHEALTHY, "row remapping recorded; a GPU reset applies it"),
    (64, UNHEALTHY, "row remapping or page retirement failed"),
    (68, APPLICATION, "video processor exception"),
    (74, UNHEALTHY, "NVLink error; a GPU reset clears it"),
    (79, UNHEALTHY, "GPU has fallen off the bus"),
    (92, DEGRADED, "high single-bit ECC error rate"),
    (94, DEGRADED, "contained ECC error; one application ended"),
    (95, UNHEALTHY, "uncontained ECC error; the GPU must be reset"),
    (109, APPLICATION, "context switch timeout"),
    (119, UNHEALTHY, "GSP RPC timeout; the GPU must be reset"),
    (120, UNHEALTHY, "GSP error; the GPU must be reset"),
    (140, UNHEALTHY, "unrecovered ECC error"),
    (154, UNHEALTHY, "the driver requires a GPU reset or node reboot"),
];

fn xids(events: &[XidEvent], health: &mut Health) {
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for event in events {
        *seen.entry(event.xid).or_default() += 1;
    }
    for (xid, times) in seen {
        let (effect, meaning) = match XID_RULES.iter().find(|rule| rule.0 == xid) {
            Some(&(_, effect, meaning)) => (effect, meaning),
            None => (
                DEGRADED,
                "not one moon classifies; see NVIDIA's Xid catalogue",
            ),
        };
        let Some(status) = effect else {
            continue;
        };
        let count = if times > 1 {
            format!(" ({times} times)")
        } else {
            String::new()
        };
        health.add(status, format!("XID {xid}{count}: {meaning}"));
    }
}

fn temperature(device: &GpuDevice, health: &mut Health) {
    let Some(now) = device.temperature_c else {
        return;
    };
    if let Some(shutdown) = device.temperature_shutdown_c.filter(|&limit| now >= limit) {
        health.add(
            HealthStatus::Unhealthy,
            format!("temperature {now} °C is at or over the shutdown threshold of {shutdown} °C"),
        );
    } else if let Some(slowdown) = device.temperature_slowdown_c.filter(|&limit| now >= limit) {
        health.add(
            HealthStatus::Degraded,
            format!("temperature {now} °C is at or over the slowdown threshold of {slowdown} °C"),
        );
    }
}

fn throttling(reasons: &[ThrottleReason], health: &mut Health) {
    let slowdowns: Vec<String> = reasons
        .iter()
        .filter(|reason| reason.is_slowdown())
        .map(ToString::to_string)
        .collect();
    if !slowdowns.is_empty() {
        health.add(
            HealthStatus::Degraded,
            format!("clocks held down by {}", slowdowns.join(" and ")),
        );
    }
}

fn plural(count: u64, word: &str) -> String {
    if count == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::{Degraded, Healthy, Unhealthy};

    fn xid(xid: u64) -> XidEvent {
        XidEvent { xid, time_ms: 0 }
    }

    /// A case: recorded values on an H100 (slowdown 89 °C, shutdown 92 °C)
    /// and the verdict they must give.
    struct Case {
        name: &'static str,
        device: GpuDevice,
        status: HealthStatus,
        reasons: &'static [&'static str],
    }

    /// A sound H100 as NVML reports it, changed by `change`.
    fn h100(change: impl FnOnce(&mut HealthCounters)) -> GpuDevice {
        let mut counters = HealthCounters {
            ecc_volatile_uncorrected: Some(0),
            ecc_volatile_corrected: Some(0),
            ecc_aggregate_uncorrected: Some(0),
            ecc_aggregate_corrected: Some(12),
            remapped_rows_correctable: Some(0),
            remapped_rows_uncorrectable: Some(0),
            remapping_pending: Some(false),
            remapping_failed: Some(false),
            ..HealthCounters::default()
        };
        change(&mut counters);
        GpuDevice {
            name: "NVIDIA H100 80GB HBM3".into(),
            temperature_c: Some(41),
            temperature_slowdown_c: Some(89),
            temperature_shutdown_c: Some(92),
            counters,
            ..GpuDevice::default()
        }
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "a sound H100",
                device: h100(|_| {}),
                status: Healthy,
                reasons: &[],
            },
            Case {
                name: "nothing reported at all",
                device: GpuDevice::default(),
                status: Healthy,
                reasons: &[],
            },
            Case {
                name: "volatile double-bit errors",
                device: h100(|counters| {
                    counters.ecc_volatile_uncorrected = Some(2);
                    counters.ecc_aggregate_uncorrected = Some(2);
                    counters.remapping_pending = Some(true);
                    counters.remapped_rows_uncorrectable = Some(1);
                }),
                status: Unhealthy,
                reasons: &[
                    "2 volatile uncorrectable ECC errors",
                    "a row remapping is pending; a GPU reset applies it",
                ],
            },
            Case {
                name: "one volatile error is singular",
                device: h100(|counters| {
                    counters.ecc_volatile_uncorrected = Some(1);
                }),
                status: Unhealthy,
                reasons: &["1 volatile uncorrectable ECC error"],
            },
            Case {
                name: "lifetime errors only, after a reset",
                device: h100(|counters| {
                    counters.ecc_aggregate_uncorrected = Some(3);
                    counters.remapped_rows_uncorrectable = Some(3);
                }),
                status: Degraded,
                reasons: &[
                    "3 uncorrectable ECC errors over the device's lifetime, none since the driver loaded",
                ],
            },
            Case {
                name: "a failed row remapping",
                device: h100(|counters| {
                    counters.remapping_failed = Some(true);
                }),
                status: Unhealthy,
                reasons: &["a row remapping has failed; the memory can no longer repair itself"],
            },
            Case {
                name: "a V100 with pages pending retirement",
                device: GpuDevice {
                    counters: HealthCounters {
                        retired_pages_single_bit: Some(2),
                        retired_pages_double_bit: Some(1),
                        retired_pages_pending: Some(true),
                        ..HealthCounters::default()
                    },
                    ..GpuDevice::default()
                },
                status: Unhealthy,
                reasons: &[
                    "pages are pending retirement; a GPU reset or driver reload retires them",
                ],
            },
            Case {
                name: "a V100 with many retired pages",
                device: GpuDevice {
                    counters: HealthCounters {
                        retired_pages_single_bit: Some(47),
                        retired_pages_double_bit: Some(16),
                        retired_pages_pending: Some(false),
                        ..HealthCounters::default()
                    },
                    ..GpuDevice::default()
                },
                status: Degraded,
                reasons: &[
                    "63 retired pages, at or over the limit of 63",
                    "16 pages retired for double-bit errors, over the limit of 15",
                ],
            },
            Case {
                name: "fallen off the bus",
                device: h100(|counters| {
                    counters.xid_errors = vec![xid(79)];
                }),
                status: Unhealthy,
                reasons: &["XID 79: GPU has fallen off the bus"],
            },
            Case {
                name: "application XIDs change nothing",
                device: h100(|counters| {
                    counters.xid_errors = vec![xid(13), xid(31), xid(43), xid(45), xid(13)];
                }),
                status: Healthy,
                reasons: &[],
            },
            Case {
                name: "a contained error among application errors",
                device: h100(|counters| {
                    counters.xid_errors = vec![xid(31), xid(94), xid(94), xid(63)];
                }),
                status: Unhealthy,
                reasons: &[
                    "XID 63: row remapping recorded; a GPU reset applies it",
                    "XID 94 (2 times): contained ECC error; one application ended",
                ],
            },
            Case {
                name: "an XID moon does not classify",
                device: h100(|counters| {
                    counters.xid_errors = vec![xid(62)];
                }),
                status: Degraded,
                reasons: &["XID 62: not one moon classifies; see NVIDIA's Xid catalogue"],
            },
            Case {
                name: "every reset-class XID",
                device: h100(|counters| {
                    counters.xid_errors = [48, 64, 74, 95, 119, 120, 140, 154]
                        .into_iter()
                        .map(xid)
                        .collect();
                }),
                status: Unhealthy,
                reasons: &[
                    "XID 48: double-bit ECC error; a GPU reset clears it",
                    "XID 64: row remapping or page retirement failed",
                    "XID 74: NVLink error; a GPU reset clears it",
                    "XID 95: uncontained ECC error; the GPU must be reset",
                    "XID 119: GSP RPC timeout; the GPU must be reset",
                    "XID 120: GSP error; the GPU must be reset",
                    "XID 140: unrecovered ECC error",
                    "XID 154: the driver requires a GPU reset or node reboot",
                ],
            },
            Case {
                name: "hot, throttling",
                device: GpuDevice {
                    temperature_c: Some(90),
                    throttle_reasons: vec![
                        ThrottleReason::SwPowerCap,
                        ThrottleReason::HwSlowdown,
                        ThrottleReason::HwThermalSlowdown,
                    ],
                    ..h100(|_| {})
                },
                status: Degraded,
                reasons: &[
                    "temperature 90 °C is at or over the slowdown threshold of 89 °C",
                    "clocks held down by hardware slowdown and hardware thermal slowdown",
                ],
            },
            Case {
                name: "at the shutdown threshold",
                device: GpuDevice {
                    temperature_c: Some(92),
                    ..h100(|_| {})
                },
                status: Unhealthy,
                reasons: &["temperature 92 °C is at or over the shutdown threshold of 92 °C"],
            },
            Case {
                name: "at the power cap, which is ordinary",
                device: GpuDevice {
                    throttle_reasons: vec![ThrottleReason::SwPowerCap],
                    power_watts: Some(699.2),
                    power_limit_watts: Some(700.0),
                    ..h100(|_| {})
                },
                status: Healthy,
                reasons: &[],
            },
            Case {
                name: "hot without thresholds says nothing",
                device: GpuDevice {
                    temperature_c: Some(95),
                    ..GpuDevice::default()
                },
                status: Healthy,
                reasons: &[],
            },
        ]
    }

    #[test]
    fn recorded_counters_classify_as_documented() {
        for case in cases() {
            let health = classify(&case.device);
            assert_eq!(health.status, case.status, "{}: {:?}", case.name, health);
            assert_eq!(health.reasons, case.reasons, "{}", case.name);
        }
    }

    #[test]
    fn the_stored_verdict_is_not_an_input() {
        let mut device = h100(|_| {});
        device.health.add(Unhealthy, "stale");
        assert_eq!(classify(&device), Health::default());
    }

    #[test]
    fn statuses_order_from_best_to_worst() {
        assert!(Healthy < Degraded && Degraded < Unhealthy);
        let mut health = Health::default();
        health.add(Unhealthy, "a");
        health.add(Degraded, "b");
        assert_eq!(health.status, Unhealthy);
        assert_eq!(health.reasons, ["a", "b"]);
        assert_eq!(Unhealthy.to_string(), "unhealthy");
        assert_eq!(serde_json::to_value(Degraded).unwrap(), "degraded");
    }
}
