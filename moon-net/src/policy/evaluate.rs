//! The evaluator: may A reach B on protocol P, port N, and which rule says
//! so. Kubernetes and Calico semantics in one walk: tiers in order; in a
//! tier, the policies that select the endpoint, in order; the first rule
//! that matches with Allow or Deny decides, a Pass moves on to the next
//! tier, and a tier whose policies select the endpoint but match nothing
//! denies. An endpoint no policy selects is not isolated. Egress is decided
//! at the source, ingress at the destination; both must allow.
//!
//! Which policies select each pod, and which pods each rule's peers match,
//! are worked out once when the evaluator is built (bitsets over the pods),
//! so a check walks a handful of rules. [`Evaluator::check_naive`] decides
//! rule by rule with no such index: the reference the fast path is
//! measured and tested against.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::calico::{Action, PolicyType};
use super::cluster::{Cluster, EndpointLabels, Namespace, Pod};
use super::compile::{
    CompiledPolicies, CompiledPolicy, CompiledRule, Entity, NamespaceScope, PolicyRef,
};
use super::net::Protocol;
use super::selector::Labels;
use super::verdict::{Decision, Reason, Verdict};
use crate::error::{Error, Result};

/// One end of a connection: a pod of the cluster, or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The pod at this index of the cluster's pods.
    Pod(usize),
    /// An address outside the pods (network sets give it labels).
    Address(IpAddr),
}

/// What is sent: a protocol, and the destination port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Traffic {
    /// The protocol.
    pub protocol: Protocol,
    /// The destination port. Source ports are not known (they are
    /// ephemeral): rules that match source ports never match.
    pub port: u16,
}

impl Traffic {
    /// TCP to `port`.
    pub fn tcp(port: u16) -> Traffic {
        Traffic {
            protocol: Protocol::Tcp,
            port,
        }
    }

    /// UDP to `port`.
    pub fn udp(port: u16) -> Traffic {
        Traffic {
            protocol: Protocol::Udp,
            port,
        }
    }
}

/// Pods as a set, one bit each.
#[derive(Clone, Debug)]
struct PodSet(Vec<u64>);

impl PodSet {
    fn new(len: usize) -> PodSet {
        PodSet(vec![0; len.div_ceil(64)])
    }

    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Policies and the cluster they apply to, indexed for many checks.
#[derive(Debug)]
pub struct Evaluator {
    cluster: Cluster,
    policies: CompiledPolicies,
    namespace_labels: HashMap<String, BTreeMap<String, String>>,
    service_account_labels: HashMap<(String, String), BTreeMap<String, String>>,
    pods_by_key: HashMap<String, usize>,
    /// Per direction (ingress, egress), per pod: the (tier, policy) pairs
    /// that select it, in order.
    selecting: [Vec<Vec<(usize, usize)>>; 2],
    /// Per entity id: the pods it matches (ports aside).
    entity_pods: Vec<PodSet>,
    /// Per tier, per policy, per direction: the id of the source entity
    /// of its first rule. Rule `r`'s source is that plus `2 * r`, its
    /// destination the one after (a plain offset: checks look it up for
    /// every rule they walk, and hashing a key cost more than the walk).
    entity_base: Vec<Vec<[usize; 2]>>,
}

fn direction_index(direction: PolicyType) -> usize {
    match direction {
        PolicyType::Ingress => 0,
        PolicyType::Egress => 1,
    }
}

impl Evaluator {
    /// Indexes `policies` over `cluster`. Pod keys (`namespace/name`) must
    /// be unique.
    pub fn new(mut cluster: Cluster, policies: CompiledPolicies) -> Result<Evaluator> {
        let mut pods_by_key = HashMap::new();
        for (i, pod) in cluster.pods.iter().enumerate() {
            if pods_by_key.insert(pod.key(), i).is_some() {
                return Err(Error::InvalidPolicy {
                    field: format!("pods[{i}]"),
                    column: None,
                    message: format!("pod {} appears twice", pod.key()),
                });
            }
        }
        for pod in &cluster.pods {
            if !cluster.namespaces.iter().any(|n| n.name == pod.namespace) {
                cluster.namespaces.push(Namespace {
                    name: pod.namespace.clone(),
                    labels: BTreeMap::new(),
                });
            }
        }
        let namespace_labels = cluster
            .namespaces
            .iter()
            .map(|n| {
                let mut labels = n.labels.clone();
                labels
                    .entry("kubernetes.io/metadata.name".into())
                    .or_insert_with(|| n.name.clone());
                (n.name.clone(), labels)
            })
            .collect();
        let service_account_labels = cluster
            .service_accounts
            .iter()
            .map(|a| ((a.namespace.clone(), a.name.clone()), a.labels.clone()))
            .collect();
        let mut evaluator = Evaluator {
            cluster,
            policies,
            namespace_labels,
            service_account_labels,
            pods_by_key,
            selecting: [Vec::new(), Vec::new()],
            entity_pods: Vec::new(),
            entity_base: Vec::new(),
        };
        evaluator.index();
        Ok(evaluator)
    }

    fn index(&mut self) {
        let pods = self.cluster.pods.len();
        let mut selecting = [vec![Vec::new(); pods], vec![Vec::new(); pods]];
        let mut entity_pods = Vec::new();
        let mut entity_base = Vec::with_capacity(self.policies.tiers.len());
        for (t, tier) in self.policies.tiers.iter().enumerate() {
            let mut tier_base = Vec::with_capacity(tier.policies.len());
            for (p, policy) in tier.policies.iter().enumerate() {
                let mut base = [0; 2];
                for direction in [PolicyType::Ingress, PolicyType::Egress] {
                    let d = direction_index(direction);
                    base[d] = entity_pods.len();
                    let Some(rules) = policy.rules(direction) else {
                        continue;
                    };
                    for (i, pod) in self.cluster.pods.iter().enumerate() {
                        if self.selects(policy, pod) {
                            selecting[d][i].push((t, p));
                        }
                    }
                    for rule in rules {
                        for entity in [&rule.source, &rule.destination] {
                            let mut set = PodSet::new(pods);
                            for (i, pod) in self.cluster.pods.iter().enumerate() {
                                if self.entity_matches_pod(entity, pod) {
                                    set.insert(i);
                                }
                            }
                            entity_pods.push(set);
                        }
                    }
                }
                tier_base.push(base);
            }
            entity_base.push(tier_base);
        }
        self.selecting = selecting;
        self.entity_pods = entity_pods;
        self.entity_base = entity_base;
    }

    /// The cluster it evaluates over.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// A peer by name: `namespace/pod`, or an IP address.
    pub fn peer(&self, name: &str) -> Result<Peer> {
        if let Some(&i) = self.pods_by_key.get(name) {
            return Ok(Peer::Pod(i));
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Peer::Address(ip));
        }
        Err(Error::InvalidPolicy {
            field: "peer".into(),
            column: None,
            message: format!(
                "{name:?} is neither a pod (namespace/name) of the {} given nor an IP address",
                self.cluster.pods.len()
            ),
        })
    }

    /// A peer's name: `namespace/pod` or its address.
    pub fn peer_name(&self, peer: Peer) -> String {
        match peer {
            Peer::Pod(i) => self.cluster.pods[i].key(),
            Peer::Address(ip) => ip.to_string(),
        }
    }

    /// May `from` reach `to` with `traffic`, and why.
    pub fn check(&self, from: Peer, to: Peer, traffic: Traffic) -> Verdict {
        self.verdict(from, to, traffic, true)
    }

    /// The same answer as [`check`](Self::check), worked out rule by rule
    /// with no index: every selector matched anew.
    pub fn check_naive(&self, from: Peer, to: Peer, traffic: Traffic) -> Verdict {
        self.verdict(from, to, traffic, false)
    }

    /// Whether each of `from` may reach each of `to` (rows: from).
    pub fn matrix(&self, from: &[Peer], to: &[Peer], traffic: Traffic) -> Vec<Vec<bool>> {
        from.iter()
            .map(|&a| {
                to.iter()
                    .map(|&b| self.check(a, b, traffic).allowed)
                    .collect()
            })
            .collect()
    }

    fn verdict(&self, from: Peer, to: Peer, traffic: Traffic, indexed: bool) -> Verdict {
        let egress = match from {
            Peer::Pod(i) => self.decide(i, PolicyType::Egress, from, to, traffic, indexed),
            Peer::Address(_) => not_a_pod(),
        };
        let ingress = match to {
            Peer::Pod(i) => self.decide(i, PolicyType::Ingress, from, to, traffic, indexed),
            Peer::Address(_) => not_a_pod(),
        };
        Verdict {
            allowed: egress.allowed && ingress.allowed,
            egress,
            ingress,
        }
    }

    fn decide(
        &self,
        pod: usize,
        direction: PolicyType,
        from: Peer,
        to: Peer,
        traffic: Traffic,
        indexed: bool,
    ) -> Decision {
        let d = direction_index(direction);
        let naive;
        let selecting: &[(usize, usize)] = if indexed {
            &self.selecting[d][pod]
        } else {
            naive = self.selecting_naive(pod, direction);
            &naive
        };
        let mut passed = Vec::new();
        let mut at = 0;
        while at < selecting.len() {
            let tier_index = selecting[at].0;
            let end = selecting[at..]
                .iter()
                .position(|&(t, _)| t != tier_index)
                .map_or(selecting.len(), |n| at + n);
            let tier = &self.policies.tiers[tier_index];
            let mut verdict = None;
            'policies: for &(t, p) in &selecting[at..end] {
                let policy = &tier.policies[p];
                let rules = policy.rules(direction).unwrap_or_default();
                for (r, rule) in rules.iter().enumerate() {
                    let matched = if indexed {
                        let source = self.entity_base[t][p][d] + 2 * r;
                        let destination = source + 1;
                        self.rule_matches(rule, from, to, traffic, Some((source, destination)))
                    } else {
                        self.rule_matches(rule, from, to, traffic, None)
                    };
                    if !matched {
                        continue;
                    }
                    match rule.action {
                        Action::Log => continue,
                        Action::Pass => {
                            verdict = Some(Action::Pass);
                            break 'policies;
                        }
                        action => {
                            return Decision {
                                allowed: action == Action::Allow,
                                reason: Reason::Rule {
                                    policy: policy.origin.clone(),
                                    tier: tier.name.clone(),
                                    rule: rule.index,
                                    action,
                                },
                                passed,
                            };
                        }
                    }
                }
            }
            if verdict == Some(Action::Pass) || tier.default_action == Action::Pass {
                passed.push(tier.name.clone());
                at = end;
                continue;
            }
            let policies: Vec<PolicyRef> = selecting[at..end]
                .iter()
                .map(|&(_, p)| tier.policies[p].origin.clone())
                .collect();
            return Decision {
                allowed: false,
                reason: Reason::EndOfTier {
                    tier: tier.name.clone(),
                    policies,
                },
                passed,
            };
        }
        Decision {
            allowed: true,
            reason: if selecting.is_empty() {
                Reason::NotIsolated
            } else {
                Reason::PassedToProfile
            },
            passed,
        }
    }

    fn selecting_naive(&self, pod: usize, direction: PolicyType) -> Vec<(usize, usize)> {
        let pod = &self.cluster.pods[pod];
        let mut out = Vec::new();
        for (t, tier) in self.policies.tiers.iter().enumerate() {
            for (p, policy) in tier.policies.iter().enumerate() {
                if policy.rules(direction).is_some() && self.selects(policy, pod) {
                    out.push((t, p));
                }
            }
        }
        out
    }

    fn namespace_labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.namespace_labels.get(namespace)
    }

    fn service_account_labels(&self, pod: &Pod) -> Option<&BTreeMap<String, String>> {
        self.service_account_labels
            .get(&(pod.namespace.clone(), pod.service_account().to_owned()))
    }

    /// Whether `policy` applies to `pod` (in some direction).
    fn selects(&self, policy: &CompiledPolicy, pod: &Pod) -> bool {
        if policy
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != pod.namespace)
        {
            return false;
        }
        if !policy.selector.matches(&EndpointLabels { pod }) {
            return false;
        }
        if let Some(selector) = &policy.service_account_selector
            && !matches_opt(selector, self.service_account_labels(pod))
        {
            return false;
        }
        if let Some(selector) = &policy.namespace_selector
            && !matches_opt(selector, self.namespace_labels(&pod.namespace))
        {
            return false;
        }
        true
    }

    fn rule_matches(
        &self,
        rule: &CompiledRule,
        from: Peer,
        to: Peer,
        traffic: Traffic,
        entity_ids: Option<(usize, usize)>,
    ) -> bool {
        let (source_id, destination_id) = entity_ids.unzip();
        // Indexed, the peers cost two loads and most rules fail on them:
        // ask them first (the rest is a conjunction too, so the answer is
        // the same).
        if entity_ids.is_some()
            && !(self.peer_matches(&rule.source, from, source_id)
                && self.peer_matches(&rule.destination, to, destination_id))
        {
            return false;
        }
        if rule.protocol.is_some_and(|p| p != traffic.protocol)
            || rule.not_protocol.is_some_and(|p| p == traffic.protocol)
        {
            return false;
        }
        if let Some(version) = rule.ip_version {
            let wrong = |peer: Peer| {
                self.ip_of(peer).is_some_and(|ip| {
                    (ip.is_ipv4() && version != 4) || (ip.is_ipv6() && version != 6)
                })
            };
            if wrong(from) || wrong(to) {
                return false;
            }
        }
        // Source ports are not known: a rule that names them never matches.
        if !rule.source.ports.is_empty() {
            return false;
        }
        if !self.ports_match(&rule.destination, to, traffic) {
            return false;
        }
        entity_ids.is_some()
            || (self.peer_matches(&rule.source, from, None)
                && self.peer_matches(&rule.destination, to, None))
    }

    fn ports_match(&self, entity: &Entity, to: Peer, traffic: Traffic) -> bool {
        let named = |name: &str| match to {
            Peer::Pod(i) => self.cluster.pods[i].named_port(name, traffic.protocol),
            Peer::Address(_) => None,
        };
        (entity.ports.is_empty() || entity.ports.iter().any(|p| p.matches(traffic.port, named)))
            && !entity
                .not_ports
                .iter()
                .any(|p| p.matches(traffic.port, named))
    }

    fn ip_of(&self, peer: Peer) -> Option<IpAddr> {
        match peer {
            Peer::Pod(i) => self.cluster.pods[i].ip,
            Peer::Address(ip) => Some(ip),
        }
    }

    fn peer_matches(&self, entity: &Entity, peer: Peer, id: Option<usize>) -> bool {
        match (peer, id) {
            (Peer::Pod(i), Some(id)) => self.entity_pods[id].contains(i),
            (Peer::Pod(i), None) => self.entity_matches_pod(entity, &self.cluster.pods[i]),
            (Peer::Address(ip), _) => self.entity_matches_address(entity, ip),
        }
    }

    fn nets_match(entity: &Entity, ip: Option<IpAddr>) -> bool {
        if !entity.nets.is_empty()
            && !ip.is_some_and(|ip| entity.nets.iter().any(|n| n.contains(ip)))
        {
            return false;
        }
        !ip.is_some_and(|ip| entity.not_nets.iter().any(|n| n.contains(ip)))
    }

    fn in_scope(&self, scope: &NamespaceScope, namespace: Option<&str>) -> bool {
        match (scope, namespace) {
            (NamespaceScope::Any, _) => true,
            (NamespaceScope::Own(own), Some(ns)) => own == ns,
            (NamespaceScope::Own(_), None) => false,
            (NamespaceScope::Matching(selector), Some(ns)) => {
                matches_opt(selector, self.namespace_labels(ns))
            }
            (NamespaceScope::Matching(selector), None) => selector.matches(&GlobalLabels),
        }
    }

    fn entity_matches_pod(&self, entity: &Entity, pod: &Pod) -> bool {
        Self::nets_match(entity, pod.ip)
            && self.scope_matches_pod(entity, pod)
            && !entity
                .not_selector
                .as_ref()
                .is_some_and(|s| s.matches(&EndpointLabels { pod }))
    }

    /// Whether the pod at `pod` is among the endpoints an entity's
    /// selectors, namespaces and service accounts pick (nets aside).
    pub(crate) fn entity_selects_pod(&self, entity: &Entity, pod: usize) -> bool {
        self.scope_matches_pod(entity, &self.cluster.pods[pod])
    }

    /// The nets of the network sets an entity's selector picks.
    pub(crate) fn network_set_nets_selected(&self, entity: &Entity) -> Vec<String> {
        if !entity.scoped
            || !entity.service_account_names.is_empty()
            || entity.service_account_selector.is_some()
        {
            return Vec::new();
        }
        self.policies
            .network_sets
            .iter()
            .filter(|set| {
                self.in_scope(&entity.scope, set.namespace.as_deref())
                    && entity
                        .selector
                        .as_ref()
                        .is_none_or(|s| s.matches(&set.labels))
            })
            .flat_map(|set| {
                set.nets
                    .iter()
                    .filter(|n| n.addr().is_ipv4())
                    .map(ToString::to_string)
            })
            .collect()
    }

    /// The compiled policies.
    pub(crate) fn compiled(&self) -> &CompiledPolicies {
        &self.policies
    }

    /// The tiers that select the pod at `pod` in `direction`, in order,
    /// each with its selecting policies in order.
    pub(crate) fn selecting_tiers(
        &self,
        pod: usize,
        direction: PolicyType,
    ) -> Vec<(usize, Vec<usize>)> {
        let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
        for &(t, p) in &self.selecting[direction_index(direction)][pod] {
            match out.last_mut() {
                Some((tier, policies)) if *tier == t => policies.push(p),
                _ => out.push((t, vec![p])),
            }
        }
        out
    }

    fn scope_matches_pod(&self, entity: &Entity, pod: &Pod) -> bool {
        if entity.scoped {
            if !self.in_scope(&entity.scope, Some(&pod.namespace)) {
                return false;
            }
            if let Some(selector) = &entity.selector
                && !selector.matches(&EndpointLabels { pod })
            {
                return false;
            }
            if !entity.service_account_names.is_empty()
                && !entity
                    .service_account_names
                    .iter()
                    .any(|n| n == pod.service_account())
            {
                return false;
            }
            if let Some(selector) = &entity.service_account_selector
                && !matches_opt(selector, self.service_account_labels(pod))
            {
                return false;
            }
        }
        true
    }

    /// An address matches a selector through the network sets that hold
    /// it: the most specific ones, as Calico picks them.
    fn entity_matches_address(&self, entity: &Entity, ip: IpAddr) -> bool {
        if !Self::nets_match(entity, Some(ip)) {
            return false;
        }
        let sets = self.network_sets_of(ip);
        if entity.scoped {
            if entity.pods_only
                || !entity.service_account_names.is_empty()
                || entity.service_account_selector.is_some()
            {
                return false;
            }
            let any = sets.iter().any(|set| {
                self.in_scope(&entity.scope, set.namespace.as_deref())
                    && entity
                        .selector
                        .as_ref()
                        .is_none_or(|s| s.matches(&set.labels))
            });
            if !any {
                return false;
            }
        }
        !entity
            .not_selector
            .as_ref()
            .is_some_and(|s| sets.iter().any(|set| s.matches(&set.labels)))
    }

    fn network_sets_of(&self, ip: IpAddr) -> Vec<&super::compile::CompiledNetworkSet> {
        let mut best = 0;
        let mut out = Vec::new();
        for set in &self.policies.network_sets {
            let Some(prefix) = set
                .nets
                .iter()
                .filter(|n| n.contains(ip))
                .map(|n| n.prefix())
                .max()
            else {
                continue;
            };
            match usize::from(prefix).cmp(&best) {
                std::cmp::Ordering::Greater => {
                    best = usize::from(prefix);
                    out = vec![set];
                }
                std::cmp::Ordering::Equal => out.push(set),
                std::cmp::Ordering::Less => {}
            }
        }
        out
    }
}

fn not_a_pod() -> Decision {
    Decision {
        allowed: true,
        reason: Reason::NotAPod,
        passed: Vec::new(),
    }
}

/// Labels that may be missing match as empty labels.
fn matches_opt(
    selector: &super::selector::Selector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    match labels {
        Some(labels) => selector.matches(labels),
        None => selector.matches(&BTreeMap::new()),
    }
}

/// What `global()` in a namespace selector matches: things of no namespace.
struct GlobalLabels;

impl Labels for GlobalLabels {
    fn get(&self, _key: &str) -> Option<&str> {
        None
    }

    fn is_global(&self) -> bool {
        true
    }
}
