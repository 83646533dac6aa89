//! What the Kubernetes backend needs to know beyond the specs: which
//! cluster, as whom, and how replicas are placed there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Toleration;

use moon_spec::kubernetes::{DEFAULT_IMAGE, parse_node_selector, parse_tolerations};

use crate::error::Result;

/// Settings of the Kubernetes backend.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesConfig {
    /// The kubeconfig file; `None` reads `KUBECONFIG`, then `~/.kube/config`,
    /// then the in-cluster service account, as kubectl does.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None` takes its current context.
    pub context: Option<String>,
    /// The image every replica runs.
    pub image: String,
    /// Tolerations added to every replica's pod, for clusters whose nodes
    /// for this work carry taints of their own (GPU taints are tolerated
    /// already for pods that ask for GPUs).
    pub tolerations: Vec<Toleration>,
    /// Node labels every replica's pod asks for (`nodeSelector`).
    pub node_selector: BTreeMap<String, String>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            kubeconfig: None,
            context: None,
            image: DEFAULT_IMAGE.to_string(),
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
        }
    }
}

impl KubernetesConfig {
    /// Settings from the environment: `MOON_KUBECONFIG` (else `KUBECONFIG`),
    /// `MOON_KUBE_CONTEXT`, `MOON_IMAGE`, `MOON_TOLERATIONS`
    /// (`key[=value]:Effect`, comma-separated, as `kubectl taint` writes taints)
    /// and `MOON_NODE_SELECTOR` (`key=value`, comma-separated).
    pub fn from_env() -> Result<KubernetesConfig> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Ok(KubernetesConfig {
            kubeconfig: var("MOON_KUBECONFIG").map(PathBuf::from),
            context: var("MOON_KUBE_CONTEXT"),
            image: var("MOON_IMAGE").unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
            tolerations: match var("MOON_TOLERATIONS") {
                Some(text) => parse_tolerations(&text)?,
                None => Vec::new(),
            },
            node_selector: match var("MOON_NODE_SELECTOR") {
                Some(text) => parse_node_selector(&text)?,
                None => BTreeMap::new(),
            },
        })
    }
}
