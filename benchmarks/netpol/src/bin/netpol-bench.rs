//! moon-net's network-policy evaluator against its naive reference, on one seeded synthetic
//! cluster: may every pod reach every pod on TCP port 80 (`--port`)?
//!
//! The indexed side is [`Evaluator::new`] (which works out once which policies select each pod
//! and which pods each rule's peers match) followed by [`Evaluator::matrix`] over every ordered
//! pair of pods (each pod's rules walked once over sets of peers, 64 to a word): PODS × PODS
//! cells, 1,000,000 at the default size. The naive side is [`Evaluator::allowed_naive`], which decides rule by rule and
//! matches every selector anew; its evaluator is built once, outside its clock (it uses none of
//! the index). Each round runs both, the side that goes first alternating. After each round,
//! off the clocks, the same two evaluators are asked again for every cell the naive side
//! answered, with the whole [`Verdict`] ([`Evaluator::check`], [`Evaluator::check_naive`]: both
//! directions' decisions, the deciding rule, the policies at an end of tier, the tiers passed),
//! which must be identical and agree with the timed answers: any difference is printed and the
//! exit status is 1.
//!
//! By default the naive side answers the whole matrix too (a few seconds a round at the default
//! size) and every cell is compared. For sizes where that would take too long,
//! `--naive-sample N` has it check a fixed, seeded random sample of N distinct pairs, walked in
//! the matrix's row order, and scales its time per check to the whole matrix (the output says
//! so); only those cells are compared then. The indexed side always answers the whole matrix.
//!
//! The output also gives what building and dropping an explained answer costs (cloning a sample
//! of the verdicts): what `check` adds to `allowed`, for information.
//!
//! # The cluster
//!
//! Everything comes from `--seed` (a splitmix64 stream) and the sizes:
//!
//! - `--namespaces` namespaces (20) named `TEAM-ENV`, labelled `team` (7 teams) and `env`
//!   (prod, staging, dev); prod ones `monitoring=enabled`, the payments team's `pci=true`.
//!   Each runs 8 of a pool of 30 apps: 2 frontends, 4 backends, 2 data stores.
//! - `--pods` pods spread unevenly over the namespaces, each one of its namespace's apps, with
//!   labels `app`, `tier` (frontend, backend, data), `version` (v1, v2, v3, canary), often
//!   `team`, rarely `quarantine`; a service account named after the app (or `default`),
//!   labelled `tier` and `privileged`; an address 10.NS.x.y; named ports `http` (80 or 8080)
//!   and `metrics`, and `db` for data stores.
//!
//! # The policies
//!
//! `--policies` policies (200), as JSON objects pushed through [`PolicySet::push_object`] and
//! [`compile`], the path a user's YAML takes: about 5% Calico GlobalNetworkPolicies in a
//! `security` tier at order 100 (deny dev/staging into prod, some team pairs and namespace
//! pairs, egress to cloud metadata and PCI namespaces, quarantine; every one but quarantine
//! ends with `Pass`), about 60% Kubernetes NetworkPolicies (a default deny in every namespace,
//! with egress too in prod plus an allow to the namespace, prod namespaces and DNS; then allows
//! from the same app, frontends to backends on numbered, ranged and named ports, from
//! namespaces chosen by `matchExpressions`, from ipBlocks with `except`, from monitoring; egress
//! allows to data stores, team namespaces, the internet but the cluster, and DNS), and the rest
//! Calico NetworkPolicies in the default tier with selectors using `in`, `has()`, `!`, `&&`
//! and `||`, service accounts by name and by label, nets, network sets and explicit Deny and
//! Log rules. Two GlobalNetworkSets and a NetworkSet in three namespaces go with them.
//!
//! # The figures
//!
//! Each round prints both sides' times; then the medians, the share of allowed cells, and on the
//! last line the ratio of medians, naive / indexed, the index build counted on the indexed side
//! (target: at least 20×). Build with `--release`: `benchmarks/netpol.sh` does.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use moon_net::policy::{
    Cluster, Evaluator, NamedPort, Namespace, Peer, Pod, PolicySet, Protocol, Reason,
    ServiceAccount, Traffic, Verdict, compile,
};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(about = "moon-net's indexed policy evaluator against its naive rule-by-rule reference")]
struct Args {
    /// Pods of the synthetic cluster; the matrix is PODS x PODS.
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Policies (Kubernetes and Calico, network sets and tiers not counted).
    #[arg(long, default_value_t = 200)]
    policies: usize,
    /// Namespaces.
    #[arg(long, default_value_t = 20)]
    namespaces: usize,
    /// Seed of everything generated, and of the naive side's sample.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rounds; each runs both sides, the first side alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The TCP port checked.
    #[arg(long, default_value_t = 80)]
    port: u16,
    /// Pairs the naive side checks each round, a seeded sample of the matrix, its time scaled
    /// to the whole matrix (for sizes where the whole would take too long); 0: the whole
    /// matrix.
    #[arg(long, default_value_t = 0)]
    naive_sample: usize,
    /// Smoke mode: 200 pods, 50 policies, 1 round, the naive side over the whole matrix (well
    /// under a second).
    #[arg(long)]
    quick: bool,
}

/// splitmix64: small, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        // n is small: the bias of the modulo is far below anything measured here.
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` in 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `k` distinct items of `items`, in a random order.
    fn sample<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let k = k.min(pool.len());
        for i in 0..k {
            let j = i + self.below(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }
}

const TEAMS: [&str; 7] = [
    "payments", "search", "identity", "ml", "data", "web", "platform",
];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const FRONTENDS: [&str; 6] = [
    "web",
    "storefront",
    "admin-ui",
    "docs",
    "gateway",
    "landing",
];
const BACKENDS: [&str; 14] = [
    "api",
    "auth",
    "checkout",
    "cart",
    "catalog",
    "search-api",
    "recommender",
    "notifier",
    "billing",
    "orders",
    "inventory",
    "profile",
    "ledger",
    "scheduler",
];
const DATA_STORES: [&str; 10] = [
    "postgres",
    "redis",
    "kafka",
    "elasticsearch",
    "minio",
    "etcd",
    "clickhouse",
    "zookeeper",
    "memcached",
    "rabbitmq",
];
const TIERS: [&str; 3] = ["frontend", "backend", "data"];
const KUBERNETES_API: &str = "networking.k8s.io/v1";
const CALICO_API: &str = "projectcalico.org/v3";
const SECURITY_TIER: &str = "security";

/// An app of the pool: its name and tier (an index of [`TIERS`]).
#[derive(Clone, Copy)]
struct App {
    name: &'static str,
    tier: usize,
}

fn apps_of(names: &[&'static str], tier: usize) -> Vec<App> {
    names.iter().map(|&name| App { name, tier }).collect()
}

/// A generated namespace, as the policy generator sees it.
struct NamespaceInfo {
    name: String,
    team: &'static str,
    env: &'static str,
    apps: Vec<App>,
}

/// How many of each the generator made.
#[derive(Default)]
struct Counts {
    kubernetes: usize,
    calico_namespaced: usize,
    calico_global: usize,
    network_sets: usize,
}

/// The synthetic cluster and the policy objects over it.
struct World {
    cluster: Cluster,
    objects: Vec<Value>,
    counts: Counts,
}

fn generate(pods: usize, policies: usize, namespaces: usize, seed: u64) -> World {
    let mut rng = Rng::new(seed);
    let frontends = apps_of(&FRONTENDS, 0);
    let backends = apps_of(&BACKENDS, 1);
    let data_stores = apps_of(&DATA_STORES, 2);

    let mut spaces = Vec::new();
    for i in 0..namespaces {
        let (team, env) = (TEAMS[i % TEAMS.len()], ENVS[(i / TEAMS.len()) % ENVS.len()]);
        let name = if i < TEAMS.len() * ENVS.len() {
            format!("{team}-{env}")
        } else {
            format!("{team}-{env}-{i}")
        };
        let mut apps = rng.sample(&frontends, 2);
        apps.extend(rng.sample(&backends, 4));
        apps.extend(rng.sample(&data_stores, 2));
        spaces.push(NamespaceInfo {
            name,
            team,
            env,
            apps,
        });
    }
    let namespace_objects = spaces
        .iter()
        .map(|ns| {
            let mut labels = BTreeMap::from([
                ("team".to_owned(), ns.team.to_owned()),
                ("env".to_owned(), ns.env.to_owned()),
            ]);
            if ns.env == "prod" {
                labels.insert("monitoring".into(), "enabled".into());
            }
            if ns.team == "payments" {
                labels.insert("pci".into(), "true".into());
            }
            Namespace {
                name: ns.name.clone(),
                labels,
            }
        })
        .collect();

    // Pods, spread unevenly: namespace k weighs 1 to 4.
    let weights: Vec<usize> = (0..namespaces).map(|k| 1 + k % 4).collect();
    let total_weight: usize = weights.iter().sum();
    let mut pod_list = Vec::with_capacity(pods);
    let mut accounts = BTreeMap::new();
    for i in 0..pods {
        let mut at = rng.below(total_weight);
        let mut k = 0;
        while at >= weights[k] {
            at -= weights[k];
            k += 1;
        }
        let ns = &spaces[k];
        let app = *rng.pick(&ns.apps);
        let version = match rng.below(10) {
            0..=3 => "v1",
            4..=6 => "v2",
            7..=8 => "v3",
            _ => "canary",
        };
        let mut labels = BTreeMap::from([
            ("app".to_owned(), app.name.to_owned()),
            ("tier".to_owned(), TIERS[app.tier].to_owned()),
            ("version".to_owned(), version.to_owned()),
        ]);
        if rng.percent(70) {
            labels.insert("team".into(), ns.team.into());
        }
        if rng.percent(1) {
            labels.insert("quarantine".into(), "true".into());
        }
        let service_account = rng.percent(70).then(|| app.name.to_owned());
        if service_account.is_some() {
            accounts.insert((ns.name.clone(), app.name), app.tier);
        }
        let port = |name: &str, port: u16| NamedPort {
            name: name.into(),
            port,
            protocol: Protocol::Tcp,
        };
        let mut ports = vec![port("metrics", 9090)];
        if app.tier == 2 {
            ports.push(port("db", *rng.pick(&[5432, 6379, 9092])));
        } else {
            ports.push(port("http", if rng.percent(65) { 80 } else { 8080 }));
        }
        pod_list.push(Pod {
            namespace: ns.name.clone(),
            name: format!("{}-{i:05}", app.name),
            labels,
            service_account,
            ip: Some(IpAddr::V4(Ipv4Addr::new(
                10,
                (k + 1) as u8,
                (i >> 8) as u8,
                i as u8,
            ))),
            ports,
        });
    }
    let service_accounts = accounts
        .into_iter()
        .map(|((namespace, name), tier)| ServiceAccount {
            namespace,
            name: name.to_owned(),
            labels: BTreeMap::from([
                ("tier".to_owned(), TIERS[tier].to_owned()),
                ("privileged".to_owned(), (tier == 2).to_string()),
            ]),
        })
        .collect();

    let mut counts = Counts::default();
    let mut objects = vec![json!({
        "apiVersion": CALICO_API, "kind": "Tier",
        "metadata": {"name": SECURITY_TIER},
        "spec": {"order": 100}
    })];
    objects.extend(network_sets(&spaces, &mut counts));

    let global = if policies == 0 {
        0
    } else {
        (policies * 5 / 100).max(1)
    };
    let kubernetes = (policies * 60 / 100).min(policies - global);
    let calico = policies - global - kubernetes;
    for j in 0..global {
        objects.push(security_policy(&mut rng, j, &spaces));
        counts.calico_global += 1;
    }
    objects.extend(kubernetes_policies(&mut rng, kubernetes, &spaces));
    counts.kubernetes = kubernetes;
    for j in 0..calico {
        objects.push(calico_policy(&mut rng, j, &spaces));
        counts.calico_namespaced += 1;
    }
    World {
        cluster: Cluster {
            namespaces: namespace_objects,
            pods: pod_list,
            service_accounts,
        },
        objects,
        counts,
    }
}

fn network_sets(spaces: &[NamespaceInfo], counts: &mut Counts) -> Vec<Value> {
    let mut out = vec![
        json!({
            "apiVersion": CALICO_API, "kind": "GlobalNetworkSet",
            "metadata": {"name": "external-apis", "labels": {"role": "external-api"}},
            "spec": {"nets": ["52.94.0.0/16", "54.239.0.0/17", "2600:1f00::/24"]}
        }),
        json!({
            "apiVersion": CALICO_API, "kind": "GlobalNetworkSet",
            "metadata": {"name": "cloud-metadata", "labels": {"role": "metadata"}},
            "spec": {"nets": ["169.254.169.254/32"]}
        }),
    ];
    for (k, ns) in spaces.iter().take(3).enumerate() {
        out.push(json!({
            "apiVersion": CALICO_API, "kind": "NetworkSet",
            "metadata": {"name": "backups", "namespace": ns.name, "labels": {"role": "backup"}},
            "spec": {"nets": [format!("10.200.{k}.0/24")]}
        }));
    }
    counts.network_sets = out.len();
    out
}

/// The `j`th GlobalNetworkPolicy of the security tier: denies, then `Pass` for the rest.
fn security_policy(rng: &mut Rng, j: usize, spaces: &[NamespaceInfo]) -> Value {
    let order = 10 * (j + 1);
    let (name, spec) = match j % 5 {
        0 => {
            let (from, to) = [("dev", "prod"), ("staging", "prod"), ("dev", "staging")][j / 5 % 3];
            (
                format!("deny-{from}-to-{to}-{j}"),
                json!({
                    "namespaceSelector": format!("env == '{to}'"),
                    "types": ["Ingress"],
                    "ingress": [
                        {"action": "Deny",
                         "source": {"namespaceSelector": format!("env == '{from}'")}},
                        {"action": "Pass"}
                    ]
                }),
            )
        }
        1 => {
            let pair = rng.sample(&TEAMS, 2);
            (
                format!("deny-team-{}-to-{}", pair[0], pair[1]),
                json!({
                    "namespaceSelector": format!("team == '{}'", pair[1]),
                    "types": ["Ingress"],
                    "ingress": [
                        {"action": "Deny", "source": {
                            "namespaceSelector": format!("team == '{}' && env != 'dev'", pair[0])
                        }},
                        {"action": "Pass"}
                    ]
                }),
            )
        }
        2 => {
            let a = &spaces[rng.below(spaces.len())].name;
            let b = &spaces[rng.below(spaces.len())].name;
            (
                format!("deny-ns-{j}"),
                json!({
                    "selector": format!("projectcalico.org/namespace == '{b}'"),
                    "types": ["Ingress", "Egress"],
                    "ingress": [
                        {"action": "Deny", "source": {
                            "namespaceSelector": format!("kubernetes.io/metadata.name == '{a}'")
                        }},
                        {"action": "Pass"}
                    ],
                    "egress": [
                        {"action": "Deny", "destination": {
                            "selector": format!("projectcalico.org/namespace == '{a}' && has(app)")
                        }},
                        {"action": "Pass"}
                    ]
                }),
            )
        }
        3 => (
            format!("egress-guard-{j}"),
            json!({
                "namespaceSelector": "env in {'dev', 'staging'}",
                "types": ["Egress"],
                "egress": [
                    {"action": "Deny", "destination": {"nets": ["169.254.169.254/32"]}},
                    {"action": "Deny", "destination": {"selector": "role == 'metadata'"}},
                    {"action": "Deny", "destination": {"namespaceSelector": "has(pci)"}},
                    {"action": "Pass"}
                ]
            }),
        ),
        _ => (
            format!("quarantine-{j}"),
            json!({
                "selector": "has(quarantine) && quarantine == 'true'",
                "types": ["Ingress", "Egress"],
                "ingress": [{"action": "Log"}, {"action": "Deny"}],
                "egress": [{"action": "Deny"}]
            }),
        ),
    };
    let mut spec = spec;
    spec["tier"] = json!(SECURITY_TIER);
    spec["order"] = json!(order);
    json!({
        "apiVersion": CALICO_API, "kind": "GlobalNetworkPolicy",
        "metadata": {"name": format!("{SECURITY_TIER}.{name}")},
        "spec": spec
    })
}

fn kubernetes_policy(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": KUBERNETES_API, "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec
    })
}

/// `count` Kubernetes NetworkPolicies: default denies first, then allows.
fn kubernetes_policies(rng: &mut Rng, count: usize, spaces: &[NamespaceInfo]) -> Vec<Value> {
    let mut out = Vec::new();
    for ns in spaces {
        if out.len() == count {
            return out;
        }
        let prod = ns.env == "prod";
        let types: &[&str] = if prod {
            &["Ingress", "Egress"]
        } else {
            &["Ingress"]
        };
        out.push(kubernetes_policy(
            &ns.name,
            "default-deny",
            json!({"podSelector": {}, "policyTypes": types}),
        ));
        if prod && out.len() < count {
            out.push(kubernetes_policy(
                &ns.name,
                "allow-egress-in-namespace",
                json!({
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [{"podSelector": {}}]},
                        {"to": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]},
                        {"ports": [{"protocol": "UDP", "port": 53},
                                   {"protocol": "TCP", "port": 53}]}
                    ]
                }),
            ));
        }
    }
    let mut n = 0;
    while out.len() < count {
        n += 1;
        let ns = &spaces[rng.below(spaces.len())];
        let app = *rng.pick(&ns.apps);
        let (name, spec) = match rng.below(20) {
            0..=4 => (
                format!("allow-same-app-{n}"),
                json!({
                    "podSelector": {"matchLabels": {"app": app.name}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": app.name}}}]}]
                }),
            ),
            5..=8 => (
                format!("allow-frontend-to-backend-{n}"),
                json!({
                    "podSelector": {"matchLabels": {"tier": "backend"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{
                        "from": [{"podSelector": {"matchLabels": {"tier": "frontend"}}}],
                        "ports": [
                            {"protocol": "TCP", "port": 80},
                            {"port": "http"},
                            {"protocol": "TCP", "port": 8080, "endPort": 8090}
                        ]
                    }]
                }),
            ),
            9..=12 => {
                let teams = rng.sample(&TEAMS, 2);
                (
                    format!("allow-{}-from-teams-{n}", app.name),
                    json!({
                        "podSelector": {"matchLabels": {"app": app.name}},
                        "ingress": [{
                            "from": [{
                                "namespaceSelector": {"matchExpressions": [
                                    {"key": "team", "operator": "In", "values": teams},
                                    {"key": "env", "operator": "NotIn", "values": ["dev"]}
                                ]},
                                "podSelector": {"matchExpressions": [
                                    {"key": "tier", "operator": "In",
                                     "values": ["frontend", "backend"]},
                                    {"key": "version", "operator": "Exists"},
                                    {"key": "quarantine", "operator": "DoesNotExist"}
                                ]}
                            }],
                            "ports": [{"port": "http"}, {"port": 80}]
                        }]
                    }),
                )
            }
            13..=14 => {
                let except = rng.sample(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 2);
                (
                    format!("allow-cluster-cidr-{n}"),
                    json!({
                        "podSelector": {"matchLabels": {"tier": "frontend"}},
                        "ingress": [{
                            "from": [{"ipBlock": {
                                "cidr": "10.0.0.0/8",
                                "except": except
                                    .iter()
                                    .map(|k| format!("10.{k}.0.0/16"))
                                    .collect::<Vec<_>>()
                            }}],
                            "ports": [{"protocol": "TCP", "port": 80},
                                      {"protocol": "TCP", "port": 443}]
                        }]
                    }),
                )
            }
            15..=17 => {
                let team = rng.pick(&TEAMS);
                (
                    format!("allow-{}-egress-{n}", app.name),
                    json!({
                        "podSelector": {"matchLabels": {"app": app.name}},
                        "policyTypes": ["Egress"],
                        "egress": [
                            {"to": [{"podSelector": {"matchLabels": {"tier": "data"}}}],
                             "ports": [{"port": "db"}, {"port": 5432}, {"port": 6379}]},
                            {"to": [{"namespaceSelector": {"matchLabels": {"team": team}}}]},
                            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                                 "except": ["10.0.0.0/8", "169.254.0.0/16"]}}],
                             "ports": [{"port": 443}]},
                            {"ports": [{"protocol": "UDP", "port": 53}]}
                        ]
                    }),
                )
            }
            _ => (
                format!("allow-monitoring-{n}"),
                json!({
                    "podSelector": {},
                    "ingress": [{
                        "from": [{
                            "namespaceSelector": {"matchLabels": {"monitoring": "enabled"}},
                            "podSelector": {"matchLabels": {"tier": "backend"}}
                        }],
                        "ports": [{"port": "metrics"}, {"port": 9090}]
                    }]
                }),
            ),
        };
        out.push(kubernetes_policy(&ns.name, &name, spec));
    }
    out
}

/// The `j`th Calico NetworkPolicy, in the default tier.
fn calico_policy(rng: &mut Rng, j: usize, spaces: &[NamespaceInfo]) -> Value {
    let ns = &spaces[rng.below(spaces.len())];
    let apps = rng.sample(&ns.apps, 2);
    let (a, b) = (apps[0].name, apps[1].name);
    let (name, mut spec) = match j % 5 {
        0 => (
            format!("{a}-{b}-no-canary-{j}"),
            json!({
                "selector": format!("app in {{'{a}', '{b}'}} && has(version)"),
                "types": ["Ingress"],
                "ingress": [
                    {"action": "Deny", "source": {"selector": "version == 'canary'"}},
                    {"action": "Allow", "protocol": "TCP",
                     "source": {"selector": format!("tier == 'frontend' || app == '{a}'")},
                     "destination": {"ports": [80, "http"]}}
                ]
            }),
        ),
        1 => (
            format!("data-access-{j}"),
            json!({
                "selector": "tier == 'data'",
                "ingress": [
                    {"action": "Allow", "protocol": "TCP",
                     "source": {"selector": "has(app) && !(tier == 'frontend')"},
                     "destination": {"ports": ["db", 5432, "80:90"]}},
                    {"action": "Allow", "source": {"selector": "role == 'backup'"}},
                    {"action": "Deny"}
                ]
            }),
        ),
        2 => {
            let teams = rng.sample(&TEAMS, 2);
            (
                format!("by-account-{j}"),
                json!({
                    "selector": "!has(quarantine) && version != 'v1'",
                    "ingress": [
                        {"action": "Allow", "source": {"serviceAccounts": {"names": [a, b]}}},
                        {"action": "Allow", "source": {
                            "namespaceSelector": format!(
                                "env == 'prod' && team in {{'{}', '{}'}}", teams[0], teams[1]),
                            "selector": "all()"
                        }}
                    ]
                }),
            )
        }
        3 => {
            let k = 1 + rng.below(spaces.len());
            let backends = rng.sample(&ns.apps[2..6], 2);
            (
                format!("backend-egress-{j}"),
                json!({
                    "selector": format!(
                        "tier == 'backend' && app in {{'{}', '{}'}}",
                        backends[0].name, backends[1].name
                    ),
                    "types": ["Egress"],
                    "egress": [
                        {"action": "Allow", "destination": {"selector": "role == 'external-api'"}},
                        {"action": "Allow", "protocol": "TCP",
                         "destination": {"nets": [format!("10.{k}.0.0/16")],
                                         "notNets": [format!("10.{k}.0.0/24")],
                                         "ports": [80, 443, "http"]}},
                        {"action": "Allow", "destination": {"selector": "tier == 'data'"}},
                        {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}
                    ]
                }),
            )
        }
        _ => {
            let team = rng.pick(&TEAMS);
            (
                format!("{a}-or-new-backends-{j}"),
                json!({
                    "selector": format!(
                        "app == '{a}' || (tier == 'backend' && version in {{'v2', 'v3'}})"),
                    "ingress": [
                        {"action": "Allow", "source": {
                            "selector": "tier in {'frontend', 'backend'}",
                            "notSelector": "version == 'canary'"
                        }},
                        {"action": "Allow", "source": {
                            "namespaceSelector": format!("team == '{team}'"),
                            "serviceAccounts": {"selector": "privileged != 'true'"}
                        }},
                        {"action": "Log", "source": {"selector": "all()"}}
                    ]
                }),
            )
        }
    };
    if rng.percent(80) {
        spec["order"] = json!(*rng.pick(&[100, 200, 500, 900]));
    }
    json!({
        "apiVersion": CALICO_API, "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns.name},
        "spec": spec
    })
}

/// `k` distinct cells of an `n` × `n` matrix (all of them when `k` is 0 or too many), in the
/// matrix's row order.
fn sample_pairs(n: usize, k: usize, seed: u64) -> Vec<(usize, usize)> {
    let cells = n * n;
    if k == 0 || k >= cells {
        return (0..cells).map(|c| (c / n, c % n)).collect();
    }
    let mut rng = Rng::new(seed ^ 0x5a4d_504c_4520_6e61);
    let mut taken = vec![false; cells];
    let mut left = k;
    while left > 0 {
        let c = rng.below(cells);
        if !taken[c] {
            taken[c] = true;
            left -= 1;
        }
    }
    (0..cells)
        .filter(|&c| taken[c])
        .map(|c| (c / n, c % n))
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

const ALLOWED: u8 = 1;
const EGRESS_ALLOWED: u8 = 2;
const INGRESS_ALLOWED: u8 = 4;
const EGRESS_SELECTED: u8 = 8;
const INGRESS_SELECTED: u8 = 16;

/// What the share figures need of a verdict, in a byte.
fn cell_flags(verdict: &Verdict) -> u8 {
    let selected = |reason: &Reason| !matches!(reason, Reason::NotIsolated | Reason::NotAPod);
    let mut flags = 0;
    for (set, bit) in [
        (verdict.allowed, ALLOWED),
        (verdict.egress.allowed, EGRESS_ALLOWED),
        (verdict.ingress.allowed, INGRESS_ALLOWED),
        (selected(&verdict.egress.reason), EGRESS_SELECTED),
        (selected(&verdict.ingress.reason), INGRESS_SELECTED),
    ] {
        if set {
            flags |= bit;
        }
    }
    flags
}

/// Seconds per verdict to build and drop verdicts like `verdicts`: each is cloned and the clone
/// dropped, 16 times in a row, so that what is copied is in the cache, as the policies' names
/// and tiers that the evaluator copies are: the part of a check both sides share, whatever
/// their walk to the answer costs.
fn answer_floor(verdicts: &[Verdict]) -> f64 {
    const TIMES: usize = 16;
    if verdicts.is_empty() {
        return 0.0;
    }
    let started = Instant::now();
    for verdict in verdicts {
        for _ in 0..TIMES {
            std::hint::black_box(std::hint::black_box(verdict).clone());
        }
    }
    secs(started.elapsed()) / (verdicts.len() * TIMES) as f64
}

/// Times of one round.
struct Round {
    /// `Evaluator::new`.
    index: f64,
    /// `Evaluator::new` and the whole matrix with `check`.
    indexed: f64,
    /// `check_naive` over the sample.
    naive: f64,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.quick {
        args.pods = 200;
        args.policies = 50;
        args.rounds = 1;
        args.naive_sample = 0;
    }
    if args.pods == 0 || args.rounds == 0 || args.namespaces == 0 {
        eprintln!("netpol: --pods, --rounds and --namespaces must be at least 1");
        return ExitCode::from(2);
    }
    let world = generate(args.pods, args.policies, args.namespaces, args.seed);
    let started = Instant::now();
    let mut set = PolicySet::default();
    let objects = world.objects.len();
    for (i, object) in world.objects.into_iter().enumerate() {
        if let Err(e) = set.push_object(object, i) {
            eprintln!("netpol: generated object {i} does not read: {e}");
            return ExitCode::from(2);
        }
    }
    let compiled = match compile(&set) {
        Ok(compiled) => compiled,
        Err(e) => {
            eprintln!("netpol: generated policies do not compile: {e}");
            return ExitCode::from(2);
        }
    };
    let parsed = started.elapsed();
    assert_eq!(compiled.policy_count(), args.policies, "policies generated");
    let c = &world.counts;
    println!(
        "netpol: {} pods in {} namespaces, {} service accounts; {} policies ({} Kubernetes \
         NetworkPolicies, {} Calico NetworkPolicies, {} Calico GlobalNetworkPolicies in tier \
         {SECURITY_TIER}), {} network sets; seed {}; TCP port {}",
        thousands(args.pods),
        args.namespaces,
        world.cluster.service_accounts.len(),
        args.policies,
        c.kubernetes,
        c.calico_namespaced,
        c.calico_global,
        c.network_sets,
        args.seed,
        args.port,
    );
    println!(
        "netpol: {objects} objects read (push_object) and compiled in {:.1} ms, once, outside \
         both clocks",
        parsed.as_secs_f64() * 1e3
    );

    let n = args.pods;
    let cells = n * n;
    let traffic = Traffic::tcp(args.port);
    let pairs = sample_pairs(n, args.naive_sample, args.seed);
    let sampled = pairs.len() < cells;
    if sampled {
        println!(
            "netpol: the naive side checks a seeded sample of {} of the {} pairs each round, its \
             time scaled per check to the whole matrix; those cells are compared exactly",
            thousands(pairs.len()),
            thousands(cells)
        );
    } else {
        println!("netpol: the naive side checks the whole matrix; every cell is compared exactly");
    }
    let naive = match Evaluator::new(world.cluster.clone(), compiled.clone()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("netpol: the evaluator refuses the cluster: {e}");
            return ExitCode::from(2);
        }
    };
    // On the clocks each side answers the matrix, allowed or not per cell (`matrix`;
    // `allowed_naive` cell by cell). After each round, off the clocks, the same
    // two evaluators are asked again for the whole verdicts of the sampled cells (`check`,
    // `check_naive`; both are deterministic), which are compared, and so are the timed answers.
    let everyone: Vec<Peer> = (0..n).map(Peer::Pod).collect();
    let mut answers = vec![false; cells];
    let mut naive_answers = vec![false; pairs.len()];
    let mut flags = vec![0u8; cells];
    let mut rounds = Vec::new();
    let mut mismatches = 0usize;
    let mut floor = 0.0;
    for round in 0..args.rounds {
        let indexed_first = round % 2 == 0;
        let (mut index, mut indexed, mut naive_time) = (0.0, 0.0, 0.0);
        let mut evaluator = None;
        for side in 0..2 {
            if (side == 0) == indexed_first {
                let (cluster, policies) = (world.cluster.clone(), compiled.clone());
                let started = Instant::now();
                let built = match Evaluator::new(cluster, policies) {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("netpol: the evaluator refuses the cluster: {e}");
                        return ExitCode::from(2);
                    }
                };
                index = secs(started.elapsed());
                let matrix = built.matrix(&everyone, &everyone, traffic);
                for (from, row) in matrix.iter().enumerate() {
                    answers[from * n..(from + 1) * n].copy_from_slice(row);
                }
                indexed = secs(started.elapsed());
                evaluator = Some(built);
            } else {
                let started = Instant::now();
                for (k, &(from, to)) in pairs.iter().enumerate() {
                    naive_answers[k] = naive.allowed_naive(Peer::Pod(from), Peer::Pod(to), traffic);
                }
                naive_time = secs(started.elapsed());
            }
        }
        let evaluator = evaluator.expect("the indexed side ran");
        let last = round + 1 == args.rounds;
        let mut kept = Vec::new();
        let stride = (pairs.len() / 50_000).max(1);
        let mut differ = 0;
        for (k, &(from, to)) in pairs.iter().enumerate() {
            let fast = evaluator.check(Peer::Pod(from), Peer::Pod(to), traffic);
            let slow = naive.check_naive(Peer::Pod(from), Peer::Pod(to), traffic);
            flags[from * n + to] = cell_flags(&fast);
            if fast != slow
                || answers[from * n + to] != fast.allowed
                || naive_answers[k] != slow.allowed
            {
                differ += 1;
                if mismatches + differ <= 5 {
                    let (a, b) = (
                        naive.peer_name(Peer::Pod(from)),
                        naive.peer_name(Peer::Pod(to)),
                    );
                    eprintln!(
                        "netpol: round {}: cell {a} -> {b} differs\n  indexed: {}\n  naive:   {}",
                        round + 1,
                        fast.explain(&a, &b).replace('\n', "\n  "),
                        slow.explain(&a, &b).replace('\n', "\n  "),
                    );
                }
            }
            if last && k % stride == 0 {
                kept.push(fast);
            }
        }
        if last {
            floor = answer_floor(&kept);
        }
        mismatches += differ;
        let per_check = naive_time / pairs.len() as f64;
        let scaled = per_check * cells as f64;
        println!(
            "round {} ({} first): indexed {indexed:.3} s (index {index:.3} s, {} checks {:.3} s, \
             {:.2} us/check); naive {} checks {naive_time:.3} s ({:.2} us/check{}); {}",
            round + 1,
            if indexed_first { "indexed" } else { "naive" },
            thousands(cells),
            indexed - index,
            (indexed - index) / cells as f64 * 1e6,
            thousands(pairs.len()),
            per_check * 1e6,
            if sampled {
                format!(", {scaled:.2} s for the whole matrix")
            } else {
                String::new()
            },
            if differ == 0 {
                format!("{} cells identical", thousands(pairs.len()))
            } else {
                format!(
                    "{} of {} cells DIFFER",
                    thousands(differ),
                    thousands(pairs.len())
                )
            },
        );
        rounds.push(Round {
            index,
            indexed,
            naive: scaled,
        });
    }

    let count = |bit: u8, set: bool| flags.iter().filter(|&&f| (f & bit != 0) == set).count();
    let share = |k: usize| 100.0 * k as f64 / cells as f64;
    let allowed = count(ALLOWED, true);
    println!(
        "cells: {:.1}% allowed ({} of {}); egress denied {:.1}%, ingress denied {:.1}%; a policy \
         selects the source for egress in {:.1}%, the destination for ingress in {:.1}%",
        share(allowed),
        thousands(allowed),
        thousands(cells),
        share(count(EGRESS_ALLOWED, false)),
        share(count(INGRESS_ALLOWED, false)),
        share(count(EGRESS_SELECTED, true)),
        share(count(INGRESS_SELECTED, true)),
    );
    let column = |f: fn(&Round) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let (index, indexed, naive_total) = (
        column(|r| r.index),
        column(|r| r.indexed),
        column(|r| r.naive),
    );
    let ratio = naive_total / indexed;
    let matrix_only = naive_total / (indexed - index);
    println!(
        "medians of {} rounds: indexed {indexed:.3} s (index {index:.3} s + matrix {:.3} s), \
         naive {naive_total:.3} s{}; naive / indexed {ratio:.1}x, {matrix_only:.1}x without the \
         index build",
        args.rounds,
        indexed - index,
        if sampled {
            " (scaled from the sample)"
        } else {
            ""
        },
    );
    println!(
        "explanations: building and dropping a verdict (cloning up to 50,000 of them, 16 times \
         each) takes {:.3} us, {:.3} s for the whole matrix: what check adds to allowed",
        floor * 1e6,
        floor * cells as f64,
    );
    if mismatches > 0 {
        eprintln!(
            "netpol: {} compared cells differ between check and check_naive",
            thousands(mismatches)
        );
    }
    println!(
        "netpol: indexed {indexed:.2} s, naive {naive_total:.2} s{}, ratio {ratio:.1}x (target >= \
         20x): {}{}",
        if sampled { " (sampled)" } else { "" },
        if ratio >= 20.0 { "met" } else { "NOT met" },
        if mismatches > 0 {
            format!("; {} cells DIFFER", thousands(mismatches))
        } else {
            String::new()
        },
    );
    if mismatches > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
