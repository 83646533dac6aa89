//! The evaluator against the Kubernetes network-policy end-to-end suite:
//! each case of `tests/data/netpol/kubernetes-e2e.yaml` (transcribed from
//! kubernetes/kubernetes `test/e2e/network/netpol`, see its README) gives
//! policies and the reachability that suite expects of a cluster, cell by
//! cell. Not moon's own idea of the semantics: the upstream suite's.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use moon_net::policy::{
    Cluster, Evaluator, NamedPort, Namespace, Pod, PolicySet, Protocol, Traffic, compile,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    pods: Model,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Model {
    ips: BTreeMap<String, IpAddr>,
    labels: BTreeMap<String, BTreeMap<String, String>>,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    named_ports: Vec<NamedPort>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    policies: Vec<serde_json::Value>,
    probes: Vec<Probe>,
}

#[derive(Deserialize)]
struct Probe {
    port: u16,
    protocol: String,
    matrix: Vec<String>,
}

const ORDER: [&str; 9] = [
    "x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c",
];

fn data() -> File {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/netpol/kubernetes-e2e.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cluster(model: &Model, case: &Case) -> Cluster {
    let namespaces = ["x", "y", "z"]
        .iter()
        .map(|ns| Namespace {
            name: (*ns).to_owned(),
            labels: case
                .namespace_labels
                .get(*ns)
                .or_else(|| model.namespace_labels.get(*ns))
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    let pods = ORDER
        .iter()
        .map(|key| {
            let (namespace, name) = key.split_once('/').expect("ns/pod");
            Pod {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                labels: case
                    .labels
                    .get(*key)
                    .or_else(|| model.labels.get(*key))
                    .cloned()
                    .unwrap_or_default(),
                service_account: None,
                ip: Some(model.ips[*key]),
                ports: model.named_ports.clone(),
            }
        })
        .collect();
    Cluster {
        namespaces,
        pods,
        service_accounts: Vec::new(),
    }
}

#[test]
fn every_case_of_the_kubernetes_suite_gets_the_reachability_it_expects() {
    let file = data();
    assert!(file.cases.len() >= 25, "{} cases", file.cases.len());
    let mut failures = Vec::new();
    let mut cells = 0;
    for case in &file.cases {
        let mut set = PolicySet::default();
        for (i, policy) in case.policies.iter().enumerate() {
            set.push_object(policy.clone(), i)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        }
        let compiled = compile(&set).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let evaluator = Evaluator::new(cluster(&file.pods, case), compiled).unwrap();
        let peers: Vec<_> = ORDER.iter().map(|k| evaluator.peer(k).unwrap()).collect();
        for probe in &case.probes {
            let protocol = Protocol::parse(&probe.protocol).expect("a protocol");
            let traffic = Traffic {
                protocol,
                port: probe.port,
            };
            let got = evaluator.matrix(&peers, &peers, traffic);
            let mut wrong = Vec::new();
            for (i, row) in probe.matrix.iter().enumerate() {
                for (j, cell) in row.chars().enumerate() {
                    cells += 1;
                    let expected = cell == '.';
                    if got[i][j] != expected {
                        let verdict = evaluator.check(peers[i], peers[j], traffic);
                        wrong.push(format!(
                            "    {} -> {} expected {}, got {}",
                            ORDER[i],
                            ORDER[j],
                            if expected { "allowed" } else { "denied" },
                            verdict
                                .explain(ORDER[i], ORDER[j])
                                .replace('\n', "\n      ")
                        ));
                    }
                    assert_eq!(
                        evaluator.allowed_naive(peers[i], peers[j], traffic),
                        got[i][j],
                        "{}: {} -> {}",
                        case.name,
                        ORDER[i],
                        ORDER[j]
                    );
                    // The index and the rule-by-rule walk agree on every cell.
                    assert_eq!(
                        evaluator.check(peers[i], peers[j], traffic),
                        evaluator.check_naive(peers[i], peers[j], traffic),
                        "{}: {} -> {}",
                        case.name,
                        ORDER[i],
                        ORDER[j]
                    );
                }
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} ({} {}){}:\n{}",
                    case.name,
                    probe.protocol,
                    probe.port,
                    case.note
                        .as_deref()
                        .map(|n| format!(" [{n}]"))
                        .unwrap_or_default(),
                    wrong.join("\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with the suite:\n{}",
        failures.len(),
        file.cases.len(),
        failures.join("\n")
    );
    assert!(cells >= 25 * 81, "{cells} cells");
}
