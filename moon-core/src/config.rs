//! One way to say which backend to use and how, for every front end: Rust
//! programs, the CLI (its flags) and Python (`moon.Client(...)`) all build a
//! [`Config`], from the environment and then explicit settings, and connect
//! with it, so that a setting means the same everywhere.
//!
//! ```no_run
//! # fn demo() -> moon_core::Result<()> {
//! let config = moon_core::Config::from_env()?
//!     .with_backend("kubernetes")?
//!     .with_image("nvcr.io/nvidia/pytorch:25.01-py3")
//!     .with_tolerations(&["dedicated=ml:NoSchedule"])?
//!     .with_node_selector(&["pool=ml"])?;
//! let client = moon_core::Client::connect(&config)?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Toleration;

use crate::error::{Error, Result, rule};
use crate::kubernetes::{KubernetesConfig, parse_node_selector, parse_tolerations};
use crate::local::LocalConfig;
use crate::storage::StorageServers;

/// The backends moon offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendName {
    /// Processes on this machine.
    #[default]
    Local,
    /// A Kubernetes cluster.
    Kubernetes,
}

impl BackendName {
    /// As users write it: `local`, `kubernetes`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Local => "local",
            BackendName::Kubernetes => "kubernetes",
        }
    }

    /// The backend named `name`; `InvalidSpec` of kind `config` otherwise.
    pub fn parse(name: &str) -> Result<BackendName> {
        match name {
            "local" => Ok(BackendName::Local),
            "kubernetes" => Ok(BackendName::Kubernetes),
            other => Err(Error::invalid(
                "config",
                "backend",
                rule::TYPE,
                format!("unknown backend {other:?}; moon offers \"local\" and \"kubernetes\""),
            )),
        }
    }
}

/// Which backend, and its settings. Start from [`Config::from_env`] (or
/// [`Config::default`], which reads nothing) and override with `with_*`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    backend: BackendName,
    local: Option<LocalConfig>,
    home: Option<PathBuf>,
    agent_program: Option<PathBuf>,
    kubernetes: KubernetesConfig,
    storage: StorageServers,
}

impl Config {
    /// Settings from the environment: `MOON_BACKEND` (`local`, the default,
    /// or `kubernetes`); for the local backend `MOON_HOME` and
    /// `MOON_AGENT_PROGRAM` ([`LocalConfig::from_env`]); for Kubernetes
    /// `MOON_KUBECONFIG`, `MOON_KUBE_CONTEXT`, `MOON_IMAGE`, `MOON_TOLERATIONS`
    /// and `MOON_NODE_SELECTOR` ([`KubernetesConfig::from_env`]); the storage
    /// servers from `MOON_SEAWEEDFS`, `MOON_HDFS` and `MOON_GLUSTER` ([`StorageServers::from_env`]).
    pub fn from_env() -> Result<Config> {
        let backend = match std::env::var("MOON_BACKEND") {
            Ok(name) if !name.is_empty() => BackendName::parse(&name)?,
            _ => BackendName::Local,
        };
        Ok(Config {
            backend,
            kubernetes: KubernetesConfig::from_env()?,
            storage: StorageServers::from_env()?,
            ..Config::default()
        })
    }

    /// The backend, by name.
    pub fn with_backend(self, name: &str) -> Result<Config> {
        Ok(Config {
            backend: BackendName::parse(name)?,
            ..self
        })
    }

    /// The local backend's home, instead of `MOON_HOME` (`~/.moon`).
    pub fn with_home(self, home: impl Into<PathBuf>) -> Config {
        Config {
            home: Some(home.into()),
            ..self
        }
    }

    /// The program the local backend starts as its agent and supervisors
    /// (see [`LocalConfig::agent_program`]).
    pub fn with_agent_program(self, program: impl Into<PathBuf>) -> Config {
        Config {
            agent_program: Some(program.into()),
            ..self
        }
    }

    /// The kubeconfig file of the Kubernetes backend.
    pub fn with_kubeconfig(mut self, path: impl Into<PathBuf>) -> Config {
        self.kubernetes.kubeconfig = Some(path.into());
        self
    }

    /// The kubeconfig context of the Kubernetes backend.
    pub fn with_context(mut self, context: impl Into<String>) -> Config {
        self.kubernetes.context = Some(context.into());
        self
    }

    /// The image of replicas whose spec names none, on Kubernetes.
    pub fn with_image(mut self, image: impl Into<String>) -> Config {
        self.kubernetes.image = image.into();
        self
    }

    /// Taints every replica's pod tolerates, as `kubectl taint` writes them
    /// (`key[=value]:Effect`); replaces those of the environment.
    pub fn with_tolerations(mut self, taints: &[impl AsRef<str>]) -> Result<Config> {
        self.kubernetes.tolerations = parse_list(taints, parse_tolerations)?;
        Ok(self)
    }

    /// Node labels every replica's pod asks for (`key=value`); replaces
    /// those of the environment.
    pub fn with_node_selector(mut self, labels: &[impl AsRef<str>]) -> Result<Config> {
        self.kubernetes.node_selector = parse_list(labels, parse_node_selector)?;
        Ok(self)
    }

    /// The platform's storage servers, instead of `MOON_SEAWEEDFS` and `MOON_HDFS`.
    pub fn with_storage(self, storage: StorageServers) -> Config {
        Config { storage, ..self }
    }

    /// The platform's storage servers.
    pub fn storage(&self) -> &StorageServers {
        &self.storage
    }

    /// Which backend.
    pub fn backend(&self) -> BackendName {
        self.backend
    }

    /// The Kubernetes backend's settings.
    pub fn kubernetes(&self) -> &KubernetesConfig {
        &self.kubernetes
    }

    /// The local backend's settings: `MOON_HOME` and `MOON_AGENT_PROGRAM`
    /// unless overridden. Reads the environment (the user's home).
    pub fn local(&self) -> Result<LocalConfig> {
        let mut local = match &self.local {
            Some(local) => local.clone(),
            None => LocalConfig::from_env()?,
        };
        if let Some(home) = &self.home {
            local.home = home.clone();
        }
        if let Some(program) = &self.agent_program {
            local.agent_program = program.clone();
        }
        Ok(local)
    }
}

/// Items given one by one, each possibly a comma-separated list, parsed as one.
fn parse_list<T: Default>(
    items: &[impl AsRef<str>],
    parse: impl Fn(&str) -> moon_spec::Result<T>,
) -> Result<T> {
    if items.is_empty() {
        return Ok(T::default());
    }
    let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    Ok(parse(&joined.join(","))?)
}

/// Tolerations written back as `kubectl taint` writes them, for display.
pub fn taint_text(toleration: &Toleration) -> String {
    let key = toleration.key.clone().unwrap_or_default();
    let effect = toleration.effect.clone().unwrap_or_default();
    match &toleration.value {
        Some(value) => format!("{key}={value}:{effect}"),
        None => format!("{key}:{effect}"),
    }
}

/// A node selector written back as `key=value` pairs, for display.
pub fn node_selector_text(selector: &BTreeMap<String, String>) -> Vec<String> {
    selector
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_override_in_order_and_mean_the_same_everywhere() {
        let config = Config::default()
            .with_backend("kubernetes")
            .unwrap()
            .with_image("img:1")
            .with_tolerations(&["a:NoSchedule", "b=c:NoExecute"])
            .unwrap()
            .with_node_selector(&["pool=ml"])
            .unwrap();
        assert_eq!(config.backend(), BackendName::Kubernetes);
        let kubernetes = config.kubernetes();
        assert_eq!(kubernetes.image, "img:1");
        let taints: Vec<String> = kubernetes.tolerations.iter().map(taint_text).collect();
        assert_eq!(taints, ["a:NoSchedule", "b=c:NoExecute"]);
        assert_eq!(node_selector_text(&kubernetes.node_selector), ["pool=ml"]);
    }

    #[test]
    fn a_bad_setting_names_the_setting() {
        let error = Config::default().with_backend("nimbus").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid config: backend: unknown backend \"nimbus\""),
            "{error}"
        );
        let error = Config::default().with_node_selector(&["zone"]).unwrap_err();
        assert!(matches!(error, Error::InvalidSpec { kind: "config", .. }));
    }
}
