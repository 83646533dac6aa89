//! `moon._native.Client` and its iterators. Specs go in and statuses come out
//! as JSON text, which the Python layer turns into dataclasses; the spec
//! parser and the error texts are moon-core's own, so Python users see what
//! the CLI shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, TryLockError};
use std::time::Duration;

use futures::StreamExt;
use moon_core::backend::{ApplyOutcome, Stream};
use moon_core::config::{node_selector_text, taint_text};
use moon_core::kubernetes::{KubernetesConfig, parse_node_selector, parse_tolerations};
use moon_core::local::LocalConfig;
use moon_core::spec::{
    Job, Kind, Tenant, job_from_yaml, service_from_yaml, spec_from_yaml, tenant_from_yaml,
};
use moon_core::{BackendName, Config};
use moon_core::{Error, Event, LogLine, LogOptions, SecretData};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde::Serialize;

use crate::errors::to_py_err;
use crate::runtime::run;
use crate::storage::Store;

/// A handle on one backend. Safe to share between threads; after `os.fork()`
/// the child opens its own connection on first use.
#[pyclass(module = "moon._native", frozen)]
pub(crate) struct Client {
    /// Built as Rust programs and the CLI build theirs.
    config: Config,
    /// The local backend's settings, resolved once (`None` for others).
    local: Option<LocalConfig>,
    connection: Mutex<Connection>,
}

/// The open backend and the process that opened it: a SQLite connection
/// must not be used across `fork()`, so a child opens its own.
struct Connection {
    pid: u32,
    /// `None` only while being dropped.
    client: Option<moon_core::Client>,
}

impl Connection {
    fn new(client: moon_core::Client) -> Connection {
        Connection {
            pid: std::process::id(),
            client: Some(client),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // The parent's connection, inherited through fork(): closing it
            // here could disturb database files the parent still has open.
            std::mem::forget(self.client.take());
        }
    }
}

impl Client {
    /// Opens the backend afresh.
    fn open(py: Python<'_>, config: &Config) -> PyResult<moon_core::Client> {
        let config = config.clone();
        run(py, async move { moon_core::Client::connect(&config) })
    }

    /// The backend, reopened if this is a child process of the one that opened it.
    fn connection(&self, py: Python<'_>) -> PyResult<moon_core::Client> {
        {
            let guard = self
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if guard.pid == std::process::id()
                && let Some(client) = &guard.client
            {
                return Ok(client.clone());
            }
        }
        // Opened without the lock held: opening releases the GIL, and a
        // thread waiting for the lock while holding the GIL would deadlock.
        let fresh = Client::open(py, &self.config)?;
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Connection::new(fresh.clone());
        Ok(fresh)
    }

    /// The Kubernetes settings, when that is the backend.
    fn kubernetes(&self) -> Option<&KubernetesConfig> {
        (self.config.backend() == BackendName::Kubernetes).then(|| self.config.kubernetes())
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        backend = None,
        home = None,
        agent_program = None,
        kubeconfig = None,
        context = None,
        image = None,
        tolerations = None,
        node_selector = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        backend: Option<&str>,
        home: Option<PathBuf>,
        agent_program: Option<PathBuf>,
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
        image: Option<String>,
        tolerations: Option<Vec<String>>,
        node_selector: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let configured = (|| -> moon_core::Result<Config> {
            let mut config = Config::from_env()?;
            if let Some(backend) = backend {
                config = config.with_backend(backend)?;
            }
            if let Some(home) = home {
                config = config.with_home(home);
            }
            if let Some(path) = kubeconfig {
                config = config.with_kubeconfig(path);
            }
            if let Some(context) = context {
                config = config.with_context(context);
            }
            if let Some(image) = image {
                config = config.with_image(image);
            }
            if let Some(tolerations) = tolerations {
                config = config.with_tolerations(&tolerations)?;
            }
            if let Some(labels) = node_selector {
                config = config.with_node_selector(&labels)?;
            }
            Ok(config)
        })();
        let mut config = configured.map_err(|error| to_py_err(py, error))?;
        let local = if config.backend() == BackendName::Local {
            config = config.with_agent_program(resolve_agent_program(py, agent_program)?);
            Some(config.local().map_err(|error| to_py_err(py, error))?)
        } else {
            None
        };
        let opened = Client::open(py, &config)?;
        Ok(Client {
            config,
            local,
            connection: Mutex::new(Connection::new(opened)),
        })
    }

    /// The backend's name (`local`).
    #[getter]
    fn backend(&self) -> &'static str {
        self.config.backend().as_str()
    }

    /// `MOON_HOME` of the local backend; `None` for other backends.
    #[getter]
    fn home(&self) -> Option<PathBuf> {
        self.local.as_ref().map(|config| config.home.clone())
    }

    /// The image replicas run on the Kubernetes backend; `None` for others.
    #[getter]
    fn image(&self) -> Option<String> {
        self.kubernetes().map(|config| config.image.clone())
    }

    /// The tolerations the Kubernetes backend adds to every pod, as
    /// `key[=value]:Effect`; empty for other backends.
    #[getter]
    fn tolerations(&self) -> Vec<String> {
        self.kubernetes()
            .iter()
            .flat_map(|config| &config.tolerations)
            .map(taint_text)
            .collect()
    }

    /// The node labels every pod asks for on the Kubernetes backend, as
    /// `key=value`; empty for other backends.
    #[getter]
    fn node_selector(&self) -> Vec<String> {
        self.kubernetes()
            .map(|config| node_selector_text(&config.node_selector))
            .unwrap_or_default()
    }

    /// The kubeconfig file of the Kubernetes backend, when one was named.
    #[getter]
    fn kubeconfig(&self) -> Option<PathBuf> {
        self.kubernetes()
            .and_then(|config| config.kubeconfig.clone())
    }

    /// The kubeconfig context of the Kubernetes backend, when one was named.
    #[getter]
    fn context(&self) -> Option<String> {
        self.kubernetes().and_then(|config| config.context.clone())
    }

    /// The program the local backend starts as its agent and supervisors.
    #[getter]
    fn agent_program(&self) -> Option<PathBuf> {
        self.local
            .as_ref()
            .map(|config| config.agent_program.clone())
    }

    fn __repr__(&self) -> String {
        match &self.local {
            Some(config) => format!(
                "Client(backend={:?}, home={:?})",
                self.backend(),
                config.home
            ),
            None => format!("Client(backend={:?})", self.backend()),
        }
    }

    /// Creates or updates a tenant from its spec (JSON or YAML); returns
    /// `created`, `updated` or `unchanged`.
    fn apply_tenant(&self, py: Python<'_>, spec: String) -> PyResult<&'static str> {
        let client = self.connection(py)?;
        run(py, async move {
            let tenant = tenant_from_yaml(&spec)?;
            Ok(match client.apply_tenant(&tenant).await? {
                ApplyOutcome::Created => "created",
                ApplyOutcome::Updated => "updated",
                ApplyOutcome::Unchanged => "unchanged",
            })
        })
    }

    /// One tenant and its usage, as JSON.
    fn get_tenant(&self, py: Python<'_>, name: String) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move { to_json(&client.get_tenant(&name).await?) })
    }

    /// The URLs of a tenant's stores, one per storage system it has space on.
    fn tenant_storage_urls(&self, py: Python<'_>, name: String) -> PyResult<Vec<String>> {
        let client = self.connection(py)?;
        run(py, async move { Ok(client.storage(&name).await?.urls()) })
    }

    /// The store at `url`, which must lie in the tenant's part of one of its storage systems
    /// (`PermissionDenied` otherwise).
    fn tenant_store(&self, py: Python<'_>, name: String, url: String) -> PyResult<Store> {
        let client = self.connection(py)?;
        let storage = run(py, async move { client.storage(&name).await })?;
        Store::of_tenant(py, storage, &url)
    }

    /// Every tenant and its usage, as a JSON list.
    fn list_tenants(&self, py: Python<'_>) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move { to_json(&client.list_tenants().await?) })
    }

    /// Validates and submits a job spec (JSON or YAML); returns its status as JSON.
    fn submit(&self, py: Python<'_>, spec: String) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move {
            let job = job_from_yaml(&spec)?;
            to_json(&client.submit(&job).await?)
        })
    }

    /// One job's status, as JSON.
    fn get_job(&self, py: Python<'_>, tenant: String, name: String) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move {
            to_json(&client.get_job(&tenant, &name).await?)
        })
    }

    /// Jobs of one tenant or of all, oldest first, as a JSON list.
    #[pyo3(signature = (tenant = None))]
    fn list_jobs(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move {
            to_json(&client.list_jobs(tenant.as_deref()).await?)
        })
    }

    /// Asks a job to stop; returns its status as JSON.
    fn cancel(&self, py: Python<'_>, tenant: String, name: String) -> PyResult<String> {
        let client = self.connection(py)?;
        run(
            py,
            async move { to_json(&client.cancel(&tenant, &name).await?) },
        )
    }

    /// Creates a service from its spec (JSON or YAML); returns `created` or
    /// `unchanged`.
    fn apply_service(&self, py: Python<'_>, spec: String) -> PyResult<&'static str> {
        let client = self.connection(py)?;
        run(py, async move {
            let service = service_from_yaml(&spec)?;
            Ok(match client.apply_service(&service).await? {
                ApplyOutcome::Created => "created",
                ApplyOutcome::Updated => "updated",
                ApplyOutcome::Unchanged => "unchanged",
            })
        })
    }

    /// A client balancing requests over the service's ready replicas itself.
    fn service_client(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
    ) -> PyResult<crate::service_client::ServiceClient> {
        let client = self.connection(py)?;
        let client = run(
            py,
            async move { client.service_client(&tenant, &name).await },
        )?;
        Ok(crate::service_client::ServiceClient { client })
    }

    /// One service's status, as JSON.
    fn get_service(&self, py: Python<'_>, tenant: String, name: String) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move {
            to_json(&client.get_service(&tenant, &name).await?)
        })
    }

    /// Services of one tenant or of all, oldest first, as a JSON list.
    #[pyo3(signature = (tenant = None))]
    fn list_services(&self, py: Python<'_>, tenant: Option<String>) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move {
            to_json(&client.list_services(tenant.as_deref()).await?)
        })
    }

    /// Sets a service's replica count; returns its status as JSON.
    fn scale_service(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
        replicas: u32,
    ) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move {
            to_json(&client.scale_service(&tenant, &name, replicas).await?)
        })
    }

    /// Deletes a service: its replicas stop and its URL closes.
    fn delete_service(&self, py: Python<'_>, tenant: String, name: String) -> PyResult<()> {
        let client = self.connection(py)?;
        run(
            py,
            async move { client.delete_service(&tenant, &name).await },
        )
    }

    /// Deletes a job with its logs and records; with `force`, a job still
    /// pending or running is cancelled and waited for first.
    #[pyo3(signature = (tenant, name, force = false))]
    fn delete_job(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
        force: bool,
    ) -> PyResult<()> {
        let client = self.connection(py)?;
        run(
            py,
            async move { client.delete_job(&tenant, &name, force).await },
        )
    }

    /// Deletes a tenant and its jobs; with `force`, its unfinished jobs are
    /// cancelled and waited for first.
    #[pyo3(signature = (name, force = false))]
    fn delete_tenant(&self, py: Python<'_>, name: String, force: bool) -> PyResult<()> {
        let client = self.connection(py)?;
        run(py, async move { client.delete_tenant(&name, force).await })
    }

    /// The job's events after sequence number `after`, as a JSON list.
    #[pyo3(signature = (tenant, name, after = None))]
    fn events(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
        after: Option<u64>,
    ) -> PyResult<String> {
        let client = self.connection(py)?;
        run(py, async move {
            to_json(&client.events(&tenant, &name, after).await?)
        })
    }

    /// Waits for the job to end and returns its final status as JSON.
    /// Raises `JobFailed` (`JobCancelled`) if it failed (was cancelled), and
    /// `Timeout` if it is still running after `timeout` seconds.
    #[pyo3(signature = (tenant, name, timeout = None))]
    fn wait(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
        timeout: Option<f64>,
    ) -> PyResult<String> {
        let timeout = timeout.map(seconds).transpose()?;
        let client = self.connection(py)?;
        run(py, async move {
            let status = client.wait(&tenant, &name, timeout).await?;
            to_json(&status.into_result()?)
        })
    }

    /// The job's output lines; with `follow`, until the job ends.
    #[pyo3(signature = (tenant, name, follow = false, tail = None, replica = None))]
    fn logs(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
        follow: bool,
        tail: Option<usize>,
        replica: Option<String>,
    ) -> PyResult<LogIterator> {
        let client = self.connection(py)?;
        let options = LogOptions {
            follow,
            tail,
            replica,
        };
        let stream = run(
            py,
            async move { client.logs(&tenant, &name, options).await },
        )?;
        Ok(LogIterator {
            stream: Mutex::new(Some(stream)),
        })
    }

    /// Creates a tenant's secret or replaces all its keys; returns
    /// `created`, `updated` or `unchanged`. Errors name keys, never values.
    fn apply_secret(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
        data: BTreeMap<String, String>,
    ) -> PyResult<&'static str> {
        let client = self.connection(py)?;
        let data = SecretData::new(data);
        run(py, async move {
            Ok(match client.apply_secret(&tenant, &name, &data).await? {
                ApplyOutcome::Created => "created",
                ApplyOutcome::Updated => "updated",
                ApplyOutcome::Unchanged => "unchanged",
            })
        })
    }

    /// A tenant's secrets and their keys, as a JSON list; never their values.
    fn list_secrets(&self, py: Python<'_>, tenant: String) -> PyResult<String> {
        let client = self.connection(py)?;
        run(
            py,
            async move { to_json(&client.list_secrets(&tenant).await?) },
        )
    }

    /// Deletes a tenant's secret.
    fn delete_secret(&self, py: Python<'_>, tenant: String, name: String) -> PyResult<()> {
        let client = self.connection(py)?;
        run(
            py,
            async move { client.delete_secret(&tenant, &name).await },
        )
    }

    /// The job's events after `after`, then new ones until the job ends.
    #[pyo3(signature = (tenant, name, after = None))]
    fn watch(
        &self,
        py: Python<'_>,
        tenant: String,
        name: String,
        after: Option<u64>,
    ) -> PyResult<EventIterator> {
        let client = self.connection(py)?;
        let stream = run(py, async move { client.watch(&tenant, &name, after).await })?;
        Ok(EventIterator {
            stream: Mutex::new(Some(stream)),
        })
    }
}

/// A job's output: `(replica, stream, time_ms, line)` tuples. Each step waits
/// with the GIL released and can be interrupted with Ctrl-C.
#[pyclass(module = "moon._native", frozen)]
pub(crate) struct LogIterator {
    stream: Mutex<Option<Stream<LogLine>>>,
}

#[pymethods]
impl LogIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<(String, String, i64, String)>> {
        let line = next_item(py, &self.stream)?;
        Ok(line.map(|line| (line.replica, line.stream, line.time_ms, line.line)))
    }

    /// Stops reading; the iterator is exhausted afterwards.
    fn close(&self) {
        close(&self.stream);
    }
}

/// A job's events as JSON objects. Each step waits with the GIL released and
/// can be interrupted with Ctrl-C.
#[pyclass(module = "moon._native", frozen)]
pub(crate) struct EventIterator {
    stream: Mutex<Option<Stream<Event>>>,
}

#[pymethods]
impl EventIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        next_item(py, &self.stream)?
            .map(|event| to_json(&event).map_err(|error| to_py_err(py, error)))
            .transpose()
    }

    /// Stops watching; the iterator is exhausted afterwards.
    fn close(&self) {
        close(&self.stream);
    }
}

/// The next item of a stream, or `None` once it has ended.
fn next_item<T: Send>(py: Python<'_>, slot: &Mutex<Option<Stream<T>>>) -> PyResult<Option<T>> {
    // Never wait for the lock: the thread holding it may need the GIL (to
    // check for signals) that this thread holds.
    let mut guard = match slot.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            return Err(PyRuntimeError::new_err(
                "this iterator is already being advanced by another thread",
            ));
        }
    };
    let Some(stream) = guard.as_mut() else {
        return Ok(None);
    };
    let item = run(py, async { stream.next().await.transpose() })?;
    if item.is_none() {
        // Dropping the receiver ends the task that fed it.
        *guard = None;
    }
    Ok(item)
}

fn close<T>(slot: &Mutex<Option<Stream<T>>>) {
    // Called by Python's garbage collection too, possibly while another
    // thread iterates; that thread then finishes the stream itself.
    if let Ok(mut guard) = slot.try_lock() {
        *guard = None;
    }
}

/// Parses and validates a job spec (YAML or JSON); returns it as canonical JSON.
#[pyfunction]
pub(crate) fn parse_job_yaml(py: Python<'_>, text: &str) -> PyResult<String> {
    job_json(text).map_err(|error| to_py_err(py, error))
}

/// Parses and validates a tenant spec (YAML or JSON); returns it as canonical JSON.
#[pyfunction]
pub(crate) fn parse_tenant_yaml(py: Python<'_>, text: &str) -> PyResult<String> {
    tenant_json(text).map_err(|error| to_py_err(py, error))
}

/// The Kubernetes objects a spec becomes: the YAML stream `moon render`
/// prints (`output="yaml"`), or one JSON `List` (`output="json"`). Its kind
/// is `kind` (`"job"`, `"tenant"`) when given, else told by the spec
/// itself, as everywhere in moon.
#[pyfunction]
#[pyo3(signature = (
    spec_json, kind = None, output = "yaml", image = None, tolerations = None, node_selector = None
))]
pub(crate) fn render(
    py: Python<'_>,
    spec_json: &str,
    kind: Option<&str>,
    output: &str,
    image: Option<String>,
    tolerations: Option<Vec<String>>,
    node_selector: Option<Vec<String>>,
) -> PyResult<String> {
    use moon_core::kubernetes::{RenderOptions, render_spec, to_json, to_yaml};
    let kind = kind.map(kind_named).transpose()?;
    let write = match output {
        "yaml" => to_yaml,
        "json" => to_json,
        other => {
            return Err(PyValueError::new_err(format!(
                "output must be \"yaml\" or \"json\", got {other:?}"
            )));
        }
    };
    let tolerations = match tolerations {
        Some(tolerations) => {
            parse_tolerations(&tolerations.join(",")).map_err(|error| to_py_err(py, error))?
        }
        None => Vec::new(),
    };
    let options = RenderOptions {
        image: image.unwrap_or_else(|| moon_core::kubernetes::DEFAULT_IMAGE.to_string()),
        anchor_uid: None,
        tolerations,
        node_selector: match node_selector {
            Some(labels) => {
                parse_node_selector(&labels.join(",")).map_err(|error| to_py_err(py, error))?
            }
            None => Default::default(),
        },
        volumes: Vec::new(),
    };
    spec_from_yaml(spec_json, kind)
        .and_then(|spec| render_spec(&spec, &options))
        .map(|objects| write(&objects))
        .map_err(|error| to_py_err(py, error))
}

/// Parses and validates a spec of any kind; returns `(kind, canonical JSON)`,
/// the kind as commands write it (`"job"`). Without `kind`, the spec's
/// own `kind` key, or its keys, tell.
#[pyfunction]
#[pyo3(signature = (text, kind = None))]
pub(crate) fn parse_spec_yaml(
    py: Python<'_>,
    text: &str,
    kind: Option<&str>,
) -> PyResult<(&'static str, String)> {
    let kind = kind.map(kind_named).transpose()?;
    spec_from_yaml(text, kind)
        .map(|spec| (spec.kind().noun(), spec.to_json()))
        .map_err(|error| to_py_err(py, error))
}

/// A kind as Python names it.
fn kind_named(name: &str) -> PyResult<Kind> {
    Kind::parse(name).ok_or_else(|| {
        let known: Vec<String> = Kind::ALL
            .iter()
            .map(|kind| format!("{:?}", kind.noun()))
            .collect();
        PyValueError::new_err(format!(
            "kind must be one of {}, got {name:?}",
            known.join(", ")
        ))
    })
}

fn job_json(text: &str) -> moon_core::Result<String> {
    let job: Job = job_from_yaml(text)?;
    to_json(&job)
}

fn tenant_json(text: &str) -> moon_core::Result<String> {
    let tenant: Tenant = tenant_from_yaml(text)?;
    to_json(&tenant)
}

/// Only jobs have these keys; anything that is not a mapping at all is left
/// to the job parser to describe.
fn to_json<T: Serialize>(value: &T) -> moon_core::Result<String> {
    serde_json::to_string(value)
        .map_err(|error| Error::Agent(format!("encoding a reply as JSON: {error}")))
}

fn seconds(value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds, got {value}"
        ))
    })
}

/// The agent program of the local backend: the argument, else
/// `MOON_AGENT_PROGRAM`, else the `moon` bundled in this package, else `moon`
/// on `PATH`.
fn resolve_agent_program(py: Python<'_>, explicit: Option<PathBuf>) -> PyResult<PathBuf> {
    if let Some(program) = explicit {
        return Ok(program);
    }
    if let Some(program) =
        std::env::var_os("MOON_AGENT_PROGRAM").filter(|program| !program.is_empty())
    {
        return Ok(PathBuf::from(program));
    }
    if let Some(program) = bundled_program(py).filter(|program| is_executable(program)) {
        return Ok(program);
    }
    if let Some(program) = on_path("moon") {
        return Ok(program);
    }
    Err(to_py_err(
        py,
        Error::Agent(
            "no moon program to run jobs with: this package has no bundled moon/bin/moon and none \
             is on PATH; pass agent_program= or set MOON_AGENT_PROGRAM"
                .to_string(),
        ),
    ))
}

/// `moon/bin/moon` beside the package's `__init__.py`.
fn bundled_program(py: Python<'_>) -> Option<PathBuf> {
    let init: PathBuf = py
        .import("moon")
        .ok()?
        .getattr("__file__")
        .ok()?
        .extract()
        .ok()?;
    Some(init.parent()?.join("bin").join("moon"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}
