//! A static provider: the inventory a file describes, in the same schema as
//! [`Inventory`], YAML or JSON.
//!
//! The file is read when the provider is made, so that a broken file is an
//! error at once, and again at every inventory, so that a file a tool keeps
//! up to date (or a test rewrites) is a live source, as NVML is. Where a device has no
//! `health`, it is classified from the counters, temperatures and throttle
//! reasons the file gives. Where a device has a `health`, the file's verdict
//! stands. A device that gives neither `memoryUsedMib` nor `memoryFreeMib`
//! is idle: all its memory is free.
//!
//! Errors name the file and the field: `GPU inventory "gpus.yaml",
//! devices[3].memoryTotalMib: invalid type: string "lots", expected u64 at
//! line 12 column 21`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::device::Inventory;
use crate::error::{Error, Result};
use crate::health::classify;
use crate::provider::GpuProvider;

/// A provider that answers with a given inventory, or a file's.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedProvider {
    inventory: Inventory,
    /// The file it came from, read again at every inventory.
    file: Option<PathBuf>,
}

impl FixedProvider {
    /// A provider for this inventory, taken as it is (health included).
    pub fn new(inventory: Inventory) -> FixedProvider {
        FixedProvider {
            inventory,
            file: None,
        }
    }

    /// A provider for the inventory in this file (see the module docs).
    pub fn from_file(path: impl AsRef<Path>) -> Result<FixedProvider> {
        let path = path.as_ref();
        Ok(FixedProvider {
            inventory: read_inventory(path)?,
            file: Some(path.to_path_buf()),
        })
    }
}

fn read_inventory(path: &Path) -> Result<Inventory> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Inventory {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    parse_inventory(&text, path)
}

impl GpuProvider for FixedProvider {
    fn inventory(&self) -> Result<Inventory> {
        match &self.file {
            Some(path) => read_inventory(path),
            None => Ok(self.inventory.clone()),
        }
    }
}

/// Parses an inventory from YAML or JSON, classifying the health of each
/// device the text gives none for; `path` names the text in errors.
pub fn parse_inventory(text: &str, path: &Path) -> Result<Inventory> {
    let whole = |message: String| Error::Inventory {
        path: path.to_path_buf(),
        message,
    };
    let tree: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|error| whole(error.to_string()))?;
    let unjudged = devices_without_health(&tree);
    let mut inventory: Inventory = serde_path_to_error::deserialize(
        serde_yaml_ng::Deserializer::from_str(text),
    )
    .map_err(|error| {
        let field = error.path().to_string();
        let message = without_path_prefix(&error.inner().to_string(), &field);
        if field == "." {
            whole(message)
        } else {
            invalid(path, field, message)
        }
    })?;
    let mut first_with_uuid: HashMap<&str, usize> = HashMap::new();
    for (at, device) in inventory.devices.iter().enumerate() {
        if let Some(earlier) = first_with_uuid.insert(&device.uuid, at) {
            return Err(invalid(
                path,
                format!("devices[{at}].uuid"),
                format!("{:?} is also the UUID of devices[{earlier}]", device.uuid),
            ));
        }
    }
    for (at, device) in inventory.devices.iter_mut().enumerate() {
        if device.memory_used_mib == 0 && device.memory_free_mib == 0 {
            device.memory_free_mib = device.memory_total_mib;
        }
        if unjudged.contains(&at) {
            device.health = classify(device);
        }
    }
    Ok(inventory)
}

fn invalid(path: &Path, field: String, message: String) -> Error {
    Error::InvalidInventory {
        path: PathBuf::from(path),
        field,
        message,
    }
}

/// The positions of the devices that carry no `health` key.
fn devices_without_health(tree: &serde_yaml_ng::Value) -> Vec<usize> {
    let Some(devices) = tree
        .get("devices")
        .and_then(|devices| devices.as_sequence())
    else {
        return Vec::new();
    };
    devices
        .iter()
        .enumerate()
        .filter(|(_, device)| device.get("health").is_none())
        .map(|(at, _)| at)
        .collect()
}

/// serde_yaml_ng starts some messages with the path of the enclosing mapping
/// (`devices[3]: missing field ...`), which the error already gives.
fn without_path_prefix(message: &str, field: &str) -> String {
    message
        .split_once(": ")
        .filter(|(prefix, _)| !prefix.is_empty() && field.starts_with(prefix))
        .map_or(message, |(_, rest)| rest)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthStatus;

    const EXAMPLE: &str = include_str!("../../examples/inventory-h100x8.yaml");

    fn parse(text: &str) -> Result<Inventory> {
        parse_inventory(text, Path::new("gpus.yaml"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_example_reads_with_health_computed() {
        let inventory = parse(EXAMPLE).unwrap();
        assert_eq!(inventory.hostname, "dgx-h100-017");
        assert_eq!(inventory.cuda_version.as_deref(), Some("12.4"));
        assert_eq!(inventory.devices.len(), 8);
        let statuses: Vec<HealthStatus> = inventory
            .devices
            .iter()
            .map(|device| device.health.status)
            .collect();
        use HealthStatus::{Healthy, Unhealthy};
        assert_eq!(
            statuses,
            [
                Healthy, Healthy, Unhealthy, Healthy, Healthy, Unhealthy, Healthy, Healthy
            ]
        );
        assert_eq!(
            inventory.devices[2].health.reasons,
            [
                "2 volatile uncorrectable ECC errors",
                "a row remapping is pending; a GPU reset applies it"
            ]
        );
        assert_eq!(
            inventory.devices[5].health.reasons,
            ["XID 79: GPU has fallen off the bus"]
        );
        // Device 3 saw XID 13, an application error: still healthy.
        assert_eq!(inventory.devices[3].counters.xid_errors[0].xid, 13);
        assert!(
            inventory
                .devices
                .iter()
                .all(|device| device.name == "NVIDIA H100 80GB HBM3")
        );
    }

    #[test]
    fn the_example_round_trips_through_json() {
        let inventory = parse(EXAMPLE).unwrap();
        let json = serde_json::to_string_pretty(&inventory).unwrap();
        assert_eq!(parse(&json).unwrap(), inventory);
    }

    #[test]
    fn a_given_health_stands_and_idle_memory_is_free() {
        let inventory = parse(
            "devices:\n\
             - {index: 0, uuid: GPU-a, name: A100, memoryTotalMib: 40960,\n\
                counters: {eccVolatileUncorrected: 4},\n\
                health: {status: degraded, reasons: [checked by hand]}}\n\
             - {index: 1, uuid: GPU-b, name: A100, memoryTotalMib: 40960,\n\
                counters: {eccVolatileUncorrected: 4}}\n",
        )
        .unwrap();
        assert_eq!(inventory.devices[0].health.status, HealthStatus::Degraded);
        assert_eq!(inventory.devices[1].health.status, HealthStatus::Unhealthy);
        assert_eq!(inventory.devices[1].memory_free_mib, 40960);
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        assert_eq!(
            error("devices:\n- {index: 0, uuid: GPU-a, name: A100, memoryTotalMib: lots}\n"),
            "GPU inventory \"gpus.yaml\", devices[0].memoryTotalMib: invalid type: string \"lots\", expected u64 at line 2 column 55"
        );
        assert_eq!(
            error("devices:\n- {index: 0, name: A100, memoryTotalMib: 1}\n"),
            "GPU inventory \"gpus.yaml\", devices[0]: missing field `uuid` at line 2 column 3"
        );
        assert!(
            error("devices:\n- {index: 0, uuid: a, name: A100, memoryTotalMib: 1, tempC: 3}\n")
                .starts_with(
                    "GPU inventory \"gpus.yaml\", devices[0].tempC: unknown field `tempC`"
                )
        );
        assert!(
            error("devices:\n- {index: 0, uuid: a, name: A, memoryTotalMib: 1, migMode: on}\n")
                .starts_with(
                    "GPU inventory \"gpus.yaml\", devices[0].migMode: unknown variant `on`"
                )
        );
        assert!(
            error("hostname: [\n").starts_with("GPU inventory \"gpus.yaml\": "),
            "{}",
            error("hostname: [\n")
        );
    }

    #[test]
    fn two_devices_cannot_share_a_uuid() {
        assert_eq!(
            error(
                "devices:\n\
                 - {index: 0, uuid: GPU-a, name: A100, memoryTotalMib: 1}\n\
                 - {index: 1, uuid: GPU-a, name: A100, memoryTotalMib: 1}\n"
            ),
            "GPU inventory \"gpus.yaml\", devices[1].uuid: \"GPU-a\" is also the UUID of devices[0]"
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_names_itself() {
        let error = FixedProvider::from_file("/nonexistent/gpus.yaml").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("GPU inventory \"/nonexistent/gpus.yaml\": "),
            "{error}"
        );
    }

    #[test]
    fn an_empty_machine_is_an_empty_inventory() {
        let inventory = parse("hostname: laptop\n").unwrap();
        assert!(inventory.devices.is_empty());
        assert_eq!(inventory.cuda_version, None);
    }
}
