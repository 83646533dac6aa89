//! A tenant's network as Kubernetes objects: the policies that isolate it
//! (Kubernetes NetworkPolicies, or Calico's own in a tier of moon's with
//! cluster-wide guard rails) and its underlay attachments (Multus).
//!
//! Both isolations say the same: pods take connections from their own
//! namespace, and from other tenants (or the ingress controller) only to
//! the services the tenant exposes to them; pods connect to their own
//! namespace, to DNS, and to the addresses of the tenant's egress list.
//! Kubernetes policies allow, and everything no policy allows is denied;
//! tenants add their own policies beside them, which can only allow more.
//! Calico's `moon` tier comes first: what moon allows it passes on to the
//! tenant's own policies (which may narrow it), the rest it denies, and
//! before all that a guard rail no tenant can open denies the cloud
//! metadata address.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use moon_net::policy::{CalicoPolicy, EntityRule, PolicyType, PortMatch, Protocol, Rule};
use moon_net::underlay::{Attachment, Underlay as CniUnderlay};

use super::meta::{SERVICE_LABEL, meta};
use super::network_kinds;
use super::object::Object;
use crate::spec::{Exposure, Isolation, Tenant, UnderlayKind};

/// The NetworkPolicy that refuses connections from other namespaces.
pub const DENY_OTHER_NAMESPACES_POLICY: &str = "moon-default-deny-ingress-from-other-namespaces";
/// The NetworkPolicy that lets pods connect within their namespace.
pub const ALLOW_SAME_NAMESPACE_POLICY: &str = "moon-allow-egress-same-namespace";
/// The NetworkPolicy that lets pods look names up.
pub const ALLOW_DNS_POLICY: &str = "moon-allow-egress-dns";
/// The NetworkPolicy of the tenant's egress list.
pub const ALLOW_EGRESS_LIST_POLICY: &str = "moon-allow-egress-listed";
/// The start of the NetworkPolicy that opens an exposed service:
/// `moon-expose-SERVICE`.
pub const EXPOSE_POLICY_PREFIX: &str = "moon-expose-";
/// moon's Calico tier: before the default one, where tenants' own go.
pub const CALICO_TIER: &str = "moon";
/// The tier's order: Calico's default tier is at 1,000,000.
pub const CALICO_TIER_ORDER: f64 = 100.0;
/// The GlobalNetworkPolicy of the guard rails.
pub const GUARD_RAILS_POLICY: &str = "moon.guard-rails";
/// The Calico NetworkPolicy that isolates a tenant.
pub const CALICO_ISOLATION_POLICY: &str = "moon.isolation";
/// The Namespace label that says which isolation a tenant has; the guard
/// rails select the namespaces that have Calico's.
pub const ISOLATION_LABEL: &str = "moon.dev/network-isolation";
/// Addresses no tenant's pod may reach: the cloud metadata services
/// (instance credentials live there).
pub const GUARD_RAIL_NETS: [&str; 2] = ["169.254.169.254/32", "fd00:ec2::254/128"];

const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The tenant's network objects: its policies and attachments.
pub(crate) fn render_tenant_network(
    tenant: &Tenant,
    labels: &BTreeMap<String, String>,
) -> Vec<Object> {
    let mut objects = match tenant.network.isolation {
        Isolation::Kubernetes => kubernetes_policies(tenant, labels),
        Isolation::Calico => calico_policies(tenant, labels),
    };
    for underlay in &tenant.network.underlays {
        let attachment = CniUnderlay {
            name: underlay.name.clone(),
            attachment: match underlay.kind {
                UnderlayKind::Macvlan => Attachment::Macvlan,
                UnderlayKind::Ipvlan => Attachment::Ipvlan,
                UnderlayKind::Vlan => Attachment::Vlan,
            },
            master: underlay.master.clone(),
            vlan: underlay.vlan,
            mode: underlay.mode.clone(),
            subnet: underlay.subnet.clone(),
            mtu: underlay.mtu,
        }
        .attachment_definition(&tenant.name);
        objects.push(
            network_kinds::NetworkAttachmentDefinition {
                metadata: meta(&underlay.name, Some(&tenant.name), labels),
                spec: serde_json::to_value(&attachment.spec).expect("a spec serializes"),
            }
            .into(),
        );
    }
    objects
}

/// The label that the tenant's Namespace carries for its isolation.
pub(crate) fn isolation_label(tenant: &Tenant) -> (&'static str, &'static str) {
    (
        ISOLATION_LABEL,
        match tenant.network.isolation {
            Isolation::Kubernetes => "kubernetes",
            Isolation::Calico => "calico",
        },
    )
}

fn kubernetes_policies(tenant: &Tenant, labels: &BTreeMap<String, String>) -> Vec<Object> {
    let name = tenant.name.as_str();
    let meta = |object: &str| meta(object, Some(name), labels);
    let this_namespace = || {
        vec![networking::NetworkPolicyPeer {
            pod_selector: Some(LabelSelector::default()),
            ..networking::NetworkPolicyPeer::default()
        }]
    };
    let mut objects: Vec<Object> = vec![
        policy(
            meta(DENY_OTHER_NAMESPACES_POLICY),
            "Ingress",
            networking::NetworkPolicySpec {
                ingress: Some(vec![networking::NetworkPolicyIngressRule {
                    from: Some(this_namespace()),
                    ..networking::NetworkPolicyIngressRule::default()
                }]),
                ..networking::NetworkPolicySpec::default()
            },
        )
        .into(),
        policy(
            meta(ALLOW_SAME_NAMESPACE_POLICY),
            "Egress",
            networking::NetworkPolicySpec {
                egress: Some(vec![networking::NetworkPolicyEgressRule {
                    to: Some(this_namespace()),
                    ..networking::NetworkPolicyEgressRule::default()
                }]),
                ..networking::NetworkPolicySpec::default()
            },
        )
        .into(),
        // Port 53 to any address rather than to kube-dns's pods: clusters
        // differ in where DNS answers (CoreDNS pods, a node-local cache on a
        // link-local address), and a selector that misses it breaks every
        // name lookup.
        policy(
            meta(ALLOW_DNS_POLICY),
            "Egress",
            networking::NetworkPolicySpec {
                egress: Some(vec![networking::NetworkPolicyEgressRule {
                    ports: Some(vec![k8s_port("UDP", 53, None), k8s_port("TCP", 53, None)]),
                    ..networking::NetworkPolicyEgressRule::default()
                }]),
                ..networking::NetworkPolicySpec::default()
            },
        )
        .into(),
    ];
    if !tenant.network.egress.is_empty() {
        let rules = tenant
            .network
            .egress
            .iter()
            .map(|rule| networking::NetworkPolicyEgressRule {
                to: Some(vec![networking::NetworkPolicyPeer {
                    ip_block: Some(networking::IPBlock {
                        cidr: rule.cidr.clone(),
                        except: (!rule.except.is_empty()).then(|| rule.except.clone()),
                    }),
                    ..networking::NetworkPolicyPeer::default()
                }]),
                ports: (!rule.ports.is_empty()).then(|| {
                    let protocol = rule.protocol.as_deref().unwrap_or("TCP");
                    port_ranges(&rule.ports)
                        .map(|(first, last)| {
                            k8s_port(protocol, first, (last > first).then_some(last))
                        })
                        .collect()
                }),
            })
            .collect();
        objects.push(
            policy(
                meta(ALLOW_EGRESS_LIST_POLICY),
                "Egress",
                networking::NetworkPolicySpec {
                    egress: Some(rules),
                    ..networking::NetworkPolicySpec::default()
                },
            )
            .into(),
        );
    }
    for exposure in &tenant.network.expose {
        let namespaces = exposure_namespaces(tenant, exposure);
        let spec = networking::NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    SERVICE_LABEL.to_string(),
                    exposure.service.clone(),
                )])),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_string()]),
            ingress: Some(vec![networking::NetworkPolicyIngressRule {
                from: Some(vec![networking::NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector {
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: NAMESPACE_NAME_LABEL.to_string(),
                            operator: "In".to_string(),
                            values: Some(namespaces),
                        }]),
                        ..LabelSelector::default()
                    }),
                    ..networking::NetworkPolicyPeer::default()
                }]),
                ports: (!exposure.ports.is_empty()).then(|| {
                    exposure
                        .ports
                        .iter()
                        .map(|&port| k8s_port("TCP", port, None))
                        .collect()
                }),
            }]),
            ..networking::NetworkPolicySpec::default()
        };
        objects.push(
            networking::NetworkPolicy {
                metadata: meta(&format!("{EXPOSE_POLICY_PREFIX}{}", exposure.service)),
                spec: Some(spec),
            }
            .into(),
        );
    }
    objects
}

/// The namespaces that may reach an exposed service.
fn exposure_namespaces(tenant: &Tenant, exposure: &Exposure) -> Vec<String> {
    let mut namespaces = exposure.tenants.clone();
    if exposure.ingress {
        namespaces.push(tenant.network.ingress_namespace().to_string());
    }
    namespaces
}

/// The ports of an egress rule as ranges (validation has refused names).
fn port_ranges(ports: &[moon_net::policy::PortText]) -> impl Iterator<Item = (u16, u16)> + '_ {
    ports.iter().filter_map(|port| match port.to_match() {
        Ok(PortMatch::Range(first, last)) => Some((first, last)),
        _ => None,
    })
}

fn k8s_port(protocol: &str, port: u16, end: Option<u16>) -> networking::NetworkPolicyPort {
    networking::NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        end_port: end.map(i32::from),
        protocol: Some(protocol.to_string()),
    }
}

/// A policy over every pod of the namespace, of one direction.
fn policy(
    metadata: ObjectMeta,
    direction: &str,
    spec: networking::NetworkPolicySpec,
) -> networking::NetworkPolicy {
    networking::NetworkPolicy {
        metadata,
        spec: Some(networking::NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec![direction.to_string()]),
            ..spec
        }),
    }
}

/// moon's tier, the guard rails and the tenant's isolation, as Calico's
/// own objects (typed by moon-net, then held as the custom kinds' specs).
pub fn calico_guard_rails(labels: &BTreeMap<String, String>) -> Vec<Object> {
    let tier = moon_net::policy::Tier::new(CALICO_TIER, CALICO_TIER_ORDER);
    let mut guard_rails = CalicoPolicy::global(GUARD_RAILS_POLICY)
        .tier(CALICO_TIER)
        .order(0.0)
        .types([PolicyType::Egress])
        .egress(Rule::deny().to(EntityRule::default().nets(GUARD_RAIL_NETS)));
    guard_rails.spec.namespace_selector = Some(format!("{ISOLATION_LABEL} == 'calico'"));
    vec![
        network_kinds::Tier {
            metadata: meta(CALICO_TIER, None, labels),
            spec: serde_json::to_value(&tier.spec).expect("a spec serializes"),
        }
        .into(),
        network_kinds::GlobalNetworkPolicy {
            metadata: meta(GUARD_RAILS_POLICY, None, labels),
            spec: serde_json::to_value(&guard_rails.spec).expect("a spec serializes"),
        }
        .into(),
    ]
}

fn calico_policies(tenant: &Tenant, labels: &BTreeMap<String, String>) -> Vec<Object> {
    let name = tenant.name.as_str();
    let in_namespaces = |names: &[String]| {
        let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        format!("{NAMESPACE_NAME_LABEL} in {{{}}}", quoted.join(", "))
    };
    let mut isolation = CalicoPolicy::namespaced(name, CALICO_ISOLATION_POLICY)
        .tier(CALICO_TIER)
        .order(100.0)
        .selector("all()")
        .types([PolicyType::Ingress, PolicyType::Egress])
        // Its own namespace: on to the tenant's policies.
        .ingress(Rule::pass().from(EntityRule::default().selector("all()")));
    for exposure in &tenant.network.expose {
        let mut rule = Rule::pass()
            .from(
                EntityRule::default()
                    .namespace_selector(in_namespaces(&exposure_namespaces(tenant, exposure))),
            )
            .to(EntityRule::default()
                .selector(format!("{SERVICE_LABEL} == '{}'", exposure.service)));
        if !exposure.ports.is_empty() {
            rule = rule.protocol(Protocol::Tcp);
            rule.destination = rule.destination.ports(exposure.ports.iter().copied());
        }
        isolation = isolation.ingress(rule);
    }
    isolation = isolation
        .ingress(Rule::deny())
        .egress(Rule::pass().to(EntityRule::default().selector("all()")))
        .egress(
            Rule::pass()
                .protocol(Protocol::Udp)
                .to(EntityRule::default().ports([53])),
        )
        .egress(
            Rule::pass()
                .protocol(Protocol::Tcp)
                .to(EntityRule::default().ports([53])),
        );
    for rule in &tenant.network.egress {
        let mut pass = Rule::pass().to(EntityRule::default()
            .nets([rule.cidr.clone()])
            .not_nets(rule.except.iter().cloned()));
        if !rule.ports.is_empty() {
            let protocol = match rule.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            pass = pass.protocol(protocol);
            pass.destination.ports = rule.ports.clone();
        }
        isolation = isolation.egress(pass);
    }
    isolation = isolation.egress(Rule::deny());

    // Cluster-wide and the same for every tenant: no tenant's label.
    let mut objects = calico_guard_rails(&super::meta::labels(&BTreeMap::new(), &[]));
    objects.push(
        network_kinds::NetworkPolicy {
            metadata: meta(CALICO_ISOLATION_POLICY, Some(name), labels),
            spec: serde_json::to_value(&isolation.spec).expect("a spec serializes"),
        }
        .into(),
    );
    objects
}
