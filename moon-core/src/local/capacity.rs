//! The machine's capacity: detected, or set in `MOON_HOME/config.yaml`.

use std::path::Path;

use moon_gpu::placement::MachineGpu;
use moon_gpu::{GpuProvider, HealthStatus};
use serde::Deserialize;

use super::admission::Limits;
use crate::error::{Error, FieldError, FieldErrors, Result, rule};
use crate::spec::{Quantity, from_yaml};

/// `config.yaml` under `MOON_HOME`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    capacity: CapacityOverrides,
}

/// What a user may set instead of what moon detects.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CapacityOverrides {
    cpus: Option<Quantity>,
    memory: Option<Quantity>,
    gpus: Option<u64>,
}

/// Where the machine's GPUs are read from, when it has a source for them.
pub struct MachineGpus {
    provider: Box<dyn GpuProvider>,
}

impl MachineGpus {
    /// The inventory file that `MOON_GPU_INVENTORY` names, or else NVML
    /// (watching for XID errors from now on when `watch_xids`, for a
    /// long-lived agent); `None` when there is neither, and the machine's
    /// GPUs are then only the count in `config.yaml`.
    pub fn detect(watch_xids: bool) -> Result<Option<MachineGpus>> {
        let detected = if watch_xids {
            moon_gpu::provider::detect_watching_xids()
        } else {
            moon_gpu::provider::detect()
        };
        match detected {
            Ok(provider) => Ok(Some(MachineGpus { provider })),
            Err(moon_gpu::Error::NoNvml(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The devices as they are now, health included.
    pub fn devices(&self) -> Result<Vec<MachineGpu>> {
        let inventory = self.provider.inventory()?;
        Ok(inventory
            .devices
            .into_iter()
            .map(|device| MachineGpu {
                healthy: device.health.status != HealthStatus::Unhealthy,
                uuid: device.uuid,
                index: device.index,
                model: device.name,
                memory_mib: device.memory_total_mib,
                compute_capability: device.compute_capability,
                in_use: false,
            })
            .collect())
    }
}

/// The machine's GPUs one by one, read once; `None` without a source.
pub fn machine_gpus() -> Result<Option<Vec<MachineGpu>>> {
    MachineGpus::detect(false)?
        .map(|gpus| gpus.devices())
        .transpose()
}

/// The machine's capacity: `config.yaml`'s, else what is detected; GPUs are
/// the usable devices of `gpus` when it lists them.
pub fn machine_capacity_with(config_file: &Path, gpus: Option<&[MachineGpu]>) -> Result<Limits> {
    let mut limits = machine_capacity(config_file)?;
    if let Some(devices) = gpus
        && limits.gpus == Some(0)
    {
        limits.gpus = Some(devices.iter().filter(|device| device.healthy).count() as u64);
    }
    Ok(limits)
}

/// The capacity admission works with: detected values, overridden by the config file.
pub fn machine_capacity(config_file: &Path) -> Result<Limits> {
    let overrides = match std::fs::read_to_string(config_file) {
        Ok(text) if !text.trim().is_empty() => from_yaml::<Config>("config", &text)?.capacity,
        Ok(_) => CapacityOverrides::default(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => CapacityOverrides::default(),
        Err(error) => return Err(Error::io("reading", config_file, error)),
    };
    let mut problems = Vec::new();
    let millicores = match &overrides.cpus {
        Some(cpus) => cpus.millicores().map_err(|problem| {
            problems.push(FieldError::new("capacity.cpus", rule::FORMAT, problem));
        }),
        None => Ok(detected_millicores()),
    };
    let bytes = match &overrides.memory {
        Some(memory) => memory.bytes().map_err(|problem| {
            problems.push(FieldError::new("capacity.memory", rule::FORMAT, problem));
        }),
        None => Ok(detected_bytes()),
    };
    if !problems.is_empty() {
        return Err(Error::InvalidSpec {
            kind: "config",
            errors: FieldErrors(problems),
        });
    }
    Ok(Limits {
        millicores: millicores.ok(),
        bytes: bytes.ok(),
        gpus: Some(overrides.gpus.unwrap_or(0)),
        jobs: None,
    })
}

fn detected_millicores() -> u64 {
    std::thread::available_parallelism()
        .map(|cores| cores.get() as u64 * 1000)
        .unwrap_or(1000)
}

fn detected_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .unwrap_or(u64::MAX)
}
