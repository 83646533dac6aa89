//! From policies as the API stores them (Kubernetes NetworkPolicies, Calico
//! policies, network sets, tiers) to one parsed, ordered model that the
//! evaluator and the nftables compiler read.
//!
//! Kubernetes policies become what Calico makes of them: policies of the
//! `default` tier at order 1000, one rule per peer and port. Every selector,
//! net and port is parsed here, once; an error names the object, the field
//! path and the column.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use super::calico::{
    Action, CalicoPolicy, EntityRule, NetworkSet, NetworkSetKind, PolicyType, Rule, Tier,
};
use super::net::{Cidr, PortMatch, PortText, Protocol};
use super::selector::Selector;
use crate::error::{Error, Result};

/// The tier that policies without one, and Kubernetes policies, are in.
pub const DEFAULT_TIER: &str = "default";
/// The default tier's order, as Calico gives it.
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
/// The order Calico gives Kubernetes NetworkPolicies in the default tier.
pub const KUBERNETES_POLICY_ORDER: f64 = 1000.0;

/// Policies to evaluate together.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySet {
    /// Kubernetes NetworkPolicies.
    #[serde(default)]
    pub kubernetes: Vec<NetworkPolicy>,
    /// Calico policies of every kind (staged ones are ignored).
    #[serde(default)]
    pub calico: Vec<CalicoPolicy>,
    /// Calico network sets.
    #[serde(default)]
    pub network_sets: Vec<NetworkSet>,
    /// Calico tiers (`default` exists without being given).
    #[serde(default)]
    pub tiers: Vec<Tier>,
}

impl PolicySet {
    /// Adds what one document of a YAML or JSON stream holds: an object, a
    /// `List` of them (as `kubectl get -o yaml` prints), an array of them,
    /// or nothing. `index` counts the objects read so far, for errors.
    pub fn push_document(&mut self, document: serde_json::Value, index: &mut usize) -> Result<()> {
        let objects = match document {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(items) => items,
            serde_json::Value::Object(mut map)
                if map.get("kind").and_then(|k| k.as_str()) == Some("List") =>
            {
                match map.remove("items") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => Vec::new(),
                }
            }
            other => vec![other],
        };
        for object in objects {
            self.push_object(object, *index)?;
            *index += 1;
        }
        Ok(())
    }

    /// Adds one object, told apart by `apiVersion` and `kind`; `index`
    /// names it in errors (`documents[3]`). Unknown keys are refused.
    pub fn push_object(&mut self, object: serde_json::Value, index: usize) -> Result<()> {
        let field = |f: &str| format!("documents[{index}].{f}");
        let text = |key: &str| object.get(key).and_then(|v| v.as_str()).unwrap_or("");
        let (api_version, kind) = (text("apiVersion").to_owned(), text("kind").to_owned());
        let invalid = |f: &str, message: String| Error::InvalidPolicy {
            field: field(f),
            column: None,
            message,
        };
        let read = |e: serde_path_to_error::Error<serde_json::Error>| {
            invalid(&e.path().to_string(), e.inner().to_string())
        };
        let given = object.clone();
        let parsed = match (api_version.as_str(), kind.as_str()) {
            ("networking.k8s.io/v1", "NetworkPolicy") => {
                Parsed::Kubernetes(serde_path_to_error::deserialize(object).map_err(read)?)
            }
            (super::calico::API_VERSION, "Tier") => {
                Parsed::Tier(serde_path_to_error::deserialize(object).map_err(read)?)
            }
            (super::calico::API_VERSION, "NetworkSet" | "GlobalNetworkSet") => {
                Parsed::NetworkSet(serde_path_to_error::deserialize(object).map_err(read)?)
            }
            (
                super::calico::API_VERSION,
                "NetworkPolicy"
                | "GlobalNetworkPolicy"
                | "StagedNetworkPolicy"
                | "StagedGlobalNetworkPolicy",
            ) => Parsed::Calico(serde_path_to_error::deserialize(object).map_err(read)?),
            _ => {
                return Err(invalid(
                    "kind",
                    format!(
                        "{api_version} {kind} is not a policy: expected networking.k8s.io/v1 \
                         NetworkPolicy, or projectcalico.org/v3 NetworkPolicy, \
                         GlobalNetworkPolicy, NetworkSet, GlobalNetworkSet or Tier"
                    ),
                ));
            }
        };
        // The API's types skip keys they do not know: a key that does not
        // come back when the object is written out again is a typo.
        let written = match &parsed {
            Parsed::Kubernetes(p) => serde_json::to_value(p),
            Parsed::Calico(p) => serde_json::to_value(p),
            Parsed::NetworkSet(s) => serde_json::to_value(s),
            Parsed::Tier(t) => serde_json::to_value(t),
        }
        .map_err(|e| invalid("", e.to_string()))?;
        if let Some(path) = unknown_key(&given, &written, String::new()) {
            return Err(invalid(&path, format!("unknown field in a {kind}")));
        }
        match parsed {
            Parsed::Kubernetes(p) => self.kubernetes.push(p),
            Parsed::Calico(p) => self.calico.push(p),
            Parsed::NetworkSet(s) => self.network_sets.push(s),
            Parsed::Tier(t) => self.tiers.push(t),
        }
        Ok(())
    }
}

/// One object of a [`PolicySet`], read.
enum Parsed {
    Kubernetes(NetworkPolicy),
    Calico(CalicoPolicy),
    NetworkSet(NetworkSet),
    Tier(Tier),
}

/// The path of the first key of `given` (not null) that `written` lacks.
fn unknown_key(
    given: &serde_json::Value,
    written: &serde_json::Value,
    at: String,
) -> Option<String> {
    use serde_json::Value;
    match (given, written) {
        (Value::Object(given), Value::Object(written)) => given.iter().find_map(|(key, value)| {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match written.get(key) {
                None if !value.is_null() => Some(path),
                None => None,
                Some(w) => unknown_key(value, w, path),
            }
        }),
        (Value::Array(given), Value::Array(written)) => given
            .iter()
            .zip(written)
            .enumerate()
            .find_map(|(i, (g, w))| unknown_key(g, w, format!("{at}[{i}]"))),
        _ => None,
    }
}

/// Which policy a decision comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// Its kind.
    pub kind: PolicyKind,
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// The kinds of policy the evaluator reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyKind {
    /// `networking.k8s.io/v1` NetworkPolicy.
    KubernetesNetworkPolicy,
    /// `projectcalico.org/v3` NetworkPolicy.
    CalicoNetworkPolicy,
    /// `projectcalico.org/v3` GlobalNetworkPolicy.
    CalicoGlobalNetworkPolicy,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PolicyKind::KubernetesNetworkPolicy => "NetworkPolicy",
            PolicyKind::CalicoNetworkPolicy => "Calico NetworkPolicy",
            PolicyKind::CalicoGlobalNetworkPolicy => "Calico GlobalNetworkPolicy",
        };
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

/// Which namespaces a rule's selector reaches into.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NamespaceScope {
    /// Every namespace (and global network sets).
    Any,
    /// The policy's own namespace.
    Own(String),
    /// Namespaces whose labels match.
    Matching(Selector),
}

/// One side of a rule, parsed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entity {
    pub(crate) nets: Vec<Cidr>,
    pub(crate) not_nets: Vec<Cidr>,
    /// Endpoints must match (with `scope`); None with `scoped` false: no
    /// constraint on endpoints at all.
    pub(crate) selector: Option<Selector>,
    pub(crate) not_selector: Option<Selector>,
    pub(crate) scope: NamespaceScope,
    /// Whether the rule constrains endpoints at all (a selector, a
    /// namespace selector or service accounts): nets alone do not.
    pub(crate) scoped: bool,
    /// Kubernetes peers match pods only, never network sets.
    pub(crate) pods_only: bool,
    pub(crate) ports: Vec<PortMatch>,
    pub(crate) not_ports: Vec<PortMatch>,
    pub(crate) service_account_names: Vec<String>,
    pub(crate) service_account_selector: Option<Selector>,
}

/// A rule, parsed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CompiledRule {
    /// The rule's index in the policy's list as written.
    pub(crate) index: usize,
    pub(crate) action: Action,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) not_protocol: Option<Protocol>,
    pub(crate) ip_version: Option<u8>,
    pub(crate) source: Entity,
    pub(crate) destination: Entity,
}

/// A policy, parsed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CompiledPolicy {
    pub(crate) origin: PolicyRef,
    pub(crate) order: Option<f64>,
    /// Namespaced policies apply to endpoints of this namespace only.
    pub(crate) namespace: Option<String>,
    pub(crate) selector: Selector,
    pub(crate) service_account_selector: Option<Selector>,
    pub(crate) namespace_selector: Option<Selector>,
    /// None: the policy does not apply in that direction.
    pub(crate) ingress: Option<Vec<CompiledRule>>,
    pub(crate) egress: Option<Vec<CompiledRule>>,
}

impl CompiledPolicy {
    pub(crate) fn rules(&self, direction: PolicyType) -> Option<&[CompiledRule]> {
        match direction {
            PolicyType::Ingress => self.ingress.as_deref(),
            PolicyType::Egress => self.egress.as_deref(),
        }
    }
}

/// A tier with its policies in the order they apply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CompiledTier {
    pub(crate) name: String,
    pub(crate) order: Option<f64>,
    /// `Deny` or `Pass`.
    pub(crate) default_action: Action,
    pub(crate) policies: Vec<CompiledPolicy>,
}

/// A network set, parsed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CompiledNetworkSet {
    pub(crate) name: String,
    /// None for a GlobalNetworkSet.
    pub(crate) namespace: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) nets: Vec<Cidr>,
}

/// Policies parsed and ordered: tiers in order, policies in order.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledPolicies {
    pub(crate) tiers: Vec<CompiledTier>,
    pub(crate) network_sets: Vec<CompiledNetworkSet>,
    /// Staged policies seen and left out.
    pub(crate) staged: usize,
}

impl CompiledPolicies {
    /// How many policies apply (staged ones left out).
    pub fn policy_count(&self) -> usize {
        self.tiers.iter().map(|t| t.policies.len()).sum()
    }

    /// How many staged policies were left out.
    pub fn staged_count(&self) -> usize {
        self.staged
    }
}

/// Orders of tiers and policies: lower first, none last, then by name.
fn by_order(a: (Option<f64>, &str), b: (Option<f64>, &str)) -> std::cmp::Ordering {
    let key = |o: Option<f64>| o.unwrap_or(f64::INFINITY);
    key(a.0).total_cmp(&key(b.0)).then_with(|| a.1.cmp(b.1))
}

/// Parses and orders `set`.
pub fn compile(set: &PolicySet) -> Result<CompiledPolicies> {
    let mut tiers: BTreeMap<String, CompiledTier> = BTreeMap::new();
    tiers.insert(
        DEFAULT_TIER.to_owned(),
        CompiledTier {
            name: DEFAULT_TIER.to_owned(),
            order: Some(DEFAULT_TIER_ORDER),
            default_action: Action::Deny,
            policies: Vec::new(),
        },
    );
    for (i, tier) in set.tiers.iter().enumerate() {
        let at = Path::new(format!("tiers[{i}] ({})", tier.name()));
        if tier.name().is_empty() {
            return Err(at.field("metadata.name").error("must be set"));
        }
        let default_action = match tier.spec.default_action {
            None | Some(Action::Deny) => Action::Deny,
            Some(Action::Pass) => Action::Pass,
            Some(other) => {
                return Err(at
                    .field("spec.defaultAction")
                    .error(&format!("{other:?} is not Deny or Pass")));
            }
        };
        let entry = tiers
            .entry(tier.name().to_owned())
            .or_insert_with(|| CompiledTier {
                name: tier.name().to_owned(),
                order: None,
                default_action: Action::Deny,
                policies: Vec::new(),
            });
        entry.order = tier.spec.order;
        entry.default_action = default_action;
    }

    let mut staged = 0;
    for policy in &set.kubernetes {
        let compiled = compile_kubernetes(policy)?;
        tiers
            .get_mut(DEFAULT_TIER)
            .expect("the default tier exists")
            .policies
            .push(compiled);
    }
    for policy in &set.calico {
        if policy.kind.is_staged() {
            staged += 1;
            continue;
        }
        let (tier, compiled) = compile_calico(policy)?;
        match tiers.get_mut(&tier) {
            Some(entry) => entry.policies.push(compiled),
            None => {
                return Err(Path::new(compiled.origin.to_string())
                    .field("spec.tier")
                    .error(&format!("tier {tier:?} is not defined")));
            }
        }
    }
    let mut tiers: Vec<CompiledTier> = tiers.into_values().collect();
    tiers.sort_by(|a, b| by_order((a.order, &a.name), (b.order, &b.name)));
    for tier in &mut tiers {
        tier.policies.sort_by(|a, b| {
            by_order((a.order, &a.origin.name), (b.order, &b.origin.name))
                .then_with(|| a.origin.cmp(&b.origin))
        });
    }

    let mut network_sets = Vec::new();
    for (i, set) in set.network_sets.iter().enumerate() {
        let name = set.metadata.name.clone().unwrap_or_default();
        let at = Path::new(format!("networkSets[{i}] ({name})"));
        let nets = set
            .spec
            .nets
            .iter()
            .enumerate()
            .map(|(j, net)| cidr(&at.field(&format!("spec.nets[{j}]")), net))
            .collect::<Result<_>>()?;
        network_sets.push(CompiledNetworkSet {
            name,
            namespace: match set.kind {
                NetworkSetKind::NetworkSet => {
                    Some(set.metadata.namespace.clone().ok_or_else(|| {
                        at.field("metadata.namespace")
                            .error("a NetworkSet needs one")
                    })?)
                }
                NetworkSetKind::GlobalNetworkSet => None,
            },
            labels: set.metadata.labels.clone().unwrap_or_default(),
            nets,
        });
    }
    Ok(CompiledPolicies {
        tiers,
        network_sets,
        staged,
    })
}

/// A field path under construction, for errors.
#[derive(Clone)]
struct Path(String);

impl Path {
    fn new(object: String) -> Path {
        Path(format!("{object}: "))
    }

    fn field(&self, field: &str) -> Path {
        if self.0.ends_with(": ") {
            Path(format!("{}{field}", self.0))
        } else {
            Path(format!("{}.{field}", self.0))
        }
    }

    fn error(&self, message: &str) -> Error {
        Error::InvalidPolicy {
            field: self.0.clone(),
            column: None,
            message: message.to_owned(),
        }
    }

    fn error_at(&self, column: usize, message: &str) -> Error {
        Error::InvalidPolicy {
            field: self.0.clone(),
            column: Some(column),
            message: message.to_owned(),
        }
    }
}

fn selector(at: &Path, text: &str) -> Result<Selector> {
    Selector::parse(text).map_err(|e| at.error_at(e.column, &e.message))
}

fn optional_selector(at: &Path, text: Option<&String>) -> Result<Option<Selector>> {
    text.map(|t| selector(at, t)).transpose()
}

fn cidr(at: &Path, text: &str) -> Result<Cidr> {
    Cidr::parse(text).map_err(|e| at.error_at(e.column, &e.message))
}

fn ports(at: &Path, ports: &[PortText]) -> Result<Vec<PortMatch>> {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.to_match()
                .map_err(|e| at.field(&format!("[{i}]")).error_at(e.column, &e.message))
        })
        .collect()
}

fn compile_calico(policy: &CalicoPolicy) -> Result<(String, CompiledPolicy)> {
    let global = policy.kind.is_global();
    let origin = PolicyRef {
        kind: if global {
            PolicyKind::CalicoGlobalNetworkPolicy
        } else {
            PolicyKind::CalicoNetworkPolicy
        },
        namespace: policy.metadata.namespace.clone().filter(|_| !global),
        name: policy.name().to_owned(),
    };
    let at = Path::new(origin.to_string());
    if policy.api_version != super::calico::API_VERSION {
        return Err(at.field("apiVersion").error(&format!(
            "{:?} is not {}",
            policy.api_version,
            super::calico::API_VERSION
        )));
    }
    if origin.name.is_empty() {
        return Err(at.field("metadata.name").error("must be set"));
    }
    if !global && origin.namespace.is_none() {
        return Err(at
            .field("metadata.namespace")
            .error("a NetworkPolicy needs one"));
    }
    let spec = &policy.spec;
    if !global && spec.namespace_selector.is_some() {
        return Err(at
            .field("spec.namespaceSelector")
            .error("only a GlobalNetworkPolicy selects namespaces"));
    }
    let types = match &spec.types {
        Some(types) if types.is_empty() => {
            return Err(at
                .field("spec.types")
                .error("must name Ingress, Egress or both"));
        }
        Some(types) => (
            types.contains(&PolicyType::Ingress),
            types.contains(&PolicyType::Egress),
        ),
        // Calico's defaulting: ingress unless there are egress rules only.
        None => (
            spec.egress.is_empty() || !spec.ingress.is_empty(),
            !spec.egress.is_empty(),
        ),
    };
    let own = if global {
        NamespaceScope::Any
    } else {
        NamespaceScope::Own(origin.namespace.clone().unwrap_or_default())
    };
    let rules = |direction: &str, rules: &[Rule]| -> Result<Vec<CompiledRule>> {
        rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                calico_rule(&at.field(&format!("spec.{direction}[{i}]")), i, rule, &own)
            })
            .collect()
    };
    let ingress = rules("ingress", &spec.ingress)?;
    let egress = rules("egress", &spec.egress)?;
    let compiled = CompiledPolicy {
        order: spec.order,
        namespace: origin.namespace.clone(),
        selector: match &spec.selector {
            Some(text) => selector(&at.field("spec.selector"), text)?,
            None => Selector::all(),
        },
        service_account_selector: optional_selector(
            &at.field("spec.serviceAccountSelector"),
            spec.service_account_selector.as_ref(),
        )?,
        namespace_selector: optional_selector(
            &at.field("spec.namespaceSelector"),
            spec.namespace_selector.as_ref(),
        )?,
        ingress: types.0.then_some(ingress),
        egress: types.1.then_some(egress),
        origin,
    };
    Ok((
        spec.tier.clone().unwrap_or_else(|| DEFAULT_TIER.to_owned()),
        compiled,
    ))
}

fn calico_rule(at: &Path, index: usize, rule: &Rule, own: &NamespaceScope) -> Result<CompiledRule> {
    if rule.http.is_some() {
        return Err(at.field("http").error(
            "HTTP matches are not evaluated: the evaluator sees connections, not requests",
        ));
    }
    let protocol = |field: &str, text: &Option<super::calico::ProtocolText>| {
        text.as_ref()
            .map(|t| {
                t.parse()
                    .ok_or_else(|| at.field(field).error(&format!("{t:?} is not a protocol")))
            })
            .transpose()
    };
    let protocol_ = protocol("protocol", &rule.protocol)?;
    let not_protocol = protocol("notProtocol", &rule.not_protocol)?;
    if let Some(v) = rule.ip_version
        && v != 4
        && v != 6
    {
        return Err(at.field("ipVersion").error("must be 4 or 6"));
    }
    let source = calico_entity(&at.field("source"), &rule.source, own)?;
    let destination = calico_entity(&at.field("destination"), &rule.destination, own)?;
    for (side, entity) in [("source", &source), ("destination", &destination)] {
        let has_ports = !entity.ports.is_empty() || !entity.not_ports.is_empty();
        if has_ports && !protocol_.is_some_and(|p| p.has_ports()) {
            return Err(at.field(&format!("{side}.ports")).error(
                "ports need the rule's protocol to be one with ports (TCP, UDP, SCTP, UDPLite)",
            ));
        }
    }
    Ok(CompiledRule {
        index,
        action: rule.action,
        protocol: protocol_,
        not_protocol,
        ip_version: rule.ip_version,
        source,
        destination,
    })
}

fn calico_entity(at: &Path, entity: &EntityRule, own: &NamespaceScope) -> Result<Entity> {
    if entity.services.is_some() {
        return Err(at
            .field("services")
            .error("matches by Service are not evaluated yet: select the Service's pods"));
    }
    let nets = |field: &str, nets: &[String]| -> Result<Vec<Cidr>> {
        nets.iter()
            .enumerate()
            .map(|(i, n)| cidr(&at.field(&format!("{field}[{i}]")), n))
            .collect()
    };
    let namespace_selector = optional_selector(
        &at.field("namespaceSelector"),
        entity.namespace_selector.as_ref(),
    )?;
    let (service_account_names, service_account_selector) = match &entity.service_accounts {
        Some(accounts) => (
            accounts.names.clone(),
            optional_selector(
                &at.field("serviceAccounts.selector"),
                accounts.selector.as_ref(),
            )?,
        ),
        None => (Vec::new(), None),
    };
    let selector_ = optional_selector(&at.field("selector"), entity.selector.as_ref())?;
    let not_selector = optional_selector(&at.field("notSelector"), entity.not_selector.as_ref())?;
    Ok(Entity {
        nets: nets("nets", &entity.nets)?,
        not_nets: nets("notNets", &entity.not_nets)?,
        scoped: selector_.is_some()
            || namespace_selector.is_some()
            || entity.service_accounts.is_some(),
        selector: selector_,
        not_selector,
        scope: match namespace_selector {
            Some(s) => NamespaceScope::Matching(s),
            None => own.clone(),
        },
        pods_only: false,
        ports: ports(&at.field("ports"), &entity.ports)?,
        not_ports: ports(&at.field("notPorts"), &entity.not_ports)?,
        service_account_names,
        service_account_selector,
    })
}

fn any_entity() -> Entity {
    Entity {
        nets: Vec::new(),
        not_nets: Vec::new(),
        selector: None,
        not_selector: None,
        scope: NamespaceScope::Any,
        scoped: false,
        pods_only: false,
        ports: Vec::new(),
        not_ports: Vec::new(),
        service_account_names: Vec::new(),
        service_account_selector: None,
    }
}

fn compile_kubernetes(policy: &NetworkPolicy) -> Result<CompiledPolicy> {
    let origin = PolicyRef {
        kind: PolicyKind::KubernetesNetworkPolicy,
        namespace: policy.metadata.namespace.clone(),
        name: policy.metadata.name.clone().unwrap_or_default(),
    };
    let at = Path::new(origin.to_string());
    if origin.name.is_empty() {
        return Err(at.field("metadata.name").error("must be set"));
    }
    let Some(namespace) = origin.namespace.clone() else {
        return Err(at
            .field("metadata.namespace")
            .error("a NetworkPolicy needs one"));
    };
    let default_spec = NetworkPolicySpec::default();
    let spec = policy.spec.as_ref().unwrap_or(&default_spec);
    let pod_selector = Selector::from_label_selector(
        &spec.pod_selector.clone().unwrap_or_default(),
    )
    .map_err(|(field, message)| {
        at.field(&format!("spec.podSelector.{field}"))
            .error(&message)
    })?;
    let (ingress_on, egress_on) = match &spec.policy_types {
        Some(types) => {
            for (i, t) in types.iter().enumerate() {
                if t != "Ingress" && t != "Egress" {
                    return Err(at
                        .field(&format!("spec.policyTypes[{i}]"))
                        .error(&format!("{t:?} is not Ingress or Egress")));
                }
            }
            (
                types.iter().any(|t| t == "Ingress"),
                types.iter().any(|t| t == "Egress"),
            )
        }
        // Kubernetes: every policy isolates ingress; egress when it has an
        // egress section.
        None => (true, spec.egress.is_some()),
    };
    let own = NamespaceScope::Own(namespace.clone());
    let mut ingress = Vec::new();
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let at = at.field(&format!("spec.ingress[{i}]"));
        kubernetes_rules(
            &at,
            i,
            rule.from.as_deref(),
            "from",
            rule.ports.as_deref(),
            &own,
            PolicyType::Ingress,
            &mut ingress,
        )?;
    }
    let mut egress = Vec::new();
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let at = at.field(&format!("spec.egress[{i}]"));
        kubernetes_rules(
            &at,
            i,
            rule.to.as_deref(),
            "to",
            rule.ports.as_deref(),
            &own,
            PolicyType::Egress,
            &mut egress,
        )?;
    }
    Ok(CompiledPolicy {
        origin,
        order: Some(KUBERNETES_POLICY_ORDER),
        namespace: Some(namespace),
        selector: pod_selector,
        service_account_selector: None,
        namespace_selector: None,
        ingress: ingress_on.then_some(ingress),
        egress: egress_on.then_some(egress),
    })
}

/// One Kubernetes rule: an allow rule per peer (peers are or-ed) and per
/// port (ports are or-ed), as Calico converts them.
#[allow(clippy::too_many_arguments)]
fn kubernetes_rules(
    at: &Path,
    index: usize,
    peers: Option<&[NetworkPolicyPeer]>,
    peers_field: &str,
    ports: Option<&[NetworkPolicyPort]>,
    own: &NamespaceScope,
    direction: PolicyType,
    out: &mut Vec<CompiledRule>,
) -> Result<()> {
    let peer_entities: Vec<Entity> = match peers {
        None | Some([]) => vec![any_entity()],
        Some(peers) => peers
            .iter()
            .enumerate()
            .map(|(j, peer)| kubernetes_peer(&at.field(&format!("{peers_field}[{j}]")), peer, own))
            .collect::<Result<_>>()?,
    };
    let port_matches: Vec<(Protocol, Option<PortMatch>)> = match ports {
        None | Some([]) => Vec::new(),
        Some(ports) => ports
            .iter()
            .enumerate()
            .map(|(j, port)| kubernetes_port(&at.field(&format!("ports[{j}]")), port))
            .collect::<Result<_>>()?,
    };
    for peer in peer_entities {
        let alternatives: Vec<Option<(Protocol, Option<PortMatch>)>> = if port_matches.is_empty() {
            vec![None]
        } else {
            port_matches.iter().cloned().map(Some).collect()
        };
        for alternative in alternatives {
            let (protocol, port) = match alternative {
                Some((protocol, port)) => (Some(protocol), port),
                None => (None, None),
            };
            let mut destination_ports = any_entity();
            destination_ports.ports = port.into_iter().collect();
            let (source, destination) = match direction {
                PolicyType::Ingress => (peer.clone(), destination_ports),
                PolicyType::Egress => {
                    let mut to = peer.clone();
                    to.ports = destination_ports.ports;
                    (any_entity(), to)
                }
            };
            out.push(CompiledRule {
                index,
                action: Action::Allow,
                protocol,
                not_protocol: None,
                ip_version: None,
                source,
                destination,
            });
        }
    }
    Ok(())
}

fn kubernetes_peer(at: &Path, peer: &NetworkPolicyPeer, own: &NamespaceScope) -> Result<Entity> {
    let mut entity = any_entity();
    if let Some(block) = &peer.ip_block {
        if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
            return Err(
                at.error("ipBlock cannot be combined with podSelector or namespaceSelector")
            );
        }
        entity.nets = vec![cidr(&at.field("ipBlock.cidr"), &block.cidr)?];
        entity.not_nets = block
            .except
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, e)| cidr(&at.field(&format!("ipBlock.except[{i}]")), e))
            .collect::<Result<_>>()?;
        return Ok(entity);
    }
    let label_selector =
        |field: &str, s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector| {
            Selector::from_label_selector(s)
                .map_err(|(sub, message)| at.field(&format!("{field}.{sub}")).error(&message))
        };
    if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
        return Err(at.error("a peer needs podSelector, namespaceSelector or ipBlock"));
    }
    entity.scoped = true;
    entity.pods_only = true;
    entity.selector = Some(match &peer.pod_selector {
        Some(s) => label_selector("podSelector", s)?,
        None => Selector::all(),
    });
    entity.scope = match &peer.namespace_selector {
        Some(s) => NamespaceScope::Matching(label_selector("namespaceSelector", s)?),
        None => own.clone(),
    };
    Ok(entity)
}

fn kubernetes_port(at: &Path, port: &NetworkPolicyPort) -> Result<(Protocol, Option<PortMatch>)> {
    let protocol = match port.protocol.as_deref() {
        None | Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        Some(other) => {
            return Err(at
                .field("protocol")
                .error(&format!("{other:?} is not TCP, UDP or SCTP")));
        }
    };
    let matched = match (&port.port, port.end_port) {
        (None, Some(_)) => return Err(at.field("endPort").error("needs port")),
        (None, None) => None,
        (Some(IntOrString::Int(first)), end) => {
            let first = u16::try_from(*first)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| at.field("port").error("must be 1-65535"))?;
            let last = match end {
                None => first,
                Some(end) => u16::try_from(end)
                    .ok()
                    .filter(|e| *e >= first)
                    .ok_or_else(|| {
                        at.field("endPort")
                            .error(&format!("must be {first}-65535, at least port"))
                    })?,
            };
            Some(PortMatch::Range(first, last))
        }
        (Some(IntOrString::String(name)), end) => {
            if end.is_some() {
                return Err(at.field("endPort").error("cannot follow a named port"));
            }
            Some(
                PortMatch::parse(name)
                    .map_err(|e| at.field("port").error_at(e.column, &e.message))?,
            )
        }
    };
    Ok((protocol, matched))
}
