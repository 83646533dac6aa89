//! The `Client`: one handle on whichever backend the caller chose.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use moon_net::{BalancedClient, BalancerConfig, UpstreamProtocol};

use crate::backend::Backend;
use crate::config::{BackendName, Config};
use crate::error::Result;
use crate::kubernetes::{KubernetesBackend, KubernetesConfig};
use crate::local::{LocalBackend, LocalConfig};
use crate::service_registry::BackendRegistry;
use crate::spec::{Job, Spec, Tenant};
use crate::status::{ApplyOutcome, JobStatus};
use crate::storage::{StorageServers, TenantStorage, provision, resolve_volumes};

/// How long a request of [`Client::service_client`] waits for a ready
/// replica: the service's first reading, or a replica restarting.
pub const HOLD_WHEN_EMPTY: Duration = Duration::from_secs(10);

/// A handle on a backend, and on the platform's storage servers; cheap to clone and share
/// between threads. Everything a [`Backend`] does is called on the client directly.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
    storage: StorageServers,
}

impl Client {
    /// The local backend at `MOON_HOME` (default `~/.moon`).
    pub fn local() -> Result<Client> {
        Client::local_with(LocalConfig::from_env()?)
    }

    /// The local backend with explicit settings.
    pub fn local_with(config: LocalConfig) -> Result<Client> {
        Ok(Client::from_backend(Arc::new(LocalBackend::open(config)?)))
    }

    /// A Kubernetes cluster. Connects on the first request.
    pub fn kubernetes(config: KubernetesConfig) -> Client {
        Client::from_backend(Arc::new(KubernetesBackend::new(config)))
    }

    /// The backend and settings of the environment ([`Config::from_env`]).
    pub fn from_env() -> Result<Client> {
        Client::connect(&Config::from_env()?)
    }

    /// A client on the backend `config` chooses, with its settings. The
    /// local backend opens its state at once; Kubernetes connects on the
    /// first request.
    pub fn connect(config: &Config) -> Result<Client> {
        let client = match config.backend() {
            BackendName::Local => Client::local_with(config.local()?)?,
            BackendName::Kubernetes => Client::kubernetes(config.kubernetes().clone()),
        };
        Ok(client.with_storage(config.storage().clone()))
    }

    /// Any backend, for embedding and tests; no storage servers until
    /// [`with_storage`](Client::with_storage).
    pub fn from_backend(backend: Arc<dyn Backend>) -> Client {
        Client {
            backend,
            storage: StorageServers::default(),
        }
    }

    /// This client with the platform's storage servers `storage`.
    pub fn with_storage(self, storage: StorageServers) -> Client {
        Client { storage, ..self }
    }

    /// The platform's storage servers.
    pub fn storage_servers(&self) -> &StorageServers {
        &self.storage
    }

    /// Applies `tenant` on the backend, then provisions the storage its spec asks for (see
    /// [`provision`]): the outcome is that of the spec, and storage already as the spec says is
    /// left alone, so applying twice changes nothing. A storage system the platform has no
    /// server for is refused before anything is applied.
    pub async fn apply_tenant(&self, tenant: &Tenant) -> Result<ApplyOutcome> {
        if !tenant.storage.is_empty() {
            crate::spec::validate_tenant(tenant)?;
            // Refuse what cannot be provisioned before the backend records the spec.
            crate::storage::check_servers(tenant, &self.storage)?;
        }
        let outcome = self.backend.apply_tenant(tenant).await?;
        if !tenant.storage.is_empty() {
            provision(tenant, &self.storage).await?;
        }
        Ok(outcome)
    }

    /// Submits `job` (see [`Backend::submit`]), its volumes first resolved against the
    /// platform's storage servers for its tenant (see [`resolve_volumes`]).
    pub async fn submit(&self, job: &Job) -> Result<JobStatus> {
        if job.volumes.is_empty() {
            return self.backend.submit(job).await;
        }
        crate::spec::validate_job(job)?;
        let tenant = self.backend.get_tenant(&job.tenant).await?;
        let volumes = resolve_volumes(job, &tenant.spec, &self.storage)?;
        self.backend.submit_with_volumes(job, &volumes).await
    }

    /// Applies a spec of any kind (see [`Backend::apply`]): a tenant with its storage, as
    /// [`apply_tenant`](Client::apply_tenant) does, a job with its volumes, as
    /// [`submit`](Client::submit) does.
    pub async fn apply(&self, spec: &Spec) -> Result<ApplyOutcome> {
        match spec {
            Spec::Tenant(tenant) => self.apply_tenant(tenant).await,
            Spec::Job(job) => self.submit(job).await.map(|_| ApplyOutcome::Created),
            other => self.backend.apply(other).await,
        }
    }

    /// A client that balances its requests over the ready replicas of service
    /// `tenant/name` itself and sends them straight to them, with moon's
    /// balancer (power of two choices, ejection, safe retries), following the
    /// service as it scales (see [`BackendRegistry`]). It bypasses the proxy,
    /// so it does not wake a service at zero replicas: a request waits up to
    /// [`HOLD_WHEN_EMPTY`] for a replica, then fails. Must be called within a
    /// tokio runtime, which the client's following runs on.
    pub async fn service_client(&self, tenant: &str, name: &str) -> Result<BalancedClient> {
        self.backend.get_service(tenant, name).await?;
        let registry = BackendRegistry::new(self.backend.clone());
        Ok(BalancedClient::from_registry(
            &registry,
            &format!("{tenant}/{name}"),
            BalancerConfig::default(),
            UpstreamProtocol::Http1,
        )?
        .hold_when_empty(HOLD_WHEN_EMPTY))
    }

    /// The stores of the tenant `name`, confined to its part of each storage system.
    pub async fn storage(&self, name: &str) -> Result<TenantStorage> {
        let tenant = self.backend.get_tenant(name).await?;
        Ok(TenantStorage::new(&tenant.spec, &self.storage))
    }
}

impl Deref for Client {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        self.backend.as_ref()
    }
}
