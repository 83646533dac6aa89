//! Calico's semantics in the evaluator: tiers in order, `Pass`, the end of a
//! tier, policy order, `Log`, staged policies, network sets, service
//! accounts, and errors that name the field and column.

use moon_net::Error;
use moon_net::policy::{
    Action, CalicoPolicy, Cluster, EntityRule, Evaluator, NetworkSet, NetworkSetKind,
    NetworkSetSpec, Peer, Pod, PolicyKind, PolicySet, PolicyType, Protocol, Reason, Rule,
    ServiceAccount, Tier, Traffic, compile,
};
use serde_json::json;

fn cluster() -> Cluster {
    let pod = |ns: &str, name: &str, app: &str, ip: &str| Pod {
        ip: Some(ip.parse().unwrap()),
        ..Pod::new(ns, name, [("app", app)])
    };
    Cluster {
        pods: vec![
            pod("x", "web", "web", "10.0.1.1"),
            pod("x", "db", "db", "10.0.1.2"),
            pod("y", "api", "api", "10.0.2.1"),
            Pod {
                service_account: Some("reporter".into()),
                ..pod("z", "jobs", "jobs", "10.0.3.1")
            },
        ],
        service_accounts: vec![ServiceAccount {
            namespace: "z".into(),
            name: "reporter".into(),
            labels: [("role".to_owned(), "reporting".to_owned())].into(),
        }],
        ..Cluster::default()
    }
}

fn evaluator(set: &PolicySet) -> Evaluator {
    let evaluator = Evaluator::new(cluster(), compile(set).expect("policies compile")).unwrap();
    // The whole matrix, worked out over sets of peers, agrees with the
    // rule-by-rule walk in every cell.
    let pods: Vec<Peer> = (0..evaluator.cluster().pods.len()).map(Peer::Pod).collect();
    for traffic in [Traffic::tcp(80), Traffic::tcp(5432), Traffic::udp(53)] {
        let matrix = evaluator.matrix(&pods, &pods, traffic);
        for (i, &from) in pods.iter().enumerate() {
            for (j, &to) in pods.iter().enumerate() {
                assert_eq!(
                    matrix[i][j],
                    evaluator.allowed_naive(from, to, traffic),
                    "{} -> {} {traffic:?}",
                    evaluator.peer_name(from),
                    evaluator.peer_name(to)
                );
            }
        }
    }
    evaluator
}

fn peer(e: &Evaluator, name: &str) -> Peer {
    e.peer(name).unwrap()
}

fn check(e: &Evaluator, from: &str, to: &str, traffic: Traffic) -> moon_net::policy::Verdict {
    let verdict = e.check(peer(e, from), peer(e, to), traffic);
    assert_eq!(
        verdict,
        e.check_naive(peer(e, from), peer(e, to), traffic),
        "indexed and naive differ for {from} -> {to}"
    );
    verdict
}

fn allow_all_ingress_in(namespace: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": namespace},
        "spec": {"podSelector": {}, "ingress": [{}]}
    })
}

fn security_tier() -> Tier {
    Tier::new("security", 100.0)
}

#[test]
fn a_global_deny_in_an_earlier_tier_overrides_a_namespace_allow() {
    let mut set = PolicySet::default();
    set.push_object(allow_all_ingress_in("x"), 0).unwrap();
    set.tiers.push(security_tier());
    set.calico.push(
        CalicoPolicy::global("security.no-y-to-x")
            .tier("security")
            .selector("projectcalico.org/namespace == 'x'")
            .ingress(Rule::deny().from(
                EntityRule::default().namespace_selector("kubernetes.io/metadata.name == 'y'"),
            ))
            .ingress(Rule::pass()),
    );
    let e = evaluator(&set);
    let denied = check(&e, "y/api", "x/db", Traffic::tcp(5432));
    assert!(!denied.allowed);
    assert_eq!(
        denied.ingress.reason,
        Reason::Rule {
            policy: moon_net::policy::PolicyRef {
                kind: PolicyKind::CalicoGlobalNetworkPolicy,
                namespace: None,
                name: "security.no-y-to-x".into()
            },
            tier: "security".into(),
            rule: 0,
            action: Action::Deny,
        }
    );
    // From its own namespace the security tier passes it on, and the
    // namespace's allow decides.
    let allowed = check(&e, "x/web", "x/db", Traffic::tcp(5432));
    assert!(allowed.allowed);
    assert_eq!(allowed.ingress.passed, vec!["security".to_owned()]);
    assert!(
        matches!(&allowed.ingress.reason, Reason::Rule { policy, tier, .. }
            if policy.kind == PolicyKind::KubernetesNetworkPolicy && tier == "default"),
        "{:?}",
        allowed.ingress.reason
    );
    let words = allowed.explain("x/web", "x/db");
    assert!(
        words.contains("NetworkPolicy x/allow-all rule ingress[0] in tier default (after tier security passed it on)"),
        "{words}"
    );
}

#[test]
fn a_tier_that_selects_a_pod_and_matches_nothing_denies_unless_its_default_is_pass() {
    let mut set = PolicySet::default();
    set.tiers.push(security_tier());
    set.calico.push(
        CalicoPolicy::global("security.only-dns")
            .tier("security")
            .selector("app == 'web'")
            .types([PolicyType::Egress])
            .egress(
                Rule::allow()
                    .protocol(Protocol::Udp)
                    .to(EntityRule::default().ports([53])),
            ),
    );
    let e = evaluator(&set);
    let verdict = check(&e, "x/web", "y/api", Traffic::tcp(80));
    assert!(!verdict.allowed);
    assert!(
        matches!(&verdict.egress.reason, Reason::EndOfTier { tier, policies } if tier == "security" && policies.len() == 1),
        "{:?}",
        verdict.egress.reason
    );
    assert!(check(&e, "x/web", "y/api", Traffic::udp(53)).allowed);
    // Not selected: not isolated.
    let other = check(&e, "x/db", "y/api", Traffic::tcp(80));
    assert_eq!(other.egress.reason, Reason::NotIsolated);

    let mut passing = set.clone();
    passing.tiers[0].spec.default_action = Some(Action::Pass);
    let e = evaluator(&passing);
    let verdict = check(&e, "x/web", "y/api", Traffic::tcp(80));
    assert!(verdict.allowed);
    assert_eq!(verdict.egress.reason, Reason::PassedToProfile);
    assert_eq!(verdict.egress.passed, vec!["security".to_owned()]);
}

#[test]
fn policies_apply_by_order_and_log_goes_on_to_the_next_rule() {
    let mut set = PolicySet::default();
    set.calico.push(
        CalicoPolicy::namespaced("x", "late-allow")
            .order(200.0)
            .ingress(Rule::allow()),
    );
    set.calico.push(
        CalicoPolicy::namespaced("x", "early-deny")
            .order(100.0)
            .ingress(Rule::new(Action::Log))
            .ingress(
                Rule::deny()
                    .protocol(Protocol::Tcp)
                    .to(EntityRule::default().ports(["5000:6000"])),
            ),
    );
    let e = evaluator(&set);
    let denied = check(&e, "y/api", "x/db", Traffic::tcp(5432));
    assert!(
        matches!(&denied.ingress.reason, Reason::Rule { policy, rule: 1, action: Action::Deny, .. } if policy.name == "early-deny"),
        "{:?}",
        denied.ingress.reason
    );
    let allowed = check(&e, "y/api", "x/db", Traffic::tcp(80));
    assert!(
        matches!(&allowed.ingress.reason, Reason::Rule { policy, action: Action::Allow, .. } if policy.name == "late-allow"),
        "{:?}",
        allowed.ingress.reason
    );
}

#[test]
fn staged_policies_are_not_enforced() {
    let mut set = PolicySet::default();
    let mut staged = CalicoPolicy::namespaced("x", "would-deny").ingress(Rule::deny());
    staged.kind = moon_net::policy::CalicoPolicyKind::StagedNetworkPolicy;
    set.calico.push(staged);
    let compiled = compile(&set).unwrap();
    assert_eq!((compiled.policy_count(), compiled.staged_count()), (0, 1));
    let e = evaluator(&set);
    assert!(check(&e, "y/api", "x/db", Traffic::tcp(80)).allowed);
}

#[test]
fn addresses_match_selectors_through_the_most_specific_network_set() {
    let mut set = PolicySet::default();
    let network_set = |name: &str, kind, role: &str, nets: &[&str]| NetworkSet {
        api_version: moon_net::policy::CALICO_API_VERSION.into(),
        kind,
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: (kind == NetworkSetKind::NetworkSet).then(|| "x".to_owned()),
            labels: Some([("role".to_owned(), role.to_owned())].into()),
            ..Default::default()
        },
        spec: NetworkSetSpec {
            nets: nets.iter().map(|n| (*n).to_owned()).collect(),
        },
    };
    set.network_sets.push(network_set(
        "internet",
        NetworkSetKind::GlobalNetworkSet,
        "internet",
        &["0.0.0.0/0"],
    ));
    set.network_sets.push(network_set(
        "backups",
        NetworkSetKind::NetworkSet,
        "backups",
        &["192.0.2.0/24"],
    ));
    set.calico.push(
        CalicoPolicy::namespaced("x", "db-egress")
            .selector("app == 'db'")
            .types([PolicyType::Egress])
            .egress(Rule::allow().to(EntityRule::default().selector("role == 'backups'"))),
    );
    let e = evaluator(&set);
    let to = |ip: &str| {
        e.check(
            peer(&e, "x/db"),
            Peer::Address(ip.parse().unwrap()),
            Traffic::tcp(443),
        )
    };
    assert!(to("192.0.2.7").allowed, "in the namespace's backups set");
    assert!(!to("198.51.100.1").allowed, "only in the internet set");
    let from_outside = e.check(
        Peer::Address("198.51.100.1".parse().unwrap()),
        peer(&e, "x/db"),
        Traffic::tcp(80),
    );
    assert_eq!(from_outside.egress.reason, Reason::NotAPod);
    assert!(from_outside.allowed);
}

#[test]
fn service_accounts_match_by_name_and_by_labels() {
    let mut set = PolicySet::default();
    let by_labels = EntityRule {
        service_accounts: Some(moon_net::policy::ServiceAccountMatch {
            names: vec![],
            selector: Some("role == 'reporting'".into()),
        }),
        namespace_selector: Some("all()".into()),
        ..EntityRule::default()
    };
    set.calico
        .push(CalicoPolicy::namespaced("x", "reporters").ingress(Rule::allow().from(by_labels)));
    let e = evaluator(&set);
    assert!(check(&e, "z/jobs", "x/db", Traffic::tcp(5432)).allowed);
    assert!(!check(&e, "y/api", "x/db", Traffic::tcp(5432)).allowed);
}

#[test]
fn the_matrix_of_a_namespace_default_deny() {
    let mut set = PolicySet::default();
    set.push_object(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "deny", "namespace": "x"}, "spec": {"podSelector": {}}}),
        0,
    )
    .unwrap();
    let e = evaluator(&set);
    let pods: Vec<Peer> = (0..4).map(Peer::Pod).collect();
    let matrix = e.matrix(&pods, &pods, Traffic::tcp(80));
    let text: Vec<String> = matrix
        .iter()
        .map(|row| row.iter().map(|&a| if a { '.' } else { 'X' }).collect())
        .collect();
    assert_eq!(text, ["XX..", "XX..", "XX..", "XX.."]);
}

fn compile_error(object: serde_json::Value) -> (String, Option<usize>, String) {
    let mut set = PolicySet::default();
    let pushed = set.push_object(object, 0);
    match pushed.and_then(|()| compile(&set).map(|_| ())) {
        Err(Error::InvalidPolicy {
            field,
            column,
            message,
        }) => (field, column, message),
        other => panic!("expected InvalidPolicy, got {other:?}"),
    }
}

#[test]
fn malformed_selectors_cidrs_and_ports_name_their_field_and_column() {
    let (field, column, message) = compile_error(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"ingress": [{"action": "Allow", "source": {"selector": "app == web"}}]}
    }));
    assert_eq!(
        field,
        "Calico NetworkPolicy x/p: spec.ingress[0].source.selector"
    );
    assert_eq!(column, Some(8));
    assert!(message.contains("quoted string"), "{message}");

    let (field, column, _) = compile_error(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/40"}}]}]}
    }));
    assert_eq!(
        field,
        "NetworkPolicy x/p: spec.ingress[0].from[0].ipBlock.cidr"
    );
    assert_eq!(column, Some(10));

    let (field, _, message) = compile_error(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "g"},
        "spec": {"egress": [{"action": "Allow", "destination": {"ports": [80]}}]}
    }));
    assert_eq!(
        field,
        "Calico GlobalNetworkPolicy g: spec.egress[0].destination.ports"
    );
    assert!(message.contains("protocol"), "{message}");

    let (field, _, message) = compile_error(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"tier": "nowhere", "ingress": [{"action": "Allow"}]}
    }));
    assert_eq!(field, "Calico NetworkPolicy x/p: spec.tier");
    assert!(message.contains("not defined"), "{message}");

    let (field, _, _) = compile_error(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Within"}]}}
    }));
    assert_eq!(
        field,
        "NetworkPolicy x/p: spec.podSelector.matchExpressions[0].operator"
    );

    let (field, _, message) = compile_error(json!({"apiVersion": "v1", "kind": "Pod"}));
    assert_eq!(field, "documents[0].kind");
    assert!(message.contains("not a policy"), "{message}");

    let (field, _, _) = compile_error(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "80"}]}], "bogus": 1}
    }));
    assert_eq!(field, "documents[0].spec.bogus");
}

#[test]
fn a_kubernetes_port_range_covers_port_to_end_port() {
    let mut set = PolicySet::default();
    set.push_object(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "range", "namespace": "x"},
            "spec": {"podSelector": {}, "ingress": [{"ports": [
                {"port": 8000, "endPort": 8080}, {"port": 53, "protocol": "UDP"}
            ]}]}
        }),
        0,
    )
    .unwrap();
    let e = evaluator(&set);
    for (traffic, allowed) in [
        (Traffic::tcp(8000), true),
        (Traffic::tcp(8050), true),
        (Traffic::tcp(8080), true),
        (Traffic::tcp(7999), false),
        (Traffic::tcp(8081), false),
        (Traffic::udp(8050), false),
        (Traffic::udp(53), true),
        (Traffic::tcp(53), false),
    ] {
        assert_eq!(
            check(&e, "y/api", "x/db", traffic).allowed,
            allowed,
            "{traffic:?}"
        );
    }
}
