//! The `Client`: one handle on whichever backend the caller chose.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result, rule};
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

    /// The backend named by `MOON_BACKEND` (`local`, the default, or `kubernetes`).
    pub fn from_env() -> Result<Client> {
        let name = std::env::var("MOON_BACKEND").unwrap_or_else(|_| "local".into());
        Client::named(&name, None)
    }

    /// A backend by name, set up from the environment (see
    /// [`LocalConfig::from_env`] and [`KubernetesConfig::from_env`]); `home`
    /// overrides `MOON_HOME` for the local backend.
    pub fn named(name: &str, home: Option<PathBuf>) -> Result<Client> {
        match name {
            "local" => {
                let mut config = LocalConfig::from_env()?;
                if let Some(home) = home {
                    config.home = home;
                }
                Client::local_with(config)
            }
            "kubernetes" => Ok(Client::kubernetes(KubernetesConfig::from_env()?)),
            other => Err(Error::invalid(
                "config",
                "backend",
                rule::TYPE,
                format!("unknown backend {other:?}; moon offers \"local\" and \"kubernetes\""),
            )),
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
