//! What the evaluator answers: allowed or not, in each direction, and the
//! rule (or its absence) that decided, in plain words.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::calico::{Action, PolicyType};
use super::compile::PolicyRef;

/// The answer to "may A reach B on this port": both directions' decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Whether the connection is allowed: both directions allow it.
    pub allowed: bool,
    /// Leaving the source.
    pub egress: Decision,
    /// Arriving at the destination.
    pub ingress: Decision,
}

/// One direction's decision and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether this direction lets the traffic through.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// Tiers whose `Pass` (a rule's, or the tier's default) sent the
    /// traffic on, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed: Vec<String>,
}

/// Why a direction decided as it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Reason {
    /// That side is an address, not a pod: no policy of the cluster applies
    /// to it.
    NotAPod,
    /// No policy selects the pod in this direction: it is not isolated.
    NotIsolated,
    /// A rule matched.
    Rule {
        /// The policy.
        policy: PolicyRef,
        /// Its tier.
        tier: String,
        /// The rule's index in the policy's ingress or egress list.
        rule: usize,
        /// What the rule does.
        action: Action,
    },
    /// Policies of a tier select the pod but none of their rules matched:
    /// the tier's default (deny) applied.
    EndOfTier {
        /// The tier.
        tier: String,
        /// The policies of that tier that select the pod.
        policies: Vec<PolicyRef>,
    },
    /// Every tier that selects the pod passed the traffic on: the
    /// namespace's profile allows it.
    PassedToProfile,
}

impl Decision {
    /// This direction in plain words, for `direction` at `pod`.
    pub fn explain(&self, direction: PolicyType, pod: &str) -> String {
        let way = match direction {
            PolicyType::Ingress => "into",
            PolicyType::Egress => "out of",
        };
        let passed = if self.passed.is_empty() {
            String::new()
        } else {
            format!(" (after tier {} passed it on)", self.passed.join(", then "))
        };
        match &self.reason {
            Reason::NotAPod => format!("{way} {pod}: allowed, it is an address outside the pods"),
            Reason::NotIsolated => {
                format!("{way} {pod}: allowed, no policy selects {pod} for {direction:?}")
            }
            Reason::Rule {
                policy,
                tier,
                rule,
                action,
            } => {
                let verb = match action {
                    Action::Allow => "allowed",
                    Action::Deny => "denied",
                    Action::Pass => "passed on",
                    Action::Log => "logged",
                };
                let list = match direction {
                    PolicyType::Ingress => "ingress",
                    PolicyType::Egress => "egress",
                };
                format!(
                    "{way} {pod}: {verb} by {policy} rule {list}[{rule}] in tier {tier}{passed}"
                )
            }
            Reason::EndOfTier { tier, policies } => {
                let names: Vec<String> = policies.iter().map(ToString::to_string).collect();
                let (verb, whose) = if names.len() == 1 {
                    ("selects", "its")
                } else {
                    ("select", "their")
                };
                format!(
                    "{way} {pod}: denied, {} {verb} {pod} in tier {tier} and no rule of {whose} \
                     matches{passed}",
                    names.join(", ")
                )
            }
            Reason::PassedToProfile => {
                format!("{way} {pod}: allowed, every tier passed it on to the profile{passed}")
            }
        }
    }
}

impl Verdict {
    /// The verdict in plain words: the answer, then each direction.
    pub fn explain(&self, from: &str, to: &str) -> String {
        format!(
            "{}: {from} -> {to}\n  {}\n  {}",
            if self.allowed { "allowed" } else { "denied" },
            self.egress.explain(PolicyType::Egress, from),
            self.ingress.explain(PolicyType::Ingress, to),
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.allowed { "allowed" } else { "denied" })
    }
}
