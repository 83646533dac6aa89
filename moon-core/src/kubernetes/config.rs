//! What the Kubernetes backend needs to know beyond the specs: which
//! cluster, as whom, and how replicas are placed there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Toleration;

use moon_spec::error::rule;
use moon_spec::kubernetes::{
    DEFAULT_IMAGE, StorageEndpoints, parse_node_selector, parse_tolerations,
};

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
    /// Where the HDFS namenode and the Gluster servers that tenants' storage
    /// points at are.
    pub storage: StorageEndpoints,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            kubeconfig: None,
            context: None,
            image: DEFAULT_IMAGE.to_string(),
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
            storage: StorageEndpoints::default(),
        }
    }
}

impl KubernetesConfig {
    /// Settings from the environment: `MOON_KUBECONFIG` (else `KUBECONFIG`),
    /// `MOON_KUBE_CONTEXT`, `MOON_IMAGE`, `MOON_TOLERATIONS`
    /// (`key[=value]:Effect`, comma-separated, as `kubectl taint` writes taints)
    /// `MOON_NODE_SELECTOR` (`key=value`, comma-separated), `MOON_HDFS`
    /// (`hdfs://namenode:port`) and `MOON_GLUSTER` (`gluster://host[,host...]`).
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
            storage: StorageEndpoints {
                hdfs_namenode: var("MOON_HDFS")
                    .map(|url| authority(&url, "MOON_HDFS", "hdfs"))
                    .transpose()?,
                gluster_servers: var("MOON_GLUSTER")
                    .map(|url| authority(&url, "MOON_GLUSTER", "gluster"))
                    .transpose()?,
            },
        })
    }
}

/// The servers of a `scheme://servers[/]` setting: what the rendered
/// volumes name. Anything more (a path, a query) is refused rather than
/// dropped, so a setting never means less than it says.
fn authority(url: &str, setting: &str, scheme: &str) -> Result<String> {
    let problem = |message: String| -> crate::error::Error {
        moon_spec::Error::invalid("config", setting, rule::FORMAT, message).into()
    };
    let Some(rest) = url.strip_prefix(&format!("{scheme}://")) else {
        return Err(problem(format!("{url:?} does not start with {scheme}://")));
    };
    let servers = rest.strip_suffix('/').unwrap_or(rest);
    if servers.is_empty() || servers.contains(['/', '?', '#', '@']) {
        return Err(problem(format!(
            "{url:?} is not {scheme}://host[:port]: only the servers are read"
        )));
    }
    Ok(servers.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_settings_give_their_servers() {
        assert_eq!(
            authority("hdfs://namenode:8020", "MOON_HDFS", "hdfs").unwrap(),
            "namenode:8020"
        );
        assert_eq!(
            authority("gluster://g0,g1/", "MOON_GLUSTER", "gluster").unwrap(),
            "g0,g1"
        );
        for wrong in ["namenode:8020", "hdfs://", "hdfs://nn:8020/tenants"] {
            let error = authority(wrong, "MOON_HDFS", "hdfs")
                .unwrap_err()
                .to_string();
            assert!(error.contains("MOON_HDFS"), "{error}");
        }
    }
}
