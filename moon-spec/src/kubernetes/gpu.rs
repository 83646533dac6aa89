//! A GPU selector as Kubernetes scheduling terms: the node affinity over
//! GPU Feature Discovery's labels that admits only nodes whose GPUs match.
//!
//! GFD labels a node with its GPU's product name (`nvidia.com/gpu.product`,
//! NVML's name with spaces as `-`: `NVIDIA-H100-80GB-HBM3`), its memory in
//! MiB (`nvidia.com/gpu.memory`) and its compute capability
//! (`nvidia.com/gpu.compute.major`, `.minor`). A node affinity matches label
//! values exactly, so a model as users write it (`H100`) becomes the list of
//! product names it matches among those moon knows ([`KNOWN_GPU_PRODUCTS`]),
//! plus the model itself, so that a full product name moon does not know
//! also works.

use k8s_openapi::api::core::v1 as core;
use moon_gpu::{GpuSelector, model_matches};

/// GFD's product label.
pub const PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// GFD's memory label, in MiB.
pub const MEMORY_LABEL: &str = "nvidia.com/gpu.memory";
/// GFD's compute capability labels.
pub const COMPUTE_MAJOR_LABEL: &str = "nvidia.com/gpu.compute.major";
/// See [`COMPUTE_MAJOR_LABEL`].
pub const COMPUTE_MINOR_LABEL: &str = "nvidia.com/gpu.compute.minor";

/// Data-centre and workstation GPUs as GFD names them (NVML's names, spaces
/// as `-`).
pub const KNOWN_GPU_PRODUCTS: &[&str] = &[
    "NVIDIA-B200",
    "NVIDIA-GH200-480GB",
    "NVIDIA-H200",
    "NVIDIA-H200-NVL",
    "NVIDIA-H100-80GB-HBM3",
    "NVIDIA-H100-PCIe",
    "NVIDIA-H100-NVL",
    "NVIDIA-H20",
    "NVIDIA-H800",
    "NVIDIA-A100-SXM4-40GB",
    "NVIDIA-A100-SXM4-80GB",
    "NVIDIA-A100-PCIE-40GB",
    "NVIDIA-A100-80GB-PCIe",
    "NVIDIA-A800-SXM4-80GB",
    "NVIDIA-A40",
    "NVIDIA-A30",
    "NVIDIA-A10",
    "NVIDIA-A10G",
    "NVIDIA-L40S",
    "NVIDIA-L40",
    "NVIDIA-L4",
    "NVIDIA-RTX-A6000",
    "NVIDIA-RTX-6000-Ada-Generation",
    "NVIDIA-GeForce-RTX-4090",
    "NVIDIA-GeForce-RTX-3090",
    "Tesla-V100-SXM2-16GB",
    "Tesla-V100-SXM2-32GB",
    "Tesla-V100-PCIE-16GB",
    "Tesla-V100-PCIE-32GB",
    "Tesla-T4",
    "Tesla-P100-PCIE-16GB",
];

/// The node affinity a selector needs; `None` when any GPU will do.
pub fn node_affinity(selector: &GpuSelector) -> Option<core::Affinity> {
    let mut common = Vec::new();
    if !selector.models.is_empty() {
        let mut products: Vec<String> = Vec::new();
        for model in &selector.models {
            for product in KNOWN_GPU_PRODUCTS {
                if model_matches(model, product) && !products.iter().any(|p| p == product) {
                    products.push(product.to_string());
                }
            }
            let written = model.replace(' ', "-");
            if !products.contains(&written) {
                products.push(written);
            }
        }
        common.push(requirement(PRODUCT_LABEL, "In", products));
    }
    if let Some(least) = selector.min_memory_mib {
        common.push(requirement(
            MEMORY_LABEL,
            "Gt",
            vec![least.saturating_sub(1).to_string()],
        ));
    }
    // Terms are ORed, requirements within one ANDed: capability (M, m) or
    // more is "major > M", or "major = M and minor > m - 1".
    let terms: Vec<Vec<core::NodeSelectorRequirement>> = match selector.min_compute_capability {
        None => vec![common],
        Some(cc) if cc.minor == 0 => {
            let mut term = common;
            term.push(requirement(
                COMPUTE_MAJOR_LABEL,
                "Gt",
                vec![cc.major.saturating_sub(1).to_string()],
            ));
            vec![term]
        }
        Some(cc) => {
            let mut above = common.clone();
            above.push(requirement(
                COMPUTE_MAJOR_LABEL,
                "Gt",
                vec![cc.major.to_string()],
            ));
            let mut same = common;
            same.push(requirement(
                COMPUTE_MAJOR_LABEL,
                "In",
                vec![cc.major.to_string()],
            ));
            same.push(requirement(
                COMPUTE_MINOR_LABEL,
                "Gt",
                vec![(cc.minor - 1).to_string()],
            ));
            vec![above, same]
        }
    };
    if terms.iter().all(Vec::is_empty) {
        return None;
    }
    Some(core::Affinity {
        node_affinity: Some(core::NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(core::NodeSelector {
                node_selector_terms: terms
                    .into_iter()
                    .map(|expressions| core::NodeSelectorTerm {
                        match_expressions: Some(expressions),
                        match_fields: None,
                    })
                    .collect(),
            }),
            ..core::NodeAffinity::default()
        }),
        ..core::Affinity::default()
    })
}

fn requirement(key: &str, operator: &str, values: Vec<String>) -> core::NodeSelectorRequirement {
    core::NodeSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: Some(values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(selector: &str) -> Vec<Vec<(String, String, Vec<String>)>> {
        let affinity = node_affinity(&selector.parse().unwrap()).unwrap();
        affinity
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms
            .into_iter()
            .map(|term| {
                term.match_expressions
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.key, r.operator, r.values.unwrap()))
                    .collect()
            })
            .collect()
    }

    fn owned(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn any_gpu_needs_no_affinity() {
        assert_eq!(node_affinity(&"2".parse().unwrap()), None);
    }

    #[test]
    fn a_model_becomes_the_product_names_it_matches() {
        let products = owned(&[
            "NVIDIA-H100-80GB-HBM3",
            "NVIDIA-H100-PCIe",
            "NVIDIA-H100-NVL",
            "H100",
        ]);
        assert_eq!(
            terms("H100:2"),
            [vec![(PRODUCT_LABEL.into(), "In".into(), products)]]
        );
        let exact = owned(&["NVIDIA-A100-SXM4-40GB"]);
        assert_eq!(
            terms("NVIDIA-A100-SXM4-40GB:1"),
            [vec![(PRODUCT_LABEL.into(), "In".into(), exact)]]
        );
    }

    #[test]
    fn memory_and_capability_are_lower_bounds() {
        assert_eq!(
            terms("80GB+:1"),
            [vec![(MEMORY_LABEL.into(), "Gt".into(), owned(&["76293"]))]]
        );
        assert_eq!(
            terms("cc9.0+:1"),
            [vec![(
                COMPUTE_MAJOR_LABEL.into(),
                "Gt".into(),
                owned(&["8"])
            )]]
        );
        assert_eq!(
            terms("cc8.6+:1"),
            [
                vec![(COMPUTE_MAJOR_LABEL.into(), "Gt".into(), owned(&["8"]))],
                vec![
                    (COMPUTE_MAJOR_LABEL.into(), "In".into(), owned(&["8"])),
                    (COMPUTE_MINOR_LABEL.into(), "Gt".into(), owned(&["5"])),
                ],
            ]
        );
    }
}
