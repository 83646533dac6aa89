//! Network policies: Kubernetes NetworkPolicy (k8s-openapi's type), Calico's
//! `projectcalico.org/v3` policies, network sets and tiers, and an evaluator
//! that answers "may A reach B on this port, and which rule says so".
//!
//! ```
//! use moon_net::policy::{Cluster, Evaluator, Pod, PolicySet, Traffic, compile};
//!
//! let policy = serde_json::json!({
//!     "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
//!     "metadata": {"name": "db-from-api", "namespace": "shop"},
//!     "spec": {
//!         "podSelector": {"matchLabels": {"app": "db"}},
//!         "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
//!                      "ports": [{"port": 5432}]}]
//!     }
//! });
//! let mut set = PolicySet::default();
//! set.push_object(policy, 0)?;
//! let cluster = Cluster {
//!     pods: vec![
//!         Pod::new("shop", "api", [("app", "api")]),
//!         Pod::new("shop", "web", [("app", "web")]),
//!         Pod::new("shop", "db", [("app", "db")]),
//!     ],
//!     ..Cluster::default()
//! };
//! let evaluator = Evaluator::new(cluster, compile(&set)?)?;
//! let (api, web, db) = (evaluator.peer("shop/api")?, evaluator.peer("shop/web")?, evaluator.peer("shop/db")?);
//! assert!(evaluator.check(api, db, Traffic::tcp(5432)).allowed);
//! let verdict = evaluator.check(web, db, Traffic::tcp(5432));
//! assert!(!verdict.allowed);
//! assert!(verdict.explain("shop/web", "shop/db").contains("NetworkPolicy shop/db-from-api"));
//! # Ok::<(), moon_net::Error>(())
//! ```

mod calico;
mod cluster;
mod compile;
mod evaluate;
mod matrix;
mod net;
mod nft;
mod selector;
mod verdict;

pub use calico::{
    API_VERSION as CALICO_API_VERSION, Action, CalicoPolicy, CalicoPolicyKind, EntityRule,
    NetworkSet, NetworkSetKind, NetworkSetSpec, PolicySpec, PolicyType, ProtocolText, Rule,
    ServiceAccountMatch, Tier, TierKind, TierSpec,
};
pub use cluster::{
    Cluster, NAMESPACE_LABEL, NamedPort, Namespace, ORCHESTRATOR_LABEL, Pod, SERVICE_ACCOUNT_LABEL,
    ServiceAccount,
};
pub use compile::{
    CompiledPolicies, DEFAULT_TIER, DEFAULT_TIER_ORDER, KUBERNETES_POLICY_ORDER, PolicyKind,
    PolicyRef, PolicySet, compile,
};
pub use evaluate::{Evaluator, Peer, Traffic};
pub use k8s_openapi::api::networking::v1::NetworkPolicy;
pub use net::{Cidr, CidrError, PortMatch, PortText, Protocol};
pub use nft::NFT_TABLE;
pub use selector::{Labels, Selector, SelectorError};
pub use verdict::{Decision, Reason, Verdict};
