//! The one mapping from moon's errors to Python exceptions.
//!
//! The exception classes are declared once, in `moon/errors.py`: several of
//! them have two bases (`InvalidSpec` is both a `MoonError` and a
//! `ValueError`), which `create_exception!` cannot express and the stable ABI
//! offers no other safe way to build. This module looks them up there.

use std::any::Any;

use moon_core::error::PathPart;
use moon_core::{Error, FieldError, gpu, net, storage};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString, PyTuple};

/// The Python module that declares moon's exceptions.
const ERRORS_MODULE: &str = "moon.errors";

/// Converts a moon error (or moon-spec's, which converts into it) into the
/// matching exception of `moon.errors`.
pub(crate) fn to_py_err(py: Python<'_>, error: impl Into<Error>) -> PyErr {
    let error: Error = error.into();
    let message = error.to_string();
    let built = (|| -> PyResult<PyErr> {
        let fields = PyDict::new(py);
        let class = match error {
            Error::InvalidSpec { kind, errors } => {
                let details = PyList::empty(py);
                for error in &errors.0 {
                    details.append(field_details(py, error)?)?;
                }
                let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                fields.set_item("errors", errors)?;
                fields.set_item("details", details)?;
                fields.set_item("kind", kind)?;
                "InvalidSpec"
            }
            Error::NotFound { kind, name } => {
                fields.set_item("kind", kind)?;
                fields.set_item("name", name)?;
                "NotFound"
            }
            Error::AlreadyExists { kind, name } => {
                fields.set_item("kind", kind)?;
                fields.set_item("name", name)?;
                "AlreadyExists"
            }
            Error::QuotaExceeded(refusal) => {
                fields.set_item("scope", refusal.scope)?;
                fields.set_item("resource", refusal.resource)?;
                fields.set_item("used", refusal.used)?;
                fields.set_item("asked", refusal.asked)?;
                fields.set_item("limit", refusal.limit)?;
                "QuotaExceeded"
            }
            Error::PermissionDenied(_) => "PermissionDenied",
            Error::Conflict(_) => "Conflict",
            Error::NotSupported(_) => "NotSupported",
            Error::JobFailed { job, phase, reason } => {
                let class = if phase == "cancelled" {
                    "JobCancelled"
                } else {
                    "JobFailed"
                };
                fields.set_item("job", job)?;
                fields.set_item("phase", phase)?;
                fields.set_item("reason", reason)?;
                class
            }
            Error::Timeout { what, seconds } => {
                fields.set_item("what", what)?;
                fields.set_item("seconds", seconds)?;
                "Timeout"
            }
            Error::Io { .. } | Error::Database(_) | Error::Agent(_) => "AgentError",
            Error::Cluster(cluster) => {
                fields.set_item("status", cluster.status)?;
                fields.set_item("reason", cluster.reason)?;
                fields.set_item("retryable", cluster.retryable)?;
                "ClusterError"
            }
            Error::Gpu(error) => {
                let kind = match error {
                    gpu::Error::NoNvml(_) => "no-nvml",
                    gpu::Error::Nvml(_) => "nvml",
                    gpu::Error::Inventory { .. } | gpu::Error::InvalidInventory { .. } => {
                        "inventory"
                    }
                    gpu::Error::InvalidSelector { .. } => "selector",
                    _ => "other",
                };
                fields.set_item("kind", kind)?;
                "GpuError"
            }
            Error::Storage(error) => storage_class(error, &fields)?,
            Error::Net(error) => match error {
                net::Error::NoReadyReplica { service } => {
                    fields.set_item("service", service)?;
                    "ServiceUnavailable"
                }
                net::Error::Upstream { service, .. } => {
                    fields.set_item("service", service)?;
                    "ServiceUnavailable"
                }
                net::Error::InvalidRequest(_) => "InvalidRequest",
                net::Error::InvalidPolicy { field, column, .. } => {
                    fields.set_item("field", field)?;
                    fields.set_item("column", column)?;
                    "InvalidPolicy"
                }
                _ => "MoonError",
            },
            // moon-core's enum is non-exhaustive: a new variant surfaces as
            // the base class until it gets one of its own here.
            _ => "MoonError",
        };
        exception(py, class, &message, Some(&fields))
    })();
    // Failing to build the exception (moon.errors broken or shadowed) must
    // still leave the caller with the original message.
    built.unwrap_or_else(|lookup| {
        let error = PyRuntimeError::new_err(message);
        error.set_cause(py, Some(lookup));
        error
    })
}

/// The class of `moon.errors` for a store's error, with its details set in `fields`. Each one
/// is a `StorageError` and also the general class (`NotFound`, `PermissionDenied`, ...) and
/// Python's own (`FileNotFoundError`, ...) that fit it.
fn storage_class(error: storage::Error, fields: &Bound<'_, PyDict>) -> PyResult<&'static str> {
    use storage::Error as E;
    Ok(match error {
        E::NotFound { path } => {
            fields.set_item("path", path)?;
            "ObjectNotFound"
        }
        E::AlreadyExists { path } => {
            fields.set_item("path", path)?;
            "ObjectExists"
        }
        E::PermissionDenied { path, .. } => {
            fields.set_item("path", path)?;
            "StoragePermissionDenied"
        }
        E::PreconditionFailed { path, .. } => {
            fields.set_item("path", path)?;
            "PreconditionFailed"
        }
        E::QuotaExceeded { .. } => "StorageQuotaExceeded",
        E::InvalidPath { path, reason } => {
            fields.set_item("path", path)?;
            fields.set_item("reason", reason)?;
            "InvalidStorePath"
        }
        E::InvalidRange { path, range, size } => {
            fields.set_item("path", path)?;
            fields.set_item("start", range.start)?;
            fields.set_item("end", range.end)?;
            fields.set_item("size", size)?;
            "InvalidRange"
        }
        E::InvalidUrl { url, reason } => {
            // Already redacted by moon-storage: no user information.
            fields.set_item("url", url)?;
            fields.set_item("reason", reason)?;
            "InvalidStoreUrl"
        }
        E::Unavailable { backend, .. } => {
            fields.set_item("backend", backend)?;
            "StorageUnavailable"
        }
        E::NotSupported { backend, operation } => {
            fields.set_item("backend", backend)?;
            fields.set_item("operation", operation)?;
            "StorageNotSupported"
        }
        // moon-storage's enum is non-exhaustive too.
        _ => "StorageError",
    })
}

/// One field error as `InvalidSpec.details` holds it: `{"loc": ("roles", 0,
/// "replicas"), "type": "range", "msg": "..."}`.
fn field_details<'py>(py: Python<'py>, error: &FieldError) -> PyResult<Bound<'py, PyDict>> {
    let loc: Vec<Bound<'py, PyAny>> = error
        .location()
        .into_iter()
        .map(|part| match part {
            PathPart::Key(key) => PyString::new(py, key).into_any(),
            PathPart::Index(index) => PyInt::new(py, index).into_any(),
        })
        .collect();
    let details = PyDict::new(py);
    details.set_item("loc", PyTuple::new(py, loc)?)?;
    details.set_item("type", &error.rule)?;
    details.set_item("msg", &error.message)?;
    Ok(details)
}

/// A `MoonError` for a panic caught inside the native module, so that a bug
/// surfaces as an ordinary exception rather than aborting the interpreter.
pub(crate) fn panic_to_py_err(py: Python<'_>, payload: Box<dyn Any + Send>) -> PyErr {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_string());
    let message = format!("internal error in moon's native module: {detail}");
    exception(py, "MoonError", &message, None).unwrap_or_else(|_| PyRuntimeError::new_err(message))
}

/// An instance of `moon.errors.<class>(message, **fields)` as a `PyErr`.
fn exception(
    py: Python<'_>,
    class: &str,
    message: &str,
    fields: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyErr> {
    let class = py.import(ERRORS_MODULE)?.getattr(class)?;
    let instance = class.call((message,), fields)?;
    Ok(PyErr::from_value(instance))
}
