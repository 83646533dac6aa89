//! GPUs for Python: this machine's inventory, and moon-gpu's cluster
//! placement, over JSON.

use moon_core::gpu::placement::{NodeGpus, cluster};
use moon_core::gpu::{GpuSelector, provider};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::runtime::run;

/// This machine's GPU inventory, as JSON (`moon gpu ls -o json`): from the
/// file `MOON_GPU_INVENTORY` names, else NVML. Raises `moon.GpuError`.
#[pyfunction]
pub(crate) fn gpu_inventory(py: Python<'_>) -> PyResult<String> {
    let inventory = run(py, async {
        Ok(provider::detect().and_then(|provider| provider.inventory())?)
    })?;
    serde_json::to_string(&inventory).map_err(|error| PyValueError::new_err(error.to_string()))
}

/// Places `pods` (GPU selectors such as `"H100:2"`), in order, on the nodes
/// of `nodes_json` (a JSON array of objects with `name`, `model`,
/// `memoryMib`, `computeCapability` (`{"major": 9, "minor": 0}` or null),
/// `gpusTotal`, `gpusFree` and `healthy`); returns a JSON array with each
/// pod's node name, or null where it fits nowhere.
#[pyfunction]
pub(crate) fn place_gpus(py: Python<'_>, nodes_json: &str, pods: Vec<String>) -> PyResult<String> {
    py.detach(|| {
        let nodes: Vec<NodeGpus> =
            serde_json::from_str(nodes_json).map_err(|error| format!("nodes_json: {error}"))?;
        let pods = pods
            .iter()
            .enumerate()
            .map(|(at, pod)| {
                pod.parse::<GpuSelector>()
                    .map_err(|error| format!("pods[{at}]: {error}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let names: Vec<Option<&str>> = cluster::place(&nodes, &pods)
            .into_iter()
            .map(|placed| placed.ok().map(|at| nodes[at].name.as_str()))
            .collect();
        serde_json::to_string(&names).map_err(|error| error.to_string())
    })
    .map_err(PyValueError::new_err)
}
