//! A whole reachability matrix at once: for each source pod, the set of
//! destinations its egress allows, and for each destination, the set of
//! sources its ingress allows, each worked out by walking the pod's rules
//! once over sets of peers (64 to a machine word) instead of once per peer.
//! The walk is the evaluator's, step for step: a rule takes the peers it
//! matches out of those still undecided in the tier (Allow into the
//! allowed, Pass on to the next tier, Deny out), the tier's default takes
//! the rest, and what every tier passed on the profile allows.

use super::calico::{Action, PolicyType};
use super::compile::CompiledRule;
use super::evaluate::{Evaluator, Peer, PodSet, Traffic, direction_index, tier_end};
use super::net::PortMatch;

impl Evaluator {
    /// Whether each of `from` may reach each of `to` (rows: from), the
    /// answers [`allowed`](Self::allowed) gives cell by cell.
    pub fn matrix(&self, from: &[Peer], to: &[Peer], traffic: Traffic) -> Vec<Vec<bool>> {
        let pods = |peers: &[Peer]| -> Option<Vec<usize>> {
            peers
                .iter()
                .map(|p| match p {
                    Peer::Pod(i) => Some(*i),
                    Peer::Address(_) => None,
                })
                .collect()
        };
        let (Some(sources), Some(destinations)) = (pods(from), pods(to)) else {
            // Addresses have no index of their own: cell by cell.
            return from
                .iter()
                .map(|&a| to.iter().map(|&b| self.allowed(a, b, traffic)).collect())
                .collect();
        };
        let n = self.cluster().pods.len();
        let mut egress: Vec<Option<PodSet>> = vec![None; n];
        for &a in &sources {
            if egress[a].is_none() {
                egress[a] = Some(self.allowed_peers(a, PolicyType::Egress, traffic));
            }
        }
        let mut ingress: Vec<Option<PodSet>> = vec![None; n];
        for &b in &destinations {
            if ingress[b].is_none() {
                ingress[b] = Some(self.allowed_peers(b, PolicyType::Ingress, traffic));
            }
        }
        sources
            .iter()
            .map(|&a| {
                let out = egress[a].as_ref().expect("worked out above");
                destinations
                    .iter()
                    .map(|&b| {
                        out.contains(b)
                            && ingress[b].as_ref().expect("worked out above").contains(a)
                    })
                    .collect()
            })
            .collect()
    }

    /// The peers (pods) with which `direction` at `pod` lets `traffic`
    /// through: destinations for egress, sources for ingress.
    fn allowed_peers(&self, pod: usize, direction: PolicyType, traffic: Traffic) -> PodSet {
        let n = self.cluster().pods.len();
        let d = direction_index(direction);
        let selecting = &self.selecting[d][pod];
        let mut allowed = PodSet::new(n);
        // Peers the walk has not decided, entering each tier.
        let mut open = PodSet::full(n);
        let mut at = 0;
        while at < selecting.len() {
            let end = tier_end(selecting, at);
            let tier = &self.compiled().tiers[selecting[at].0];
            let mut undecided = open.clone();
            let mut passed = PodSet::new(n);
            'policies: for &(t, p) in &selecting[at..end] {
                let rules = tier.policies[p].rules(direction).unwrap_or_default();
                for (r, rule) in rules.iter().enumerate() {
                    if undecided.is_empty() {
                        break 'policies;
                    }
                    if rule.action == Action::Log {
                        continue;
                    }
                    let base = self.entity_base[t][p][d] + 2 * r;
                    let mut matched = self.rule_peers(rule, pod, direction, traffic, base);
                    matched.intersect(&undecided);
                    undecided.subtract(&matched);
                    match rule.action {
                        Action::Allow => allowed.union(&matched),
                        Action::Pass => passed.union(&matched),
                        Action::Deny | Action::Log => {}
                    }
                }
            }
            if tier.default_action == Action::Pass {
                passed.union(&undecided);
            }
            open = passed;
            at = end;
        }
        // What every tier passed on (or, with no tier, everything): the
        // profile allows.
        allowed.union(&open);
        allowed
    }

    /// The peers a rule matches at `pod`, whose entities start at `base`.
    fn rule_peers(
        &self,
        rule: &CompiledRule,
        pod: usize,
        direction: PolicyType,
        traffic: Traffic,
        base: usize,
    ) -> PodSet {
        let n = self.cluster().pods.len();
        let (own_id, peer_id) = match direction {
            PolicyType::Egress => (base, base + 1),
            PolicyType::Ingress => (base + 1, base),
        };
        if !self.entity_pods[own_id].contains(pod) {
            return PodSet::new(n);
        }
        let mut peers = self.entity_pods[peer_id].clone();
        // What depends on the peer beyond its entity (named ports at an
        // egress destination, IP versions): the rule asked cell by cell.
        let per_peer = rule.ip_version.is_some()
            || (direction == PolicyType::Egress
                && (rule.destination.ports.iter().any(is_named)
                    || rule.destination.not_ports.iter().any(is_named)));
        if per_peer {
            let ids = Some((base, base + 1));
            for q in peers.clone().iter() {
                let (from, to) = match direction {
                    PolicyType::Egress => (Peer::Pod(pod), Peer::Pod(q)),
                    PolicyType::Ingress => (Peer::Pod(q), Peer::Pod(pod)),
                };
                if !self.rule_matches(rule, from, to, traffic, ids) {
                    peers.remove(q);
                }
            }
            return peers;
        }
        // Otherwise the rest is the same for every peer: asked once. For
        // ingress the destination is this pod (its named ports); for egress
        // the ports are numbers, whoever the destination.
        let destination = Peer::Pod(pod);
        let same_for_all = rule.protocol.is_none_or(|p| p == traffic.protocol)
            && rule.not_protocol.is_none_or(|p| p != traffic.protocol)
            && rule.source.ports.is_empty()
            && self.ports_match(&rule.destination, destination, traffic);
        if same_for_all { peers } else { PodSet::new(n) }
    }
}

fn is_named(port: &PortMatch) -> bool {
    matches!(port, PortMatch::Named(_))
}
