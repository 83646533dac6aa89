//! `moon._native.ServiceClient`: requests to a service balanced by moon's
//! balancer in this process and sent straight to its replicas
//! (`svc.client()` in Python). Every request runs with the GIL released, so
//! Python threads sending requests at once are answered at once.

use bytes::Bytes;
use moon_core::net::BalancedClient;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::runtime::run;

/// An answer as Python gets it: status, headers, body.
type Answer<'py> = (u16, Vec<(String, String)>, Bound<'py, PyBytes>);

/// One service's client; made by `Client.service_client`.
#[pyclass(module = "moon._native", frozen)]
pub(crate) struct ServiceClient {
    pub(crate) client: BalancedClient,
}

#[pymethods]
impl ServiceClient {
    /// Sends `method path` with `headers` and `body`; returns the answer's
    /// status, headers and body, whatever its status. Raises
    /// `ServiceUnavailable` when no replica answered.
    #[pyo3(signature = (method, path, headers = Vec::new(), body = None))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Option<PyBackedBytes>,
    ) -> PyResult<Answer<'py>> {
        let client = self.client.clone();
        let body = body.map_or_else(Bytes::new, Bytes::from_owner);
        let answer = run(py, async move {
            Ok(client.fetch(&method, &path, &headers, body).await?)
        })?;
        Ok((
            answer.status,
            answer.headers,
            PyBytes::new(py, &answer.body),
        ))
    }

    /// The replicas as the client's balancer sees them, as JSON.
    fn replicas(&self) -> PyResult<String> {
        serde_json::to_string(&self.client.balancer().status())
            .map_err(|error| pyo3::exceptions::PyRuntimeError::new_err(error.to_string()))
    }
}
