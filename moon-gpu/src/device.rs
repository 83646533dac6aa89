//! The GPU inventory of one machine: the driver, and what NVML (or a file)
//! says about each device, down to the error counters that decide its
//! [`Health`].
//!
//! Keys are camelCase, as everywhere in moon. A value the device does not
//! report (ECC counters with ECC off, row remapping before Ampere, a power
//! reading on a board without a sensor) is `None` — `null` in JSON, or simply
//! left out of a file — never a made-up zero.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::selector::ComputeCapability;

/// The GPUs of one machine and the driver that runs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inventory {
    /// The machine's host name.
    #[serde(default)]
    pub hostname: String,
    /// The NVIDIA driver's version (`550.54.15`).
    #[serde(default)]
    pub driver_version: String,
    /// The newest CUDA version the driver supports (`12.4`); `None` where
    /// NVML cannot tell.
    #[serde(default)]
    pub cuda_version: Option<String>,
    /// NVML's own version (`12.550.54.15`).
    #[serde(default)]
    pub nvml_version: String,
    /// The devices, in NVML's index order.
    #[serde(default)]
    pub devices: Vec<GpuDevice>,
}

impl Inventory {
    /// The device with this UUID.
    pub fn device(&self, uuid: &str) -> Option<&GpuDevice> {
        self.devices.iter().find(|device| device.uuid == uuid)
    }

    /// The worst status of any device; `None` without devices.
    pub fn worst_health(&self) -> Option<HealthStatus> {
        self.devices.iter().map(|device| device.health.status).max()
    }

    /// How many devices can take work: healthy or degraded, not unhealthy.
    pub fn usable_count(&self) -> usize {
        self.devices
            .iter()
            .filter(|device| device.health.status != HealthStatus::Unhealthy)
            .count()
    }
}

/// One GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuDevice {
    /// NVML's index, the number `CUDA_VISIBLE_DEVICES` takes when the
    /// CUDA device order is `PCI_BUS_ID`.
    pub index: u32,
    /// The device's UUID (`GPU-5e1b…`), stable across reboots.
    pub uuid: String,
    /// The product name (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// Memory installed, in MiB.
    pub memory_total_mib: u64,
    /// Memory allocated, in MiB.
    #[serde(default)]
    pub memory_used_mib: u64,
    /// Memory free, in MiB.
    #[serde(default)]
    pub memory_free_mib: u64,
    /// The CUDA compute capability (`9.0` for Hopper).
    #[serde(default)]
    pub compute_capability: Option<ComputeCapability>,
    /// Whether the device is split into MIG instances.
    #[serde(default)]
    pub mig_mode: MigMode,
    /// The PCI bus id (`00000000:18:00.0`).
    #[serde(default)]
    pub pci_bus_id: String,
    /// Percent of the last sample period a kernel was running.
    #[serde(default)]
    pub utilization_gpu_percent: Option<u32>,
    /// Percent of the last sample period memory was read or written.
    #[serde(default)]
    pub utilization_memory_percent: Option<u32>,
    /// The GPU die's temperature, °C.
    #[serde(default)]
    pub temperature_c: Option<u32>,
    /// The temperature at which the hardware slows the clocks down, °C.
    #[serde(default)]
    pub temperature_slowdown_c: Option<u32>,
    /// The temperature at which the hardware shuts the GPU down, °C.
    #[serde(default)]
    pub temperature_shutdown_c: Option<u32>,
    /// The highest temperature the GPU runs at without being throttled
    /// below its base clock, °C.
    #[serde(default)]
    pub temperature_max_operating_c: Option<u32>,
    /// Power drawn now, in watts.
    #[serde(default)]
    pub power_watts: Option<f64>,
    /// The power limit the driver enforces, in watts.
    #[serde(default)]
    pub power_limit_watts: Option<f64>,
    /// Why the clocks are below their maximum now, if they are.
    #[serde(default)]
    pub throttle_reasons: Vec<ThrottleReason>,
    /// The error counters and events that decide health.
    #[serde(default)]
    pub counters: HealthCounters,
    /// The verdict on the counters, temperatures and throttling.
    #[serde(default)]
    pub health: Health,
}

/// Whether a GPU is partitioned into Multi-Instance GPU instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigMode {
    /// MIG-capable, running as one GPU (what a file that does not say means).
    #[default]
    Disabled,
    /// Partitioned into MIG instances.
    Enabled,
    /// Not MIG-capable.
    Unsupported,
}

/// Why the clocks are held below their maximum, as NVML reports it
/// (`nvmlClocksThrottleReasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThrottleReason {
    /// Nothing is running.
    GpuIdle,
    /// Held at the application clocks someone set.
    ApplicationsClocksSetting,
    /// The software power cap: the board is at its power limit.
    SwPowerCap,
    /// Hardware slowdown: clocks cut by half or more, for heat, an external
    /// power brake or a power spike.
    HwSlowdown,
    /// Held back by another GPU of its sync boost group.
    SyncBoost,
    /// Software thermal slowdown: over the maximum operating temperature.
    SwThermalSlowdown,
    /// Hardware thermal slowdown: the die is too hot.
    HwThermalSlowdown,
    /// Hardware power brake: the system's power supply asked for less.
    HwPowerBrakeSlowdown,
    /// Held at the display clock setting.
    DisplayClockSetting,
}

impl ThrottleReason {
    /// Whether this reason means the hardware protects itself (heat, power
    /// brake) rather than ordinary operation (idle, power cap, settings).
    pub fn is_slowdown(self) -> bool {
        matches!(
            self,
            ThrottleReason::HwSlowdown
                | ThrottleReason::SwThermalSlowdown
                | ThrottleReason::HwThermalSlowdown
                | ThrottleReason::HwPowerBrakeSlowdown
        )
    }
}

impl fmt::Display for ThrottleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThrottleReason::GpuIdle => "idle",
            ThrottleReason::ApplicationsClocksSetting => "application clocks setting",
            ThrottleReason::SwPowerCap => "software power cap",
            ThrottleReason::HwSlowdown => "hardware slowdown",
            ThrottleReason::SyncBoost => "sync boost",
            ThrottleReason::SwThermalSlowdown => "software thermal slowdown",
            ThrottleReason::HwThermalSlowdown => "hardware thermal slowdown",
            ThrottleReason::HwPowerBrakeSlowdown => "hardware power-brake slowdown",
            ThrottleReason::DisplayClockSetting => "display clock setting",
        })
    }
}

/// The counters and events that tell a failing GPU from a sound one.
///
/// Volatile counters start from zero each time the driver loads; aggregate
/// ones last the device's lifetime (they live in its InfoROM). Page
/// retirement is how GPUs before Ampere retire bad memory; row remapping is
/// how Ampere and later repair it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HealthCounters {
    /// Uncorrectable (double-bit) ECC errors since the driver loaded;
    /// `None` where ECC is off or unsupported.
    pub ecc_volatile_uncorrected: Option<u64>,
    /// Corrected (single-bit) ECC errors since the driver loaded.
    pub ecc_volatile_corrected: Option<u64>,
    /// Uncorrectable ECC errors over the device's lifetime.
    pub ecc_aggregate_uncorrected: Option<u64>,
    /// Corrected ECC errors over the device's lifetime.
    pub ecc_aggregate_corrected: Option<u64>,
    /// Pages retired for repeated single-bit errors.
    pub retired_pages_single_bit: Option<u64>,
    /// Pages retired for a double-bit error.
    pub retired_pages_double_bit: Option<u64>,
    /// Whether pages wait for a reset (or driver reload) to be retired.
    pub retired_pages_pending: Option<bool>,
    /// Rows remapped for correctable errors.
    pub remapped_rows_correctable: Option<u64>,
    /// Rows remapped for uncorrectable errors.
    pub remapped_rows_uncorrectable: Option<u64>,
    /// Whether a remapping waits for a GPU reset.
    pub remapping_pending: Option<bool>,
    /// Whether a remapping has ever failed.
    pub remapping_failed: Option<bool>,
    /// The XID errors seen since the watching process started (see
    /// [`XidWatcher`](crate::provider::XidWatcher)), oldest first.
    pub xid_errors: Vec<XidEvent>,
}

/// One XID error: the driver's report that something went wrong on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XidEvent {
    /// The XID number (79: the GPU has fallen off the bus).
    pub xid: u64,
    /// When it was seen, in milliseconds since the Unix epoch.
    pub time_ms: i64,
}

/// A device's health: how it stands, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Health {
    /// The verdict.
    pub status: HealthStatus,
    /// One sentence per rule that fired, for people
    /// (`"XID 79: GPU has fallen off the bus"`); empty when healthy.
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl Health {
    /// Adds a reason, raising the status to `status` if that is worse.
    pub fn add(&mut self, status: HealthStatus, reason: impl Into<String>) {
        self.status = self.status.max(status);
        self.reasons.push(reason.into());
    }
}

/// How a device stands, from best to worst.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Nothing wrong.
    #[default]
    Healthy,
    /// Usable, but something deserves a look.
    Degraded,
    /// Give it no new work until it is reset or replaced.
    Unhealthy,
}

impl HealthStatus {
    /// The lowercase name, as in labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_camel_case_and_values_kebab_case() {
        let device = GpuDevice {
            index: 3,
            uuid: "GPU-1".into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            memory_total_mib: 81_559,
            throttle_reasons: vec![ThrottleReason::HwPowerBrakeSlowdown],
            counters: HealthCounters {
                xid_errors: vec![XidEvent {
                    xid: 79,
                    time_ms: 1,
                }],
                ..HealthCounters::default()
            },
            ..GpuDevice::default()
        };
        let json = serde_json::to_value(&device).unwrap();
        assert_eq!(json["memoryTotalMib"], 81_559);
        assert_eq!(json["migMode"], "disabled");
        assert_eq!(json["throttleReasons"][0], "hw-power-brake-slowdown");
        assert_eq!(json["counters"]["xidErrors"][0]["timeMs"], 1);
        assert_eq!(
            json["counters"]["eccVolatileUncorrected"],
            serde_json::Value::Null
        );
        assert_eq!(json["health"]["status"], "healthy");
        let back: GpuDevice = serde_json::from_value(json).unwrap();
        assert_eq!(back, device);
    }

    #[test]
    fn left_out_values_are_unknown_not_zero() {
        let device: GpuDevice = serde_json::from_str(
            r#"{"index": 0, "uuid": "GPU-1", "name": "A100", "memoryTotalMib": 40960}"#,
        )
        .unwrap();
        assert_eq!(device.temperature_c, None);
        assert_eq!(device.counters.ecc_volatile_uncorrected, None);
        assert_eq!(device.health.status, HealthStatus::Healthy);
    }

    #[test]
    fn the_inventory_answers_for_its_devices() {
        let device = |uuid: &str, status| GpuDevice {
            uuid: uuid.into(),
            health: Health {
                status,
                reasons: Vec::new(),
            },
            ..GpuDevice::default()
        };
        let inventory = Inventory {
            hostname: "node-1".into(),
            driver_version: "550.54.15".into(),
            cuda_version: Some("12.4".into()),
            nvml_version: "12.550.54.15".into(),
            devices: vec![
                device("GPU-a", HealthStatus::Healthy),
                device("GPU-b", HealthStatus::Degraded),
                device("GPU-c", HealthStatus::Unhealthy),
            ],
        };
        assert_eq!(inventory.worst_health(), Some(HealthStatus::Unhealthy));
        assert_eq!(inventory.usable_count(), 2);
        assert_eq!(inventory.device("GPU-b").unwrap().uuid, "GPU-b");
        assert!(inventory.device("GPU-z").is_none());
        assert_eq!(
            Inventory {
                devices: Vec::new(),
                ..inventory
            }
            .worst_health(),
            None
        );
    }

    #[test]
    fn only_protective_throttling_is_a_slowdown() {
        assert!(ThrottleReason::HwThermalSlowdown.is_slowdown());
        assert!(ThrottleReason::HwPowerBrakeSlowdown.is_slowdown());
        assert!(!ThrottleReason::SwPowerCap.is_slowdown());
        assert!(!ThrottleReason::GpuIdle.is_slowdown());
    }
}
