//! The `Client`: one handle on whichever backend the caller chose.

use std::ops::Deref;
use std::sync::Arc;

use crate::backend::Backend;
use crate::config::{BackendName, Config};
use crate::error::Result;
use crate::kubernetes::{KubernetesBackend, KubernetesConfig};
use crate::local::{LocalBackend, LocalConfig};

/// A handle on a backend; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
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
        match config.backend() {
            BackendName::Local => Client::local_with(config.local()?),
            BackendName::Kubernetes => Ok(Client::kubernetes(config.kubernetes().clone())),
        }
    }

    /// Any backend, for embedding and tests.
    pub fn from_backend(backend: Arc<dyn Backend>) -> Client {
        Client { backend }
    }
}

impl Deref for Client {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        self.backend.as_ref()
    }
}
