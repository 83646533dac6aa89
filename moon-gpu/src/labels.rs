//! Node labels from an inventory. These are the labels NVIDIA's GPU Feature
//! Discovery (GFD) puts on a node, so that Kubernetes can schedule on them,
//! plus moon's own health labels.
//!
//! The names and values follow GFD as it is now part of
//! `NVIDIA/k8s-device-plugin`:
//! - `internal/lm/resource.go`: `nvidia.com/gpu.product` (the name, with
//!   characters other than letters, digits, `-`, `_`, `.` and spaces dropped,
//!   and runs of spaces turned into `-`), `gpu.count`, `gpu.memory` (MiB),
//!   `gpu.family`, `gpu.compute.major` and `gpu.compute.minor`;
//! - `internal/lm/nvml.go`: `nvidia.com/cuda.driver.major`, `.minor`, `.rev`
//!   and `nvidia.com/cuda.runtime.major`, `.minor` (the older names), and their
//!   newer spellings `cuda.driver-version.*` and `cuda.runtime-version.*`.
//!
//! As in GFD, the product, memory and capability come from the first device.
//! `nvidia.com/gpu.present` is the label NVIDIA's GPU Operator selects GPU
//! nodes by.
//!
//! moon adds `moon.dev/gpu-health`, the worst status of any device
//! (`healthy`, `degraded` or `unhealthy`), and `moon.dev/gpu-healthy-count`,
//! the devices that can take work (healthy or degraded).

use std::collections::BTreeMap;

use crate::device::Inventory;
use crate::selector::ComputeCapability;

/// The label with the worst health of the node's GPUs.
pub const HEALTH_LABEL: &str = "moon.dev/gpu-health";

/// The label with how many of the node's GPUs can take work.
pub const HEALTHY_COUNT_LABEL: &str = "moon.dev/gpu-healthy-count";

/// The labels of a node with this inventory. A node without GPUs is
/// labelled `nvidia.com/gpu.present=false` and a count of 0.
pub fn node_labels(inventory: &Inventory) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut set = |key: String, value: &str| {
        labels.insert(key, value.to_string());
    };
    let Some(first) = inventory.devices.first() else {
        set("nvidia.com/gpu.present".into(), "false");
        set("nvidia.com/gpu.count".into(), "0");
        set(HEALTHY_COUNT_LABEL.into(), "0");
        return labels;
    };
    set("nvidia.com/gpu.present".into(), "true");
    set("nvidia.com/gpu.product".into(), &product(&first.name));
    set(
        "nvidia.com/gpu.count".into(),
        &inventory.devices.len().to_string(),
    );
    if first.memory_total_mib > 0 {
        set(
            "nvidia.com/gpu.memory".into(),
            &first.memory_total_mib.to_string(),
        );
    }
    if let Some(cc) = first.compute_capability.filter(|cc| cc.major > 0) {
        set("nvidia.com/gpu.family".into(), gpu_family(cc));
        set("nvidia.com/gpu.compute.major".into(), &cc.major.to_string());
        set("nvidia.com/gpu.compute.minor".into(), &cc.minor.to_string());
    }
    // Each version under GFD's older name and its newer one.
    let driver = &inventory.driver_version;
    if let Some((major, minor, rev)) = driver_version(driver) {
        for (old, new, value) in [
            ("major", "major", major),
            ("minor", "minor", minor),
            ("rev", "revision", rev),
        ] {
            set(format!("nvidia.com/cuda.driver.{old}"), value);
            set(format!("nvidia.com/cuda.driver-version.{new}"), value);
        }
        set("nvidia.com/cuda.driver-version.full".into(), driver);
    }
    let runtime = inventory.cuda_version.as_deref().unwrap_or_default();
    if let Some((major, minor)) = runtime.split_once('.') {
        for (part, value) in [("major", major), ("minor", minor)] {
            set(format!("nvidia.com/cuda.runtime.{part}"), value);
            set(format!("nvidia.com/cuda.runtime-version.{part}"), value);
        }
        set("nvidia.com/cuda.runtime-version.full".into(), runtime);
    }
    if let Some(worst) = inventory.worst_health() {
        set(HEALTH_LABEL.into(), worst.as_str());
    }
    set(
        HEALTHY_COUNT_LABEL.into(),
        &inventory.usable_count().to_string(),
    );
    labels
}

/// The architecture family GFD names for a compute capability: 7.0 is
/// `volta`, 7.5 `turing`, 8.0 to 8.7 `ampere`, 8.9 `ada-lovelace`, 9.x
/// `hopper`, and 10.x to 12.x `blackwell` (12.0 is the RTX 50 series).
pub fn gpu_family(cc: ComputeCapability) -> &'static str {
    match (cc.major, cc.minor) {
        (1, _) => "tesla",
        (2, _) => "fermi",
        (3, _) => "kepler",
        (5, _) => "maxwell",
        (6, _) => "pascal",
        (7, minor) if minor < 5 => "volta",
        (7, _) => "turing",
        (8, minor) if minor < 9 => "ampere",
        (8, _) => "ada-lovelace",
        (9, _) => "hopper",
        (10..=12, _) => "blackwell",
        _ => "undefined",
    }
}

/// GFD's product label value: the name keeping letters, digits, `-`, `_`,
/// `.` and spaces, with runs of spaces turned into one `-`.
fn product(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_. ".contains(*c))
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join("-")
}

/// `"550.54.15"` → (550, 54, 15); GFD accepts `X.Y` with an empty revision.
fn driver_version(version: &str) -> Option<(&str, &str, &str)> {
    let mut parts = version.split('.');
    let major = parts.next().filter(|part| !part.is_empty())?;
    let minor = parts.next()?;
    let rev = parts.next().unwrap_or("");
    parts.next().is_none().then_some((major, minor, rev))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::provider::parse_inventory;

    const EXAMPLE: &str = include_str!("../examples/inventory-h100x8.yaml");

    #[test]
    fn an_h100_node_is_labelled_as_gfd_would_plus_health() {
        let inventory = parse_inventory(EXAMPLE, Path::new("inventory-h100x8.yaml")).unwrap();
        let labels = node_labels(&inventory);
        let golden: BTreeMap<String, String> = [
            ("moon.dev/gpu-health", "unhealthy"),
            ("moon.dev/gpu-healthy-count", "6"),
            ("nvidia.com/cuda.driver-version.full", "550.54.15"),
            ("nvidia.com/cuda.driver-version.major", "550"),
            ("nvidia.com/cuda.driver-version.minor", "54"),
            ("nvidia.com/cuda.driver-version.revision", "15"),
            ("nvidia.com/cuda.driver.major", "550"),
            ("nvidia.com/cuda.driver.minor", "54"),
            ("nvidia.com/cuda.driver.rev", "15"),
            ("nvidia.com/cuda.runtime-version.full", "12.4"),
            ("nvidia.com/cuda.runtime-version.major", "12"),
            ("nvidia.com/cuda.runtime-version.minor", "4"),
            ("nvidia.com/cuda.runtime.major", "12"),
            ("nvidia.com/cuda.runtime.minor", "4"),
            ("nvidia.com/gpu.compute.major", "9"),
            ("nvidia.com/gpu.compute.minor", "0"),
            ("nvidia.com/gpu.count", "8"),
            ("nvidia.com/gpu.family", "hopper"),
            ("nvidia.com/gpu.memory", "81559"),
            ("nvidia.com/gpu.present", "true"),
            ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        assert_eq!(labels, golden);
    }

    #[test]
    fn a_node_without_gpus_says_so() {
        let inventory = parse_inventory("hostname: cpu-1\n", Path::new("x")).unwrap();
        let labels = node_labels(&inventory);
        assert_eq!(labels["nvidia.com/gpu.present"], "false");
        assert_eq!(labels["nvidia.com/gpu.count"], "0");
        assert_eq!(labels[HEALTHY_COUNT_LABEL], "0");
        assert!(!labels.contains_key(HEALTH_LABEL));
    }

    #[test]
    fn families_follow_the_compute_capability() {
        let family = |major, minor| gpu_family(ComputeCapability { major, minor });
        assert_eq!(family(7, 0), "volta");
        assert_eq!(family(7, 5), "turing");
        assert_eq!(family(8, 0), "ampere");
        assert_eq!(family(8, 6), "ampere");
        assert_eq!(family(8, 7), "ampere");
        assert_eq!(family(8, 9), "ada-lovelace");
        assert_eq!(family(9, 0), "hopper");
        assert_eq!(family(10, 0), "blackwell");
        assert_eq!(family(12, 0), "blackwell");
        assert_eq!(family(4, 0), "undefined");
    }

    #[test]
    fn products_and_versions_are_sanitised_as_gfd_does() {
        assert_eq!(product("NVIDIA H100 80GB HBM3"), "NVIDIA-H100-80GB-HBM3");
        assert_eq!(product("NVIDIA  A100-SXM4-40GB"), "NVIDIA-A100-SXM4-40GB");
        assert_eq!(product("Tesla V100 (SXM2) 16GB"), "Tesla-V100-SXM2-16GB");
        assert_eq!(driver_version("550.54.15"), Some(("550", "54", "15")));
        assert_eq!(driver_version("535.104"), Some(("535", "104", "")));
        assert_eq!(driver_version(""), None);
        assert_eq!(driver_version("1.2.3.4"), None);
    }
}
