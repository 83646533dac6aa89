//! Calico's `projectcalico.org/v3` policy objects: NetworkPolicy,
//! GlobalNetworkPolicy (and their staged forms), NetworkSet,
//! GlobalNetworkSet and Tier, shaped as their CRDs are, with builders.
//!
//! Selectors, nets and ports stay text here, as the API stores them; the
//! evaluator parses them (with field paths and columns in its errors).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::net::{PortText, Protocol};

/// The API group and version of every object here.
pub const API_VERSION: &str = "projectcalico.org/v3";

fn api_version() -> String {
    API_VERSION.to_owned()
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Which of Calico's policy kinds a [`CalicoPolicy`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CalicoPolicyKind {
    /// Applies to endpoints of its namespace.
    NetworkPolicy,
    /// Applies to endpoints of any namespace, and hosts.
    GlobalNetworkPolicy,
    /// A NetworkPolicy being tried out: reported, never enforced.
    StagedNetworkPolicy,
    /// A GlobalNetworkPolicy being tried out: reported, never enforced.
    StagedGlobalNetworkPolicy,
}

impl CalicoPolicyKind {
    /// Whether it applies across namespaces.
    pub fn is_global(self) -> bool {
        matches!(
            self,
            CalicoPolicyKind::GlobalNetworkPolicy | CalicoPolicyKind::StagedGlobalNetworkPolicy
        )
    }

    /// Whether it is only staged (never enforced).
    pub fn is_staged(self) -> bool {
        matches!(
            self,
            CalicoPolicyKind::StagedNetworkPolicy | CalicoPolicyKind::StagedGlobalNetworkPolicy
        )
    }
}

/// A Calico NetworkPolicy or GlobalNetworkPolicy (or a staged one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalicoPolicy {
    /// `projectcalico.org/v3`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// Which kind.
    pub kind: CalicoPolicyKind,
    /// Name, and namespace for namespaced kinds.
    pub metadata: ObjectMeta,
    /// What it selects and its rules.
    #[serde(default)]
    pub spec: PolicySpec,
}

/// Whether a policy applies to traffic into or out of its endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyType {
    /// Traffic arriving at the endpoint.
    Ingress,
    /// Traffic leaving the endpoint.
    Egress,
}

/// What a rule does with the traffic it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Let it through; no later rule or tier is looked at.
    Allow,
    /// Drop it; no later rule or tier is looked at.
    Deny,
    /// Go on with the next tier, skipping the rest of this one.
    Pass,
    /// Log it and go on with the next rule.
    Log,
}

/// The spec of a Calico policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// The tier (default: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Lower orders apply first; none is last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<f64>,
    /// The endpoints it applies to (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Only endpoints whose service account matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_selector: Option<String>,
    /// Global policies: only endpoints of namespaces that match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    /// Directions it applies to; defaulted from the rules when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<PolicyType>>,
    /// Rules for traffic arriving, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Rules for traffic leaving, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Staged policies: what enforcing it would do (`Set`, `Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_action: Option<String>,
    /// Global policies: also for traffic forwarded by hosts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply_on_forward: bool,
    /// Global policies: before DNAT, on hosts.
    #[serde(default, rename = "preDNAT", skip_serializing_if = "is_false")]
    pub pre_dnat: bool,
    /// Global policies: untracked, on hosts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub do_not_track: bool,
    /// Hints for Calico's dataplane.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<String>,
}

/// A protocol as YAML writes it: a name or a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProtocolText {
    /// A number, 1–255.
    Number(u8),
    /// A name: `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, `UDPLite`.
    Name(String),
}

impl ProtocolText {
    /// The protocol it names, if any.
    pub fn parse(&self) -> Option<Protocol> {
        match self {
            ProtocolText::Number(n) => Protocol::parse(&n.to_string()),
            ProtocolText::Name(name) => Protocol::parse(name),
        }
    }
}

impl From<Protocol> for ProtocolText {
    fn from(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Number(n) => ProtocolText::Number(n),
            other => ProtocolText::Name(other.to_string()),
        }
    }
}

/// One rule of a policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// What it does with what it matches.
    pub action: Action,
    /// Only this protocol (required when ports are named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolText>,
    /// Any protocol but this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<ProtocolText>,
    /// Only IPv4 (4) or IPv6 (6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    /// Where the traffic comes from.
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub source: EntityRule,
    /// Where it goes.
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub destination: EntityRule,
    /// ICMP type and code (kept as given; not evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<serde_json::Value>,
    /// ICMP type and code not matched (kept as given; not evaluated).
    #[serde(default, rename = "notICMP", skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<serde_json::Value>,
    /// HTTP matches of Calico's application layer (kept; refused by the
    /// evaluator, which sees connections, not requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<serde_json::Value>,
    /// Annotations of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// One side of a rule: which endpoints, nets and ports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityRule {
    /// Addresses in any of these networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
    /// Addresses in none of these networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<String>,
    /// Endpoints (and network sets) whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Endpoints whose labels do not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_selector: Option<String>,
    /// Endpoints in namespaces whose labels match (default: the policy's
    /// own namespace for a namespaced policy, any for a global one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    /// Ports (numbers, `from:to` ranges, names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortText>,
    /// Ports not matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<PortText>,
    /// Pods running as these service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountMatch>,
    /// A Kubernetes Service's endpoints (kept; refused by the evaluator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<serde_json::Value>,
}

/// Service accounts a rule matches: by name, by labels, or both (and).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountMatch {
    /// Their names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// A selector over the service accounts' labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

impl EntityRule {
    /// Whether it matches everything (no field set).
    pub fn is_empty(&self) -> bool {
        *self == EntityRule::default()
    }

    /// Endpoints matching `selector`.
    pub fn selector(mut self, selector: impl Into<String>) -> Self {
        self.selector = Some(selector.into());
        self
    }

    /// In namespaces matching `selector`.
    pub fn namespace_selector(mut self, selector: impl Into<String>) -> Self {
        self.namespace_selector = Some(selector.into());
        self
    }

    /// Addresses in these networks.
    pub fn nets<S: Into<String>>(mut self, nets: impl IntoIterator<Item = S>) -> Self {
        self.nets.extend(nets.into_iter().map(Into::into));
        self
    }

    /// Addresses outside these networks.
    pub fn not_nets<S: Into<String>>(mut self, nets: impl IntoIterator<Item = S>) -> Self {
        self.not_nets.extend(nets.into_iter().map(Into::into));
        self
    }

    /// On these ports.
    pub fn ports<P: Into<PortText>>(mut self, ports: impl IntoIterator<Item = P>) -> Self {
        self.ports.extend(ports.into_iter().map(Into::into));
        self
    }
}

impl Rule {
    /// A rule with `action` that matches all traffic until narrowed.
    pub fn new(action: Action) -> Rule {
        Rule {
            action,
            protocol: None,
            not_protocol: None,
            ip_version: None,
            source: EntityRule::default(),
            destination: EntityRule::default(),
            icmp: None,
            not_icmp: None,
            http: None,
            metadata: None,
        }
    }

    /// An `Allow` rule.
    pub fn allow() -> Rule {
        Rule::new(Action::Allow)
    }

    /// A `Deny` rule.
    pub fn deny() -> Rule {
        Rule::new(Action::Deny)
    }

    /// A `Pass` rule.
    pub fn pass() -> Rule {
        Rule::new(Action::Pass)
    }

    /// Only `protocol`.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Traffic from `source`.
    pub fn from(mut self, source: EntityRule) -> Self {
        self.source = source;
        self
    }

    /// Traffic to `destination`.
    pub fn to(mut self, destination: EntityRule) -> Self {
        self.destination = destination;
        self
    }
}

impl CalicoPolicy {
    fn new(kind: CalicoPolicyKind, namespace: Option<&str>, name: &str) -> CalicoPolicy {
        CalicoPolicy {
            api_version: api_version(),
            kind,
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: namespace.map(str::to_owned),
                ..ObjectMeta::default()
            },
            spec: PolicySpec::default(),
        }
    }

    /// A NetworkPolicy of `namespace`.
    pub fn namespaced(namespace: &str, name: &str) -> CalicoPolicy {
        CalicoPolicy::new(CalicoPolicyKind::NetworkPolicy, Some(namespace), name)
    }

    /// A GlobalNetworkPolicy.
    pub fn global(name: &str) -> CalicoPolicy {
        CalicoPolicy::new(CalicoPolicyKind::GlobalNetworkPolicy, None, name)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    /// In `tier`.
    pub fn tier(mut self, tier: impl Into<String>) -> Self {
        self.spec.tier = Some(tier.into());
        self
    }

    /// With `order`.
    pub fn order(mut self, order: f64) -> Self {
        self.spec.order = Some(order);
        self
    }

    /// Applying to endpoints that match `selector`.
    pub fn selector(mut self, selector: impl Into<String>) -> Self {
        self.spec.selector = Some(selector.into());
        self
    }

    /// For these directions.
    pub fn types(mut self, types: impl IntoIterator<Item = PolicyType>) -> Self {
        self.spec.types = Some(types.into_iter().collect());
        self
    }

    /// With one more ingress rule.
    pub fn ingress(mut self, rule: Rule) -> Self {
        self.spec.ingress.push(rule);
        self
    }

    /// With one more egress rule.
    pub fn egress(mut self, rule: Rule) -> Self {
        self.spec.egress.push(rule);
        self
    }
}

/// Which of Calico's network set kinds a [`NetworkSet`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkSetKind {
    /// Seen by the policies of its namespace.
    NetworkSet,
    /// Seen by every policy.
    GlobalNetworkSet,
}

/// Labelled networks outside the cluster, which rule selectors match as
/// they match endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSet {
    /// `projectcalico.org/v3`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// Which kind.
    pub kind: NetworkSetKind,
    /// Name, labels, and namespace for a NetworkSet.
    pub metadata: ObjectMeta,
    /// Its networks.
    #[serde(default)]
    pub spec: NetworkSetSpec,
}

/// The networks of a set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSetSpec {
    /// In CIDR notation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
}

/// An ordered group of policies: tiers apply in order, and a `Pass` moves
/// on to the next one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// `projectcalico.org/v3`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// `Tier`.
    pub kind: TierKind,
    /// Its name.
    pub metadata: ObjectMeta,
    /// Its order and default action.
    #[serde(default)]
    pub spec: TierSpec,
}

/// The kind of a [`Tier`]: only `Tier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TierKind {
    /// A tier.
    Tier,
}

/// A tier's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierSpec {
    /// Lower orders apply first; none is last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<f64>,
    /// What traffic that a policy of the tier selected, but no rule
    /// matched, gets: `Deny` (the default) or `Pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
}

impl Tier {
    /// A tier named `name` at `order`.
    pub fn new(name: &str, order: f64) -> Tier {
        Tier {
            api_version: api_version(),
            kind: TierKind::Tier,
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: TierSpec {
                order: Some(order),
                default_action: None,
            },
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_serializes_as_its_crd_reads_it() {
        let policy = CalicoPolicy::global("moon.block-metadata")
            .tier("moon")
            .order(10.0)
            .types([PolicyType::Egress])
            .egress(Rule::deny().to(EntityRule::default().nets(["169.254.169.254/32"])))
            .egress(Rule::pass());
        let value = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "apiVersion": "projectcalico.org/v3",
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": "moon.block-metadata"},
                "spec": {
                    "tier": "moon",
                    "order": 10.0,
                    "types": ["Egress"],
                    "egress": [
                        {"action": "Deny", "destination": {"nets": ["169.254.169.254/32"]}},
                        {"action": "Pass"}
                    ]
                }
            })
        );
        let back: CalicoPolicy = serde_json::from_value(value).unwrap();
        assert_eq!(back, policy);
    }

    #[test]
    fn ports_and_protocols_read_as_numbers_or_text() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "action": "Allow", "protocol": 17,
            "destination": {"ports": [53, "8000:8080", "metrics"]}
        }))
        .unwrap();
        assert_eq!(rule.protocol.unwrap().parse(), Some(Protocol::Udp));
        assert_eq!(
            rule.destination.ports,
            vec![
                PortText::Number(53),
                PortText::Text("8000:8080".into()),
                PortText::Text("metrics".into())
            ]
        );
    }
}
