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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::calico::{Action, PolicyType};
use super::cluster::{Cluster, EndpointLabels, Namespace, Pod};
use super::compile::{CompiledPolicies, CompiledPolicy, CompiledRule, Entity, NamespaceScope};
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
pub(crate) struct PodSet(Vec<u64>);

impl PodSet {
    pub(crate) fn new(len: usize) -> PodSet {
        PodSet(vec![0; len.div_ceil(64)])
    }

    /// Every pod of `len`.
    pub(crate) fn full(len: usize) -> PodSet {
        let mut set = PodSet(vec![u64::MAX; len.div_ceil(64)]);
        if len % 64 != 0
            && let Some(last) = set.0.last_mut()
        {
            *last = (1 << (len % 64)) - 1;
        }
        set
    }

    pub(crate) fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Keeps only what `other` holds too.
    pub(crate) fn intersect(&mut self, other: &PodSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    /// Adds what `other` holds.
    pub(crate) fn union(&mut self, other: &PodSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    /// Takes out what `other` holds.
    pub(crate) fn subtract(&mut self, other: &PodSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= !b;
        }
    }

    /// The pods in it, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            (0..64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
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
    pub(crate) selecting: [Vec<Vec<(usize, usize)>>; 2],
    /// Per entity id: the pods it matches (ports aside).
    pub(crate) entity_pods: Vec<PodSet>,
    /// Per tier, per policy, per direction: the id of the source entity
    /// of its first rule. Rule `r`'s source is that plus `2 * r`, its
    /// destination the one after (a plain offset: checks look it up for
    /// every rule they walk, and hashing a key cost more than the walk).
    pub(crate) entity_base: Vec<Vec<[usize; 2]>>,
}

pub(crate) fn direction_index(direction: PolicyType) -> usize {
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

    /// Whether `from` may reach `to`: the answer of [`check`](Self::check)
    /// without its explanation, which a matrix does not need (nothing is
    /// allocated).
    pub fn allowed(&self, from: Peer, to: Peer, traffic: Traffic) -> bool {
        self.side_allows(from, PolicyType::Egress, from, to, traffic, true)
            && self.side_allows(to, PolicyType::Ingress, from, to, traffic, true)
    }

    /// [`allowed`](Self::allowed), rule by rule with no index.
    pub fn allowed_naive(&self, from: Peer, to: Peer, traffic: Traffic) -> bool {
        self.side_allows(from, PolicyType::Egress, from, to, traffic, false)
            && self.side_allows(to, PolicyType::Ingress, from, to, traffic, false)
    }

    fn side_allows(
        &self,
        side: Peer,
        direction: PolicyType,
        from: Peer,
        to: Peer,
        traffic: Traffic,
        indexed: bool,
    ) -> bool {
        match side {
            Peer::Pod(pod) => {
                let selecting = self.selecting_for(pod, direction, indexed);
                self.decide(&selecting, direction, from, to, traffic, indexed)
                    .allowed()
            }
            Peer::Address(_) => true,
        }
    }

    fn verdict(&self, from: Peer, to: Peer, traffic: Traffic, indexed: bool) -> Verdict {
        let decision = |side: Peer, direction: PolicyType| match side {
            Peer::Pod(pod) => {
                let selecting = self.selecting_for(pod, direction, indexed);
                let outcome = self.decide(&selecting, direction, from, to, traffic, indexed);
                self.explain(&selecting, outcome)
            }
            Peer::Address(_) => not_a_pod(),
        };
        let egress = decision(from, PolicyType::Egress);
        let ingress = decision(to, PolicyType::Ingress);
        Verdict {
            allowed: egress.allowed && ingress.allowed,
            egress,
            ingress,
        }
    }

    /// Walks the tiers of the policies that select an endpoint
    /// (`selecting`, in order) and returns what decided, as positions in
    /// `selecting`: nothing is allocated, so that a matrix of a million
    /// cells costs the walk alone.
    fn decide(
        &self,
        selecting: &[(usize, usize)],
        direction: PolicyType,
        from: Peer,
        to: Peer,
        traffic: Traffic,
        indexed: bool,
    ) -> Outcome {
        let d = direction_index(direction);
        let mut at = 0;
        while at < selecting.len() {
            let end = tier_end(selecting, at);
            let tier = &self.policies.tiers[selecting[at].0];
            let mut passed = false;
            'policies: for (k, &(t, p)) in selecting[at..end].iter().enumerate() {
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
                            passed = true;
                            break 'policies;
                        }
                        action => {
                            return Outcome::Rule {
                                at: at + k,
                                rule: rule.index,
                                action,
                            };
                        }
                    }
                }
            }
            if passed || tier.default_action == Action::Pass {
                at = end;
                continue;
            }
            return Outcome::EndOfTier { at, end };
        }
        if selecting.is_empty() {
            Outcome::NotIsolated
        } else {
            Outcome::PassedToProfile
        }
    }

    /// An outcome in full: the policies and tiers it names, and the tiers
    /// that passed the traffic on (every selecting tier before the one that
    /// decided).
    fn explain(&self, selecting: &[(usize, usize)], outcome: Outcome) -> Decision {
        let tier_name = |at: usize| self.policies.tiers[selecting[at].0].name.clone();
        let passed_before = |at: usize| {
            let mut passed: Vec<String> = Vec::new();
            for &(t, _) in &selecting[..at] {
                let name = &self.policies.tiers[t].name;
                if passed.last() != Some(name) {
                    passed.push(name.clone());
                }
            }
            passed
        };
        match outcome {
            Outcome::NotIsolated => Decision {
                allowed: true,
                reason: Reason::NotIsolated,
                passed: Vec::new(),
            },
            Outcome::PassedToProfile => Decision {
                allowed: true,
                reason: Reason::PassedToProfile,
                passed: passed_before(selecting.len()),
            },
            Outcome::Rule { at, rule, action } => {
                let (t, p) = selecting[at];
                let policy = &self.policies.tiers[t].policies[p];
                let first_of_tier = selecting[..at]
                    .iter()
                    .rposition(|&(other, _)| other != t)
                    .map_or(0, |i| i + 1);
                Decision {
                    allowed: action == Action::Allow,
                    reason: Reason::Rule {
                        policy: policy.origin.clone(),
                        tier: tier_name(at),
                        rule,
                        action,
                    },
                    passed: passed_before(first_of_tier),
                }
            }
            Outcome::EndOfTier { at, end } => {
                let (t, _) = selecting[at];
                Decision {
                    allowed: false,
                    reason: Reason::EndOfTier {
                        tier: tier_name(at),
                        policies: selecting[at..end]
                            .iter()
                            .map(|&(_, p)| self.policies.tiers[t].policies[p].origin.clone())
                            .collect(),
                    },
                    passed: passed_before(at),
                }
            }
        }
    }

    /// The (tier, policy) pairs that select `pod` in `direction`, in
    /// order: from the index, or worked out anew.
    fn selecting_for(
        &self,
        pod: usize,
        direction: PolicyType,
        indexed: bool,
    ) -> Cow<'_, [(usize, usize)]> {
        if indexed {
            Cow::Borrowed(&self.selecting[direction_index(direction)][pod])
        } else {
            Cow::Owned(self.selecting_naive(pod, direction))
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

    pub(crate) fn rule_matches(
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

    pub(crate) fn ports_match(&self, entity: &Entity, to: Peer, traffic: Traffic) -> bool {
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

/// Where the tier of `selecting[at]` ends in `selecting` (the pairs of a
/// tier are next to each other, tiers in order).
pub(crate) fn tier_end(selecting: &[(usize, usize)], at: usize) -> usize {
    let tier = selecting[at].0;
    selecting[at..]
        .iter()
        .position(|&(t, _)| t != tier)
        .map_or(selecting.len(), |n| at + n)
}

/// What decided a direction, as positions in the selecting policies.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    NotIsolated,
    PassedToProfile,
    /// The rule `rule` (its index as the policy writes it) of the policy
    /// at `selecting[at]`.
    Rule {
        at: usize,
        rule: usize,
        action: Action,
    },
    /// The tier of `selecting[at..end]` selected the endpoint and matched
    /// nothing.
    EndOfTier {
        at: usize,
        end: usize,
    },
}

impl Outcome {
    fn allowed(self) -> bool {
        match self {
            Outcome::NotIsolated | Outcome::PassedToProfile => true,
            Outcome::Rule { action, .. } => action == Action::Allow,
            Outcome::EndOfTier { .. } => false,
        }
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
