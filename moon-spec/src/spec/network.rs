//! A tenant's network: how its pods are isolated on Kubernetes, where they
//! may go besides their own namespace and DNS, which of its services other
//! tenants may reach, and the underlay networks its pods may attach to.
//!
//! ```yaml
//! network:
//!   isolation: calico          # or kubernetes (the default)
//!   egress:
//!   - cidr: 10.20.0.0/16       # a database outside the cluster
//!     ports: [5432]
//!   expose:
//!   - service: predict         # its pods, to tenant "web" and the ingress controller
//!     ports: [8080]
//!     tenants: [web]
//!     ingress: true
//!   underlays:
//!   - name: storage-vlan
//!     kind: vlan
//!     master: eth1
//!     vlan: 120
//!     subnet: 192.168.120.0/24
//! ```

use serde::{Deserialize, Serialize};

use moon_net::policy::{Cidr, PortMatch, PortText};

/// The namespace of the ingress controller, by default.
pub const DEFAULT_INGRESS_NAMESPACE: &str = "ingress-nginx";

/// A tenant's network settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantNetwork {
    /// Which policies isolate the tenant on Kubernetes.
    #[serde(default, skip_serializing_if = "Isolation::is_default")]
    pub isolation: Isolation,
    /// Destinations outside the tenant's namespace its pods may reach,
    /// besides DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
    /// Services of the tenant that other tenants, or the ingress
    /// controller, may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<Exposure>,
    /// The ingress controller's namespace (default `ingress-nginx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_namespace: Option<String>,
    /// Underlay networks (Multus attachments) the tenant's pods may join.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub underlays: Vec<Underlay>,
}

impl TenantNetwork {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == TenantNetwork::default()
    }

    /// The ingress controller's namespace.
    pub fn ingress_namespace(&self) -> &str {
        self.ingress_namespace
            .as_deref()
            .unwrap_or(DEFAULT_INGRESS_NAMESPACE)
    }
}

/// Which policies isolate a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Kubernetes NetworkPolicies: any CNI that enforces them.
    #[default]
    Kubernetes,
    /// Calico's own policies in a tier of moon's, before the tenant's own
    /// (which may narrow, never widen, what moon allows), with cluster-wide
    /// guard rails (no cloud metadata address). Needs Calico.
    Calico,
}

impl Isolation {
    fn is_default(&self) -> bool {
        *self == Isolation::Kubernetes
    }
}

/// Addresses outside the tenant its pods may reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressRule {
    /// The network, in CIDR notation.
    pub cidr: String,
    /// Networks inside it that stay out of reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    /// Ports (numbers, or `from:to` ranges); none: every port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortText>,
    /// `TCP` (the default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A service other tenants may reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exposure {
    /// The service's name: its pods carry `moon.dev/service: NAME`.
    pub service: String,
    /// Its ports (TCP); none: every port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// The tenants that may reach it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// Whether the ingress controller may reach it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ingress: bool,
}

/// An underlay network: a Multus attachment of a host interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Underlay {
    /// The attachment's name, which pods ask for.
    pub name: String,
    /// The CNI plugin: `macvlan`, `ipvlan` or `vlan`.
    pub kind: UnderlayKind,
    /// The host interface it hangs off (`eth1`).
    pub master: String,
    /// The VLAN id (1-4094); `vlan` needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// macvlan: `bridge` (default), `private`, `vepa`, `passthru`;
    /// ipvlan: `l2` (default), `l3`, `l3s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Addresses handed out (host-local IPAM); none: the pod gets no address
    /// from moon (a DHCP or static setup of the platform's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// The MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// The CNI plugins of underlays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnderlayKind {
    /// A MAC address of its own on the host interface.
    Macvlan,
    /// The host interface's MAC, an address of its own.
    Ipvlan,
    /// A VLAN sub-interface of the host interface.
    Vlan,
}

/// A finding of [`check_network`]: rule, field path, message.
pub(crate) type Finding = (&'static str, String, String);

/// Checks a tenant's network settings; paths start with `network.`.
pub(crate) fn check_network(network: &TenantNetwork) -> Vec<Finding> {
    use crate::error::rule;
    let mut findings: Vec<Finding> = Vec::new();
    let mut add = |rule: &'static str, path: String, message: String| {
        findings.push((rule, path, message));
    };
    let cidr_at = |path: String, text: &str, add: &mut dyn FnMut(&'static str, String, String)| {
        if let Err(e) = Cidr::parse(text) {
            add(
                rule::FORMAT,
                path,
                format!(
                    "{text:?} is not a CIDR (column {}): {}",
                    e.column, e.message
                ),
            );
        }
    };
    for (i, rule_) in network.egress.iter().enumerate() {
        let at = format!("network.egress[{i}]");
        cidr_at(format!("{at}.cidr"), &rule_.cidr, &mut add);
        for (j, except) in rule_.except.iter().enumerate() {
            cidr_at(format!("{at}.except[{j}]"), except, &mut add);
        }
        for (j, port) in rule_.ports.iter().enumerate() {
            match port.to_match() {
                Ok(PortMatch::Named(name)) => add(
                    rule::FORMAT,
                    format!("{at}.ports[{j}]"),
                    format!("{name:?}: addresses outside the cluster have no named ports"),
                ),
                Ok(PortMatch::Range(0, _)) => add(
                    rule::RANGE,
                    format!("{at}.ports[{j}]"),
                    "ports start at 1".into(),
                ),
                Ok(PortMatch::Range(..)) => {}
                Err(e) => add(
                    rule::FORMAT,
                    format!("{at}.ports[{j}]"),
                    format!("column {}: {}", e.column, e.message),
                ),
            }
        }
        if let Some(protocol) = &rule_.protocol
            && !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP")
        {
            add(
                rule::TYPE,
                format!("{at}.protocol"),
                format!("must be TCP, UDP or SCTP, got {protocol:?}"),
            );
        }
    }
    for (i, exposure) in network.expose.iter().enumerate() {
        let at = format!("network.expose[{i}]");
        if exposure.service.is_empty() {
            add(
                rule::REQUIRED,
                format!("{at}.service"),
                "must not be empty".into(),
            );
        }
        if exposure.tenants.is_empty() && !exposure.ingress {
            add(
                rule::REQUIRED,
                format!("{at}.tenants"),
                "name the tenants that may reach the service, or set ingress: true".into(),
            );
        }
        for (j, port) in exposure.ports.iter().enumerate() {
            if *port == 0 {
                add(
                    rule::RANGE,
                    format!("{at}.ports[{j}]"),
                    "ports start at 1".into(),
                );
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, underlay) in network.underlays.iter().enumerate() {
        let at = format!("network.underlays[{i}]");
        if underlay.name.is_empty()
            || underlay.name.len() > 63
            || !underlay
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            add(
                rule::FORMAT,
                format!("{at}.name"),
                format!(
                    "must be 1-63 lowercase letters, digits and '-', got {:?}",
                    underlay.name
                ),
            );
        } else if !names.insert(underlay.name.as_str()) {
            add(
                rule::UNIQUE,
                format!("{at}.name"),
                format!("underlay {:?} appears more than once", underlay.name),
            );
        }
        if underlay.master.is_empty()
            || underlay.master.len() > 15
            || underlay.master.contains(['/', ' '])
        {
            add(
                rule::FORMAT,
                format!("{at}.master"),
                format!(
                    "must be a host interface name (1-15 characters, no '/' or space), got {:?}",
                    underlay.master
                ),
            );
        }
        match (underlay.kind, underlay.vlan) {
            (UnderlayKind::Vlan, None) => add(
                rule::REQUIRED,
                format!("{at}.vlan"),
                "a vlan underlay needs its VLAN id".into(),
            ),
            (_, Some(id)) if !(1..=4094).contains(&id) => add(
                rule::RANGE,
                format!("{at}.vlan"),
                format!("must be 1-4094, got {id}"),
            ),
            (UnderlayKind::Macvlan | UnderlayKind::Ipvlan, Some(_)) => add(
                rule::UNSUPPORTED,
                format!("{at}.vlan"),
                "only a vlan underlay takes a VLAN id: use a master that is a VLAN interface"
                    .into(),
            ),
            _ => {}
        }
        if let Some(mode) = &underlay.mode {
            let modes: &[&str] = match underlay.kind {
                UnderlayKind::Macvlan => &["bridge", "private", "vepa", "passthru"],
                UnderlayKind::Ipvlan => &["l2", "l3", "l3s"],
                UnderlayKind::Vlan => &[],
            };
            if !modes.contains(&mode.as_str()) {
                add(
                    rule::TYPE,
                    format!("{at}.mode"),
                    if modes.is_empty() {
                        "a vlan underlay has no mode".to_string()
                    } else {
                        format!("must be one of {}, got {mode:?}", modes.join(", "))
                    },
                );
            }
        }
        if let Some(subnet) = &underlay.subnet {
            cidr_at(format!("{at}.subnet"), subnet, &mut add);
        }
        if let Some(mtu) = underlay.mtu
            && !(576..=9216).contains(&mtu)
        {
            add(
                rule::RANGE,
                format!("{at}.mtu"),
                format!("must be 576-9216, got {mtu}"),
            );
        }
    }
    findings
}
