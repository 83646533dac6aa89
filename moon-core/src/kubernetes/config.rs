//! What the Kubernetes backend needs to know beyond the specs: which
//! cluster, as whom, and how replicas are placed there.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Toleration;

use super::job::DEFAULT_IMAGE;
use crate::error::{Error, Result};

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
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            kubeconfig: None,
            context: None,
            image: DEFAULT_IMAGE.to_string(),
            tolerations: Vec::new(),
        }
    }
}

impl KubernetesConfig {
    /// Settings from the environment: `MOON_KUBECONFIG` (else `KUBECONFIG`),
    /// `MOON_KUBE_CONTEXT`, `MOON_IMAGE` and `MOON_TOLERATIONS`
    /// (`key[=value]:Effect`, comma-separated, as `kubectl taint` writes taints).
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
        })
    }
}

/// Parses `key[=value]:Effect[,...]`: the taints to tolerate, as `kubectl
/// taint` writes them. A taint without a value is tolerated whatever its
/// value (`operator: Exists`).
pub fn parse_tolerations(text: &str) -> Result<Vec<Toleration>> {
    const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    let mut tolerations = Vec::new();
    for (i, item) in text.split(',').map(str::trim).enumerate() {
        let problem =
            |message: String| Error::invalid("config", format!("tolerations[{i}]"), message);
        let (taint, effect) = item.rsplit_once(':').ok_or_else(|| {
            problem(format!(
                "{item:?} has no effect: write key[=value]:NoSchedule"
            ))
        })?;
        if !EFFECTS.contains(&effect) {
            return Err(problem(format!(
                "effect {effect:?} is not one of {}",
                EFFECTS.join(", ")
            )));
        }
        let (key, value) = match taint.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (taint, None),
        };
        if key.is_empty() {
            return Err(problem(format!("{item:?} has no key")));
        }
        tolerations.push(Toleration {
            key: Some(key.to_string()),
            operator: Some(if value.is_some() { "Equal" } else { "Exists" }.to_string()),
            value: value.map(str::to_string),
            effect: Some(effect.to_string()),
            toleration_seconds: None,
        });
    }
    Ok(tolerations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_are_read_as_kubectl_writes_taints() {
        let parsed =
            parse_tolerations("kwok.x-k8s.io/node:NoSchedule, dedicated=ml:NoExecute").unwrap();
        assert_eq!(parsed[0].key.as_deref(), Some("kwok.x-k8s.io/node"));
        assert_eq!(parsed[0].operator.as_deref(), Some("Exists"));
        assert_eq!(parsed[0].value, None);
        assert_eq!(parsed[1].operator.as_deref(), Some("Equal"));
        assert_eq!(parsed[1].value.as_deref(), Some("ml"));
        assert_eq!(parsed[1].effect.as_deref(), Some("NoExecute"));
    }

    #[test]
    fn a_broken_toleration_names_its_position_and_the_rule() {
        let error = parse_tolerations("a:NoSchedule,b:Sometimes").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid config: tolerations[1]: effect \"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute"
        );
        let error = parse_tolerations("gpu").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid config: tolerations[0]: \"gpu\" has no effect: write key[=value]:NoSchedule"
        );
    }
}
