//! Policies compiled to an nftables ruleset for one pod, as Calico's Felix
//! compiles them to iptables: a chain per tier and direction, rules in
//! policy order, `accept` for Allow, `drop` for Deny, `return` for Pass (on
//! to the next tier), and the tier's default at its end. Selectors become
//! sets of the addresses of the pods (and network sets) they match;
//! everything else (nets, protocols, ports, the order of rules and tiers,
//! connection tracking) is left to the kernel. The enforcement tests load
//! these rulesets into network namespaces and send real packets.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::calico::{Action, PolicyType};
use super::compile::{CompiledRule, Entity};
use super::evaluate::Evaluator;
use super::net::{PortMatch, Protocol};

/// The nftables table moon's rulesets live in.
pub const NFT_TABLE: &str = "moon";

/// Which side of a packet an entity is matched on.
#[derive(Clone, Copy)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn addr(self) -> &'static str {
        match self {
            Side::Source => "ip saddr",
            Side::Destination => "ip daddr",
        }
    }
}

impl Evaluator {
    /// The ruleset (for `nft -f`) that enforces the policies at the pod at
    /// `pod` (an index of the cluster's pods): its ingress on the `input`
    /// hook, its egress on `output`. Replies of allowed connections pass
    /// (connection tracking) and so does loopback. IPv4 only.
    pub fn nft_ruleset(&self, pod: usize) -> String {
        let mut out = String::new();
        let name = self.cluster().pods[pod].key();
        let _ = writeln!(out, "# moon: policies at pod {name}");
        let _ = writeln!(out, "table inet {NFT_TABLE} {{");
        for (direction, hook) in [
            (PolicyType::Ingress, "input"),
            (PolicyType::Egress, "output"),
        ] {
            let tag = direction_tag(direction);
            let tiers = self.selecting_tiers(pod, direction);
            let _ = writeln!(out, "  chain {hook} {{");
            let _ = writeln!(
                out,
                "    type filter hook {hook} priority filter; policy accept;"
            );
            let _ = writeln!(out, "    ct state established,related accept");
            let lo = if hook == "input" { "iif" } else { "oif" };
            let _ = writeln!(out, "    {lo} lo accept");
            for (tier, _) in &tiers {
                let _ = writeln!(out, "    jump {tag}-tier-{tier}");
            }
            let _ = writeln!(
                out,
                "    accept comment \"{}\"",
                if tiers.is_empty() {
                    "not isolated"
                } else {
                    "every tier passed: the profile allows"
                }
            );
            let _ = writeln!(out, "  }}");
            for (tier, policies) in &tiers {
                self.tier_chain(&mut out, pod, direction, *tier, policies);
            }
        }
        let _ = writeln!(out, "}}");
        out
    }

    fn tier_chain(
        &self,
        out: &mut String,
        pod: usize,
        direction: PolicyType,
        tier: usize,
        policies: &[usize],
    ) {
        let compiled = &self.compiled().tiers[tier];
        let _ = writeln!(out, "  chain {}-tier-{tier} {{", direction_tag(direction));
        let _ = writeln!(out, "    # tier {}", compiled.name);
        for &p in policies {
            let policy = &compiled.policies[p];
            let rules = policy.rules(direction).unwrap_or_default();
            let _ = writeln!(out, "    # {}", policy.origin);
            for rule in rules {
                for line in self.rule_lines(pod, direction, rule) {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        let end = match compiled.default_action {
            Action::Pass => "return comment \"end of tier: pass\"",
            _ => "drop comment \"end of tier: deny\"",
        };
        let _ = writeln!(out, "    {end}");
        let _ = writeln!(out, "  }}");
    }

    /// The nft rules of one policy rule: none when it cannot match, more
    /// than one when a named port means different numbers at different
    /// destinations.
    fn rule_lines(&self, pod: usize, direction: PolicyType, rule: &CompiledRule) -> Vec<String> {
        let verdict = match rule.action {
            Action::Allow => "accept",
            Action::Deny => "drop",
            Action::Pass => "return",
            // Logging is left out: it decides nothing.
            Action::Log => return Vec::new(),
        };
        if !rule.source.ports.is_empty() || !rule.source.not_ports.is_empty() {
            // Source ports are ephemeral: as the evaluator, never matched.
            return Vec::new();
        }
        if rule.ip_version == Some(6) {
            return Vec::new();
        }
        let mut common = Vec::new();
        if let Some(protocol) = rule.protocol {
            common.push(format!("meta l4proto {}", l4proto(protocol)));
        }
        if let Some(protocol) = rule.not_protocol {
            common.push(format!("meta l4proto != {}", l4proto(protocol)));
        }
        // The pod's own side is the destination of ingress, the source of
        // egress; the peer's is the other.
        let (own, own_side, peer, peer_side) = match direction {
            PolicyType::Ingress => (
                &rule.destination,
                Side::Destination,
                &rule.source,
                Side::Source,
            ),
            PolicyType::Egress => (
                &rule.source,
                Side::Source,
                &rule.destination,
                Side::Destination,
            ),
        };
        for (entity, side) in [(own, own_side), (peer, peer_side)] {
            match self.entity_clauses(entity, side) {
                Some(clauses) => common.extend(clauses),
                None => return Vec::new(),
            }
        }
        // Destination ports: numbers as they are; names resolved at each
        // destination pod.
        let destination = &rule.destination;
        let protocol = rule.protocol.unwrap_or(Protocol::Tcp);
        let mut variants: Vec<Vec<String>> = Vec::new();
        let numbered: Vec<String> = destination
            .ports
            .iter()
            .filter_map(|p| match p {
                PortMatch::Range(a, b) if a == b => Some(a.to_string()),
                PortMatch::Range(a, b) => Some(format!("{a}-{b}")),
                PortMatch::Named(_) => None,
            })
            .collect();
        let named: Vec<&str> = destination
            .ports
            .iter()
            .filter_map(|p| match p {
                PortMatch::Named(name) => Some(name.as_str()),
                PortMatch::Range(..) => None,
            })
            .collect();
        if destination.ports.is_empty() {
            variants.push(Vec::new());
        }
        if !numbered.is_empty() {
            variants.push(vec![format!("th dport {}", set(&numbered))]);
        }
        for name in named {
            let destinations: Vec<usize> = match direction {
                PolicyType::Ingress => vec![pod],
                PolicyType::Egress => (0..self.cluster().pods.len()).collect(),
            };
            let mut by_port: std::collections::BTreeMap<u16, BTreeSet<String>> = Default::default();
            for d in destinations {
                let target = &self.cluster().pods[d];
                if let (Some(port), Some(ip)) = (target.named_port(name, protocol), target.ip) {
                    by_port.entry(port).or_default().insert(ip.to_string());
                }
            }
            for (port, ips) in by_port {
                let mut clauses = vec![format!("th dport {port}")];
                if direction == PolicyType::Egress {
                    clauses.push(format!(
                        "ip daddr {}",
                        set(&ips.into_iter().collect::<Vec<_>>())
                    ));
                }
                variants.push(clauses);
            }
        }
        let not_ports: Vec<String> = destination
            .not_ports
            .iter()
            .filter_map(|p| match p {
                PortMatch::Range(a, b) if a == b => Some(a.to_string()),
                PortMatch::Range(a, b) => Some(format!("{a}-{b}")),
                // A named port excluded: resolved at this pod for ingress;
                // for egress, left out (matches more than it should).
                PortMatch::Named(name) => match direction {
                    PolicyType::Ingress => self.cluster().pods[pod]
                        .named_port(name, protocol)
                        .map(|p| p.to_string()),
                    PolicyType::Egress => None,
                },
            })
            .collect();
        if !not_ports.is_empty() {
            common.push(format!("th dport != {}", set(&not_ports)));
        }
        let comment = format!("comment \"{}[{}]\"", direction_tag(direction), rule.index);
        variants
            .into_iter()
            .map(|extra| {
                let mut parts = common.clone();
                parts.extend(extra);
                parts.push(verdict.to_owned());
                parts.push(comment.clone());
                parts.join(" ")
            })
            .collect()
    }

    /// An entity's conditions on one side's address; None when nothing can
    /// match it (a selector that matches no address).
    fn entity_clauses(&self, entity: &Entity, side: Side) -> Option<Vec<String>> {
        let addr = side.addr();
        let mut clauses = Vec::new();
        let v4 = |nets: &[super::net::Cidr]| -> Vec<String> {
            nets.iter()
                .filter(|n| n.addr().is_ipv4())
                .map(ToString::to_string)
                .collect()
        };
        if !entity.nets.is_empty() {
            let nets = v4(&entity.nets);
            if nets.is_empty() {
                return None;
            }
            clauses.push(format!("{addr} {}", set(&nets)));
        }
        let not_nets = v4(&entity.not_nets);
        if !not_nets.is_empty() {
            clauses.push(format!("{addr} != {}", set(&not_nets)));
        }
        if entity.scoped {
            let members = self.entity_addresses(entity);
            if members.is_empty() {
                return None;
            }
            clauses.push(format!("{addr} {}", set(&members)));
        }
        if entity.not_selector.is_some() {
            let excluded = self.not_selector_addresses(entity);
            if !excluded.is_empty() {
                clauses.push(format!("{addr} != {}", set(&excluded)));
            }
        }
        Some(clauses)
    }

    /// The addresses an entity's selector matches: pods' and, for
    /// Calico rules, network sets' nets.
    fn entity_addresses(&self, entity: &Entity) -> Vec<String> {
        let mut out = BTreeSet::new();
        for (i, pod) in self.cluster().pods.iter().enumerate() {
            if let Some(IpAddr::V4(ip)) = pod.ip
                && self.entity_selects_pod(entity, i)
            {
                out.insert(ip.to_string());
            }
        }
        if !entity.pods_only {
            for net in self.network_set_nets_selected(entity) {
                out.insert(net);
            }
        }
        out.into_iter().collect()
    }

    fn not_selector_addresses(&self, entity: &Entity) -> Vec<String> {
        let Some(selector) = &entity.not_selector else {
            return Vec::new();
        };
        self.cluster()
            .pods
            .iter()
            .filter(|pod| selector.matches(&super::cluster::EndpointLabels { pod }))
            .filter_map(|pod| match pod.ip {
                Some(IpAddr::V4(ip)) => Some(ip.to_string()),
                _ => None,
            })
            .collect()
    }
}

fn direction_tag(direction: PolicyType) -> &'static str {
    match direction {
        PolicyType::Ingress => "in",
        PolicyType::Egress => "out",
    }
}

fn l4proto(protocol: Protocol) -> String {
    match protocol {
        Protocol::Tcp => "tcp".into(),
        Protocol::Udp => "udp".into(),
        Protocol::Sctp => "sctp".into(),
        Protocol::Icmp => "icmp".into(),
        Protocol::IcmpV6 => "icmpv6".into(),
        Protocol::UdpLite => "udplite".into(),
        Protocol::Number(n) => n.to_string(),
    }
}

fn set(items: &[String]) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}
