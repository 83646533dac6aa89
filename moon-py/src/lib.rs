//! `moon._native`: the native half of moon's Python package. The Python
//! package `moon` wraps it in dataclasses and handles; users import `moon`.

mod client;
mod errors;
mod gpu;
mod net;
mod runtime;
mod service_client;
mod storage;

use pyo3::prelude::*;

/// The module object Python imports as `moon._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_class::<client::Client>()?;
    module.add_class::<client::LogIterator>()?;
    module.add_class::<client::EventIterator>()?;
    module.add_class::<service_client::ServiceClient>()?;
    module.add_function(wrap_pyfunction!(client::parse_job_yaml, module)?)?;
    module.add_function(wrap_pyfunction!(client::parse_tenant_yaml, module)?)?;
    module.add_function(wrap_pyfunction!(client::parse_spec_yaml, module)?)?;
    module.add_function(wrap_pyfunction!(client::render, module)?)?;
    module.add_function(wrap_pyfunction!(gpu::place_gpus, module)?)?;
    module.add_function(wrap_pyfunction!(gpu::gpu_inventory, module)?)?;
    module.add_function(wrap_pyfunction!(net::net_check, module)?)?;
    module.add_function(wrap_pyfunction!(net::net_matrix, module)?)?;
    module.add_class::<storage::Store>()?;
    module.add_class::<storage::Upload>()?;
    module.add_function(wrap_pyfunction!(storage::split_object_url, module)?)?;
    Ok(())
}
