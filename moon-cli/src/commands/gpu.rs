//! `moon gpu ls|labels`: this machine's GPUs, read through moon-gpu (NVML,
//! or the file `MOON_GPU_INVENTORY` names), whatever backend is chosen.

use moon_core::gpu::{GpuDevice, Inventory, node_labels, provider};

use super::Context;
use crate::cli::GpuCommand;
use crate::exit::CliError;
use crate::output::{Table, key_values, or_dash};

/// Runs one `moon gpu` command.
pub fn run(context: &Context, command: GpuCommand) -> Result<(), CliError> {
    let inventory = provider::detect()
        .and_then(|provider| provider.inventory())
        .map_err(moon_core::Error::from)?;
    match command {
        GpuCommand::Ls if context.out.is_table() => context.out.text(&gpu_table(&inventory))?,
        GpuCommand::Ls => context.out.document(&inventory)?,
        GpuCommand::Labels if context.out.is_table() => {
            let lines: String = node_labels(&inventory)
                .iter()
                .map(|(key, value)| format!("{key}={value}\n"))
                .collect();
            context.out.text(&lines)?;
        }
        GpuCommand::Labels => context.out.document(&node_labels(&inventory))?,
    }
    Ok(())
}

/// `moon gpu ls`: the machine and driver, then a row per device.
fn gpu_table(inventory: &Inventory) -> String {
    let mut text = key_values(&[
        ("Host", or_dash(Some(&inventory.hostname))),
        ("Driver", or_dash(Some(&inventory.driver_version))),
        ("CUDA", or_dash(inventory.cuda_version.as_deref())),
    ]);
    text.push('\n');
    let mut table = Table::new(&[
        "INDEX", "UUID", "MODEL", "MEMORY", "TEMP", "UTIL", "HEALTH", "REASON",
    ]);
    for device in &inventory.devices {
        table.row(vec![
            device.index.to_string(),
            short_uuid(&device.uuid),
            device.name.clone(),
            format!("{}/{} MiB", device.memory_used_mib, device.memory_total_mib),
            device
                .temperature_c
                .map_or_else(|| "-".into(), |celsius| format!("{celsius}°C")),
            device
                .utilization_gpu_percent
                .map_or_else(|| "-".into(), |percent| format!("{percent}%")),
            device.health.status.to_string(),
            first_reason(device),
        ]);
    }
    text.push_str(&table.render());
    text
}

/// `GPU-8f3a1c2e-5b7d-...` → `GPU-8f3a1c2e`: the first group tells a
/// machine's devices apart; `-o json` has the whole UUID.
fn short_uuid(uuid: &str) -> String {
    let body = match uuid.split_once('-') {
        Some((prefix @ ("GPU" | "MIG"), _)) => prefix.len() + 1,
        _ => 0,
    };
    match uuid[body..].find('-') {
        Some(at) => uuid[..body + at].to_string(),
        None => uuid.to_string(),
    }
}

/// The first reason for the device's health, and how many more there are.
fn first_reason(device: &GpuDevice) -> String {
    match device.health.reasons.as_slice() {
        [] => "-".into(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moon_core::gpu::provider::parse_inventory;
    use std::path::Path;

    const INVENTORY: &str = "
hostname: node-1
driverVersion: '550.54.15'
devices:
  - {index: 0, uuid: GPU-8f3a1c2e-5b7d-4e19-a0c6-2d9e71b4f305, name: NVIDIA H100 80GB HBM3,
     memoryTotalMib: 81559, memoryUsedMib: 71243, temperatureC: 64, utilizationGpuPercent: 97}
  - index: 1
    uuid: GPU-7c18a3d5-9e4f-42b0-b6a1-3f8d2e5c7091
    name: NVIDIA H100 80GB HBM3
    memoryTotalMib: 81559
    counters:
      eccVolatileUncorrected: 2
      xidErrors: [{xid: 79, timeMs: 1}]
";

    #[test]
    fn ls_shows_each_device_with_its_first_reason() {
        let inventory = parse_inventory(INVENTORY, Path::new("gpus.yaml")).unwrap();
        assert_eq!(
            gpu_table(&inventory),
            "\
Host:    node-1
Driver:  550.54.15
CUDA:    -

INDEX  UUID          MODEL                  MEMORY           TEMP  UTIL  HEALTH     REASON
0      GPU-8f3a1c2e  NVIDIA H100 80GB HBM3  71243/81559 MiB  64°C  97%   healthy    -
1      GPU-7c18a3d5  NVIDIA H100 80GB HBM3  0/81559 MiB      -     -     unhealthy  \
2 volatile uncorrectable ECC errors (+1 more)
"
        );
    }

    #[test]
    fn uuids_shorten_to_their_first_group() {
        assert_eq!(
            short_uuid("GPU-8f3a1c2e-5b7d-4e19-a0c6-2d9e71b4f305"),
            "GPU-8f3a1c2e"
        );
        assert_eq!(short_uuid("GPU-1"), "GPU-1");
        assert_eq!(short_uuid("8f3a1c2e-5b7d"), "8f3a1c2e");
    }
}
