//! Network policies enforced on real packets: tenants' pods are Linux
//! network namespaces on a bridge (see `lab`), each pod gets the nftables
//! ruleset moon compiles from the policies, and real TCP connections and UDP
//! exchanges cross a truth table of 3 tenants × 2 label sets × 3 ports. Every
//! cell must match the evaluator's answer; the table is printed.
//!
//! Needs root, `ip` and `nft`: `./scripts/test.sh --only network` installs
//! what is missing and runs these tests (their names start with
//! `enforcement_`, which the rust tier leaves to it).

mod lab;

use std::net::Ipv4Addr;
use std::time::Duration;

use lab::{Lab, PodSpec, Protocol as LabProtocol};
use moon_core::spec::Tenant;
use moon_net::policy::{
    CalicoPolicy, Cluster, EntityRule, Evaluator, Pod, PolicySet, Protocol, Rule, Tier, Traffic,
    compile,
};
use serde_json::json;

const TENANTS: [&str; 3] = ["t1", "t2", "t3"];
const APPS: [&str; 2] = ["web", "db"];
const PORTS: [(u16, Protocol); 3] = [
    (80, Protocol::Tcp),
    (5432, Protocol::Tcp),
    (5353, Protocol::Udp),
];
/// A dropped probe costs this much; 300 ms held on a loaded 2-core machine
/// with a wide margin (correct down to 20 ms when the lab was measured).
const TIMEOUT: Duration = Duration::from_millis(300);

fn need_lab() {
    if let Some(why) = lab::unavailable() {
        panic!(
            "the network lab cannot run here: {why}. These tests need root, iproute2 and \
             nftables; ./scripts/test.sh --only network installs them"
        );
    }
}

/// `t1/web` ... `t3/db`, with addresses 10.79.0.<tenant><app>.
fn cluster() -> Cluster {
    tenants_cluster(Vec::new())
}

/// The tenants' pods, and `extra` pods after them.
fn tenants_cluster(extra: Vec<Pod>) -> Cluster {
    let mut pods = Vec::new();
    for (t, tenant) in TENANTS.iter().enumerate() {
        for (a, app) in APPS.iter().enumerate() {
            pods.push(Pod {
                ip: Some(format!("10.79.0.{}{}", t + 1, a + 1).parse().unwrap()),
                ..Pod::new(tenant, app, [("app", *app)])
            });
        }
    }
    pods.extend(extra);
    Cluster {
        pods,
        ..Cluster::default()
    }
}

fn lab_name(key: &str) -> String {
    key.replace('/', "-")
}

/// Builds the lab, loads each pod's ruleset, probes every pair of distinct
/// pods on every port, prints the table and returns the cells that differ
/// from the evaluator.
fn enforce(title: &str, set: &PolicySet) -> Vec<String> {
    enforce_on(title, cluster(), set)
}

fn enforce_on(title: &str, cluster: Cluster, set: &PolicySet) -> Vec<String> {
    need_lab();
    let evaluator = Evaluator::new(cluster, compile(set).expect("policies compile")).unwrap();
    let pods = &evaluator.cluster().pods;
    let specs: Vec<PodSpec> = pods
        .iter()
        .map(|p| match p.ip {
            Some(std::net::IpAddr::V4(ip)) => PodSpec::new(lab_name(&p.key()), ip),
            _ => unreachable!("every pod has an IPv4 address"),
        })
        .collect();
    let lab = Lab::create(&specs, Ipv4Addr::new(10, 79, 0, 1), 24).expect("create the lab");
    lab.serve(&PORTS.map(|(port, protocol)| (port, lab_protocol(protocol))))
        .expect("serve");
    for (i, pod) in pods.iter().enumerate() {
        let ruleset = evaluator.nft_ruleset(i);
        lab.load_nft(&lab_name(&pod.key()), &ruleset)
            .unwrap_or_else(|e| panic!("{}: {e}\n{ruleset}", pod.key()));
    }
    let mut probes = Vec::new();
    let mut expected = Vec::new();
    for (port, protocol) in PORTS {
        for (i, from) in pods.iter().enumerate() {
            for (j, to) in pods.iter().enumerate() {
                if i == j {
                    // A pod to itself goes over loopback, which policies
                    // do not see; the table is of pairs of pods.
                    continue;
                }
                probes.push((
                    lab_name(&from.key()),
                    lab_name(&to.key()),
                    port,
                    lab_protocol(protocol),
                ));
                let traffic = Traffic { protocol, port };
                expected.push(evaluator.check(
                    moon_net::policy::Peer::Pod(i),
                    moon_net::policy::Peer::Pod(j),
                    traffic,
                ));
            }
        }
    }
    let real = lab.probe_all(&probes, TIMEOUT);

    // The table: per port, rows from, columns to; '.' reached, 'X' not,
    // '!' where the packets and the evaluator disagree.
    let keys: Vec<String> = pods.iter().map(Pod::key).collect();
    let mut table = format!("\n== {title} ==\n");
    let mut wrong = Vec::new();
    let mut cell = 0;
    for (port, protocol) in PORTS {
        table.push_str(&format!(
            "{protocol}/{port}: {:>7} {}\n",
            "",
            keys.join(" ")
        ));
        for (i, from) in keys.iter().enumerate() {
            let mut row = format!("{from:>16} ");
            for (j, to) in keys.iter().enumerate() {
                if i == j {
                    row.push_str(&format!("{:^6}", "-"));
                    continue;
                }
                let (got, verdict) = (real[cell], &expected[cell]);
                cell += 1;
                let mark = match (got, verdict.allowed) {
                    (true, true) => ".",
                    (false, false) => "X",
                    _ => "!",
                };
                row.push_str(&format!("{mark:^6}"));
                if got != verdict.allowed {
                    wrong.push(format!(
                        "{protocol}/{port} {from} -> {to}: packets {}, evaluator {}",
                        if got { "reached" } else { "blocked" },
                        verdict.explain(from, to).replace('\n', "\n    ")
                    ));
                }
            }
            table.push_str(&row);
            table.push('\n');
        }
    }
    eprintln!("{table}");
    let allowed = expected.iter().filter(|v| v.allowed).count();
    assert!(
        allowed > 0 && allowed < expected.len(),
        "{title}: a table with {allowed} of {} allowed proves nothing",
        expected.len()
    );
    if !wrong.is_empty() {
        for (i, pod) in pods.iter().enumerate() {
            eprintln!("ruleset of {}:\n{}", pod.key(), evaluator.nft_ruleset(i));
        }
    }
    wrong
}

fn lab_protocol(protocol: Protocol) -> LabProtocol {
    match protocol {
        Protocol::Tcp => LabProtocol::Tcp,
        Protocol::Udp => LabProtocol::Udp,
        other => panic!("the lab speaks TCP and UDP, not {other}"),
    }
}

/// The NetworkPolicies moon renders for a tenant on Kubernetes.
fn tenant_preset(set: &mut PolicySet, tenant: &str) {
    let tenant = Tenant {
        name: tenant.to_owned(),
        ..Tenant::default()
    };
    let objects = moon_core::kubernetes::render_tenant(&tenant).expect("render");
    for object in objects.iter().filter(|o| o.kind() == "NetworkPolicy") {
        let value = serde_json::to_value(object).unwrap();
        set.push_object(value, set.kubernetes.len()).unwrap();
    }
}

#[test]
fn enforcement_the_kubernetes_tenant_preset_keeps_tenants_apart() {
    let mut set = PolicySet::default();
    for tenant in TENANTS {
        tenant_preset(&mut set, tenant);
    }
    // t2 opens its database to t1's web pods on 5432 alone, and t1 lets
    // them send there: cells that depend on labels and on the port.
    set.push_object(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "db-from-t1-web", "namespace": "t2"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "t1"}},
                                       "podSelector": {"matchLabels": {"app": "web"}}}],
                             "ports": [{"port": 5432}]}]
            }
        }),
        99,
    )
    .unwrap();
    set.push_object(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "to-t2-db", "namespace": "t1"},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "t2"}},
                                    "podSelector": {"matchLabels": {"app": "db"}}}]}]
            }
        }),
        100,
    )
    .unwrap();
    let wrong = enforce("Kubernetes tenant preset", &set);
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn enforcement_calico_tiers_pass_on_and_a_global_deny_overrides_a_namespace_allow() {
    let mut set = PolicySet::default();
    for tenant in TENANTS {
        tenant_preset(&mut set, tenant);
    }
    // t1 opens its web pods to t3 in the default tier...
    set.push_object(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "web-from-t3", "namespace": "t1"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "t3"}}}]}]
            }
        }),
        98,
    )
    .unwrap();
    // ... whose egress lets them reach it (the preset keeps egress inside
    // the tenant)...
    set.push_object(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "to-t1-web", "namespace": "t3"},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "t1"}},
                                    "podSelector": {"matchLabels": {"app": "web"}}}]}]
            }
        }),
        99,
    )
    .unwrap();
    // ... and to t2 in Calico's own terms, both ways.
    set.calico.push(
        CalicoPolicy::namespaced("t1", "web-from-t2")
            .selector("app == 'web'")
            .ingress(Rule::allow().from(
                EntityRule::default().namespace_selector("kubernetes.io/metadata.name == 't2'"),
            )),
    );
    set.calico.push(
        CalicoPolicy::namespaced("t2", "to-t1-web").egress(
            Rule::allow().to(EntityRule::default()
                .namespace_selector("kubernetes.io/metadata.name == 't1'")
                .selector("app == 'web'")),
        ),
    );
    // A security tier first: no database of any tenant takes traffic from
    // t3, whatever a namespace allows; everything else passes on to the
    // default tier.
    set.tiers.push(Tier::new("security", 100.0));
    set.calico.push(
        CalicoPolicy::global("security.guard")
            .tier("security")
            .ingress(
                Rule::deny()
                    .from(
                        EntityRule::default()
                            .namespace_selector("kubernetes.io/metadata.name == 't3'"),
                    )
                    .to(EntityRule::default().selector("app == 'db'")),
            )
            .ingress(Rule::pass()),
    );
    // ... and t3's own pods may not send UDP anywhere but inside t3.
    set.calico.push(
        CalicoPolicy::global("security.t3-udp")
            .tier("security")
            .order(10.0)
            .selector("projectcalico.org/namespace == 't3'")
            .types([moon_net::policy::PolicyType::Egress])
            .egress(Rule::deny().protocol(Protocol::Udp).to(
                EntityRule::default().namespace_selector("kubernetes.io/metadata.name != 't3'"),
            ))
            .egress(Rule::pass()),
    );
    // t3 opens its database to everyone, which the security tier overrides
    // for... nobody but t3 itself: t3 -> t3/db is denied by the guard.
    set.push_object(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "db-open", "namespace": "t3"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{}]}
        }),
        97,
    )
    .unwrap();

    // The evaluator's own reading of the cases the issue names, before the
    // packets: a pass to a later tier, and a global deny over an allow.
    let evaluator = Evaluator::new(cluster(), compile(&set).unwrap()).unwrap();
    let peer = |name: &str| evaluator.peer(name).unwrap();
    let passed = evaluator.check(peer("t3/web"), peer("t1/web"), Traffic::tcp(80));
    assert!(passed.allowed);
    assert_eq!(passed.ingress.passed, vec!["security".to_owned()]);
    let overridden = evaluator.check(peer("t3/web"), peer("t3/db"), Traffic::tcp(5432));
    assert!(
        !overridden.allowed,
        "{}",
        overridden.explain("t3/web", "t3/db")
    );
    let from_t2 = evaluator.check(peer("t2/db"), peer("t1/web"), Traffic::udp(5353));
    assert!(from_t2.allowed, "{}", from_t2.explain("t2/db", "t1/web"));
    let t3_udp = evaluator.check(peer("t3/db"), peer("t1/web"), Traffic::udp(5353));
    assert!(!t3_udp.allowed, "{}", t3_udp.explain("t3/db", "t1/web"));
    assert!(
        evaluator
            .check(peer("t3/db"), peer("t1/web"), Traffic::tcp(80))
            .allowed
    );

    let wrong = enforce("Calico tiers over the Kubernetes preset", &set);
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Everything `render_tenant` makes for the network: policies of both
/// kinds (the cluster-wide ones once), and the Namespace's labels.
fn rendered(tenant: &Tenant, set: &mut PolicySet, cluster: &mut Cluster) {
    for object in moon_core::kubernetes::render_tenant(tenant).expect("render") {
        let value = serde_json::to_value(&object).unwrap();
        match object.kind() {
            "Namespace" => cluster.namespaces.push(moon_net::policy::Namespace {
                name: object.name().to_owned(),
                labels: object.metadata().labels.clone().unwrap_or_default(),
            }),
            "Tier" if set.tiers.iter().any(|t| t.name() == object.name()) => {}
            "GlobalNetworkPolicy" if set.calico.iter().any(|p| p.name() == object.name()) => {}
            "NetworkPolicy" | "Tier" | "GlobalNetworkPolicy" => {
                let index = set.kubernetes.len() + set.calico.len() + set.tiers.len();
                set.push_object(value, index).unwrap();
            }
            _ => {}
        }
    }
}

#[test]
fn enforcement_the_calico_rendering_passes_to_tenants_and_its_guard_rail_overrides_their_allows() {
    let tenant = |yaml: &str| moon_core::spec::tenant_from_yaml(yaml).unwrap();
    // t1 may send to the lab's subnet on port 80; t2 exposes its api
    // (the web pods) to t1 on port 80; t3 has the defaults.
    let tenants = [
        tenant(
            "name: t1\nnetwork:\n  isolation: calico\n  egress:\n  - cidr: 10.79.0.0/24\n    ports: [80]\n",
        ),
        tenant(
            "name: t2\nnetwork:\n  isolation: calico\n  expose:\n  - service: api\n    ports: [80]\n    tenants: [t1]\n",
        ),
        tenant("name: t3\nnetwork:\n  isolation: calico\n"),
    ];
    // A stand-in for the cloud metadata service, outside every tenant: the
    // lab's packets cannot reach 169.254.169.254, so the guard rail's nets
    // are pointed at it (everything else is as rendered).
    let metadata = Pod {
        ip: Some("10.79.0.99".parse().unwrap()),
        ..Pod::new("infra", "metadata", [("app", "metadata")])
    };
    let mut cluster = tenants_cluster(vec![metadata]);
    cluster.pods[2]
        .labels
        .insert(moon_core::kubernetes::SERVICE_LABEL.into(), "api".into());
    let mut set = PolicySet::default();
    for tenant in &tenants {
        rendered(tenant, &mut set, &mut cluster);
    }
    let guard = set
        .calico
        .iter_mut()
        .find(|p| p.name() == moon_core::kubernetes::GUARD_RAILS_POLICY)
        .expect("the guard rails are rendered");
    guard.spec.egress[0].destination.nets = vec!["10.79.0.99/32".into()];
    // t2's own policy in the default tier narrows what moon's tier passes
    // on: its database takes 5432 from its web pods only.
    set.push_object(
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "db-from-web", "namespace": "t2"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                             "ports": [{"port": 5432}]}]
            }
        }),
        99,
    )
    .unwrap();

    let evaluator = Evaluator::new(cluster.clone(), compile(&set).unwrap()).unwrap();
    let peer = |name: &str| evaluator.peer(name).unwrap();
    // The global deny over the namespace's allow: t1's egress list opens
    // the subnet on 80, the guard rail still denies the metadata address.
    let guarded = evaluator.check(peer("t1/web"), peer("infra/metadata"), Traffic::tcp(80));
    assert!(!guarded.allowed);
    assert!(
        matches!(&guarded.egress.reason, moon_net::policy::Reason::Rule { policy, .. }
            if policy.name == moon_core::kubernetes::GUARD_RAILS_POLICY),
        "{}",
        guarded.explain("t1/web", "infra/metadata")
    );
    // A pass to a later tier: moon's tier passes t2's own traffic on, and
    // t2's policy in the default tier decides.
    let narrowed = evaluator.check(peer("t2/web"), peer("t2/db"), Traffic::tcp(80));
    assert!(!narrowed.allowed);
    assert_eq!(narrowed.ingress.passed, vec!["moon".to_owned()]);
    let exposed = evaluator.check(peer("t1/db"), peer("t2/web"), Traffic::tcp(80));
    assert!(exposed.allowed, "{}", exposed.explain("t1/db", "t2/web"));

    let wrong = enforce_on("Calico rendering of three tenants", cluster, &set);
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
