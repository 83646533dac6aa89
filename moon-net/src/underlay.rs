//! Underlay networks: Multus `NetworkAttachmentDefinition`s
//! (`k8s.cni.cncf.io/v1`) that attach pods to a host interface by macvlan,
//! ipvlan or a VLAN sub-interface, beside the cluster's own network.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The API group and version of Multus' attachments.
pub const MULTUS_API_VERSION: &str = "k8s.cni.cncf.io/v1";
/// The CNI spec version the configurations are written in.
pub const CNI_VERSION: &str = "0.3.1";
/// The pod annotation that asks Multus for attachments, by name.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";

/// How an underlay attaches to its host interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attachment {
    /// A MAC address of the pod's own on the host interface.
    Macvlan,
    /// The host interface's MAC address, an IP address of the pod's own.
    Ipvlan,
    /// A VLAN sub-interface of the host interface.
    Vlan,
}

/// An underlay network as the CNI plugin is told it.
#[derive(Clone, Debug, PartialEq)]
pub struct Underlay {
    /// The attachment's name.
    pub name: String,
    /// The plugin.
    pub attachment: Attachment,
    /// The host interface.
    pub master: String,
    /// The VLAN id (vlan).
    pub vlan: Option<u16>,
    /// The plugin's mode (macvlan, ipvlan).
    pub mode: Option<String>,
    /// Addresses handed out by host-local IPAM.
    pub subnet: Option<String>,
    /// The MTU.
    pub mtu: Option<u32>,
}

/// A Multus NetworkAttachmentDefinition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAttachmentDefinition {
    /// `k8s.cni.cncf.io/v1`.
    pub api_version: String,
    /// `NetworkAttachmentDefinition`.
    pub kind: String,
    /// Its name and namespace.
    pub metadata: ObjectMeta,
    /// The CNI configuration.
    pub spec: NetworkAttachmentSpec,
}

/// The spec of an attachment: a CNI configuration as JSON text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkAttachmentSpec {
    /// The CNI configuration, JSON.
    pub config: String,
}

impl Underlay {
    /// The CNI configuration: the plugin with its settings, and host-local
    /// IPAM over `subnet` when there is one.
    pub fn cni_config(&self) -> serde_json::Value {
        let mut config = json!({
            "cniVersion": CNI_VERSION,
            "name": self.name,
            "type": match self.attachment {
                Attachment::Macvlan => "macvlan",
                Attachment::Ipvlan => "ipvlan",
                Attachment::Vlan => "vlan",
            },
            "master": self.master,
        });
        let fields = config.as_object_mut().expect("an object");
        if let Some(mode) = &self.mode {
            fields.insert("mode".into(), json!(mode));
        }
        if let Some(vlan) = self.vlan {
            fields.insert("vlanId".into(), json!(vlan));
        }
        if let Some(mtu) = self.mtu {
            fields.insert("mtu".into(), json!(mtu));
        }
        fields.insert(
            "ipam".into(),
            match &self.subnet {
                Some(subnet) => json!({"type": "host-local", "subnet": subnet}),
                None => json!({}),
            },
        );
        config
    }

    /// The attachment in `namespace`.
    pub fn attachment_definition(&self, namespace: &str) -> NetworkAttachmentDefinition {
        NetworkAttachmentDefinition {
            api_version: MULTUS_API_VERSION.into(),
            kind: "NetworkAttachmentDefinition".into(),
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec: NetworkAttachmentSpec {
                config: self.cni_config().to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vlan_underlay_names_its_plugin_master_id_and_ipam() {
        let underlay = Underlay {
            name: "storage-vlan".into(),
            attachment: Attachment::Vlan,
            master: "eth1".into(),
            vlan: Some(120),
            mode: None,
            subnet: Some("192.168.120.0/24".into()),
            mtu: Some(9000),
        };
        let nad = underlay.attachment_definition("vision");
        let config: serde_json::Value = serde_json::from_str(&nad.spec.config).unwrap();
        assert_eq!(
            config,
            json!({"cniVersion": "0.3.1", "name": "storage-vlan", "type": "vlan", "master": "eth1",
                   "vlanId": 120, "mtu": 9000,
                   "ipam": {"type": "host-local", "subnet": "192.168.120.0/24"}})
        );
        assert_eq!(nad.metadata.namespace.as_deref(), Some("vision"));
        assert_eq!(
            serde_json::to_value(&nad).unwrap()["kind"],
            "NetworkAttachmentDefinition"
        );
    }
}
