//! What policies are evaluated over: namespaces, pods and service accounts
//! with their labels, and the labels Calico gives every endpoint.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::net::Protocol;
use super::selector::Labels;

/// The label Calico gives every endpoint: its namespace.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
/// The label Calico gives every endpoint: its service account.
pub const SERVICE_ACCOUNT_LABEL: &str = "projectcalico.org/serviceaccount";
/// The label Calico gives every endpoint: its orchestrator (`k8s`).
pub const ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";

/// A namespace and its labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// Its labels (`kubernetes.io/metadata.name` is added when absent,
    /// as the apiserver does).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A port of a pod's container with a name, which policies may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedPort {
    /// The name.
    pub name: String,
    /// The number.
    pub port: u16,
    /// The protocol (default TCP).
    #[serde(default = "tcp", with = "protocol_text")]
    pub protocol: Protocol,
}

fn tcp() -> Protocol {
    Protocol::Tcp
}

mod protocol_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Protocol;

    pub(super) fn serialize<S: Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(p)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        let text = String::deserialize(d)?;
        Protocol::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a protocol")))
    }
}

/// A pod: where policies apply, and what rules match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pod {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its service account (default `default`).
    #[serde(default)]
    pub service_account: Option<String>,
    /// Its address, which `nets` and `ipBlock` rules match.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// Its named ports.
    #[serde(default)]
    pub ports: Vec<NamedPort>,
}

impl Pod {
    /// A pod with labels, no address and no named ports.
    pub fn new<K: Into<String>, V: Into<String>>(
        namespace: &str,
        name: &str,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Pod {
        Pod {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Pod::default()
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Its service account's name.
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().unwrap_or("default")
    }

    /// The number of its port named `name` for `protocol`.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.name == name && p.protocol == protocol)
            .map(|p| p.port)
    }
}

/// A service account's labels, which `serviceAccounts.selector` matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccount {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Everything policies are evaluated over.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// Namespaces (those of pods are added when absent, without labels
    /// but their name's).
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// Pods.
    #[serde(default)]
    pub pods: Vec<Pod>,
    /// Service accounts with labels.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
}

/// A pod's labels as Calico's selectors see them: its own, and
/// `projectcalico.org/namespace`, `.../serviceaccount`, `.../orchestrator`.
pub(crate) struct EndpointLabels<'a> {
    pub(crate) pod: &'a Pod,
}

impl Labels for EndpointLabels<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            NAMESPACE_LABEL => Some(&self.pod.namespace),
            SERVICE_ACCOUNT_LABEL => Some(self.pod.service_account()),
            ORCHESTRATOR_LABEL => Some("k8s"),
            _ => self.pod.labels.get(key).map(String::as_str),
        }
    }
}
