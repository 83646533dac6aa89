//! How each framework's replicas find one another: the environment variables
//! moon sets for every replica, the ports a job needs, and the helper roles
//! moon adds to a job. Pure functions of the spec and the replicas' addresses,
//! shared by the local backend and Kubernetes.
//!
//! Every replica gets moon's own variables:
//!
//! | variable             | value                                                  |
//! |----------------------|--------------------------------------------------------|
//! | `MOON_JOB`           | the job's name                                         |
//! | `MOON_TENANT`        | the job's tenant                                       |
//! | `MOON_FRAMEWORK`     | `pytorch`, `tensorflow`, ...                           |
//! | `MOON_ROLE`          | the replica's role (`worker`)                          |
//! | `MOON_REPLICA_INDEX` | the replica's index within its role (`1`)              |
//! | `MOON_REPLICA`       | role and index (`worker-1`)                            |
//! | `MOON_WORLD_SIZE`    | replicas over all the job's roles                      |
//! | `MOON_RANK`          | a rank over all replicas, counting roles in spec order |
//!
//! Helper roles moon adds itself ([`hidden_roles`]) get all of these but
//! `MOON_RANK`, and are not counted in `MOON_WORLD_SIZE`: ranks belong to the
//! replicas the user asked for.
//!
//! Then each framework's own convention:
//!
//! - **pytorch** (`torch.distributed`'s `env://` and `torchrun`): `MASTER_ADDR`,
//!   `MASTER_PORT` (master-0's address), `WORLD_SIZE` (master and workers),
//!   `RANK` (0 for the master, 1 + index for workers), `LOCAL_RANK=0`, and for
//!   `torchrun` `PET_MASTER_ADDR`, `PET_MASTER_PORT`, `PET_NNODES`,
//!   `PET_NODE_RANK`, `PET_NPROC_PER_NODE=1`.
//! - **tensorflow**: `TF_CONFIG`, as JSON with sorted keys:
//!   `{"cluster":{"chief":[..],"ps":[..],"worker":[..]},"task":{"index":i,"type":role}}`.
//!   Addresses are `host:port` of each replica's own port. The evaluator has a
//!   task but, as TensorFlow requires, is not in the cluster.
//! - **xgboost**: workers get `DMLC_TRACKER_URI`, `DMLC_TRACKER_PORT` (the
//!   tracker moon runs), `DMLC_NUM_WORKER` and `DMLC_TASK_ID` (the worker's
//!   index). XGBoost 3 reads none of them itself; `moon.xgboost.communicator_args()`
//!   turns them into the arguments of `xgboost.collective.CommunicatorContext`.
//! - **mxnet** (ps-lite): `DMLC_ROLE`, `DMLC_PS_ROOT_URI`, `DMLC_PS_ROOT_PORT`
//!   (scheduler-0's address), `DMLC_NUM_SERVER`, `DMLC_NUM_WORKER`. Servers and
//!   workers whose host is an IP address also get `DMLC_NODE_HOST`; when the
//!   scheduler's host is a DNS name every replica gets `DMLC_USE_KUBERNETES=1`
//!   (see [`replica_env`] for why).
//! - **spark**: Spark reads no environment variable for where its driver is, so
//!   moon uses its own names: `MOON_SPARK_DRIVER_HOST`, `MOON_SPARK_DRIVER_PORT`
//!   and `MOON_SPARK_DRIVER_URL` (`spark://host:port`), all for driver-0, meant
//!   for `--conf spark.driver.host=...`, `--conf spark.driver.port=...` or a
//!   standalone master started by the driver replica.
//! - **caffe**, **custom**: moon's variables only.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::spec::{Framework, Job, Role};

/// The hidden role that runs XGBoost's tracker, and the name of its port.
pub const TRACKER: &str = "tracker";

/// The host of every replica on the local backend.
pub const LOCAL_HOST: &str = "127.0.0.1";

/// The roles whose replicas TensorFlow lists in `TF_CONFIG`'s cluster.
const TF_CLUSTER_ROLES: [&str; 3] = ["chief", "worker", "ps"];

/// The roles TensorFlow gives a port: the cluster's and the evaluator's.
const TF_ROLES: [&str; 4] = ["chief", "worker", "ps", "evaluator"];

/// The name of a replica's own port: `<role>-<index>`.
pub fn port_name(role: &str, index: u32) -> String {
    format!("{role}-{index}")
}

/// The ports a job needs, each named `<role>-<index>` for a replica's own
/// port or [`TRACKER`] for XGBoost's tracker. The backend allocates one port
/// per name and hands them to [`Endpoints::new`].
///
/// | framework  | ports                                            |
/// |------------|--------------------------------------------------|
/// | pytorch    | `master-0`                                       |
/// | tensorflow | every chief, worker, ps and evaluator replica's  |
/// | xgboost    | `tracker`                                        |
/// | mxnet      | `scheduler-0`                                    |
/// | spark      | `driver-0`                                       |
/// | caffe      | none                                             |
/// | custom     | none                                             |
pub fn port_names(job: &Job) -> Vec<String> {
    match job.framework {
        Framework::Pytorch => vec![port_name("master", 0)],
        Framework::Tensorflow => job
            .roles
            .iter()
            .filter(|role| TF_ROLES.contains(&role.name.as_str()))
            .flat_map(|role| (0..role.replicas).map(|index| port_name(&role.name, index)))
            .collect(),
        Framework::Xgboost => vec![TRACKER.to_string()],
        Framework::Mxnet => vec![port_name("scheduler", 0)],
        Framework::Spark => vec![port_name("driver", 0)],
        Framework::Caffe | Framework::Custom => Vec::new(),
    }
}

/// Ports that must be listening before the job's own replicas start: the
/// XGBoost tracker's, because workers give up on a tracker that is not there
/// yet after a few seconds of retries. Hidden roles start first; the rest wait.
pub fn startup_ports(job: &Job) -> Vec<String> {
    match job.framework {
        Framework::Xgboost => vec![TRACKER.to_string()],
        _ => Vec::new(),
    }
}

/// The roles moon adds to a job to complete its rendezvous, run like the
/// job's own roles but never named in its spec.
///
/// For xgboost: one replica of [`TRACKER`], which runs XGBoost's
/// `RabitTracker` for the workers, listening on `tracker_host:tracker_port`.
/// `tracker_host` is the address the tracker binds: [`LOCAL_HOST`] on the
/// local backend, `0.0.0.0` (or the pod's IP) on Kubernetes. The workers find
/// it through the endpoints' host and port for [`TRACKER`] instead.
///
/// The tracker runs the workers' Python (their `command[0]` when its file name
/// starts with `python`, else `python3`), in the workers' directory and with
/// their environment, so that it imports the same `xgboost`. It prints the port
/// it listens on, then exits 0 once every worker has shut down.
///
/// Empty for every other framework.
pub fn hidden_roles(job: &Job, tracker_host: &str, tracker_port: u16) -> Vec<Role> {
    if job.framework != Framework::Xgboost {
        return Vec::new();
    }
    let worker = job.roles.iter().find(|role| role.name == "worker");
    let python = worker.map_or("python3", python_of);
    let program = tracker_program(replicas(job, "worker"), tracker_host, tracker_port);
    let mut tracker = Role::new(TRACKER, 1, &[python, "-c", &program]);
    if let Some(worker) = worker {
        tracker.env = worker.env.clone();
        tracker.working_dir = worker.working_dir.clone();
    }
    vec![tracker]
}

/// The interpreter a role's command runs, if it names one.
fn python_of(role: &Role) -> &str {
    match role.command.first() {
        Some(program)
            if Path::new(program)
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("python")) =>
        {
            program
        }
        _ => "python3",
    }
}

/// The tracker's program. Workers are sorted by task ID rather than by host
/// so that ranks follow `DMLC_TASK_ID` even when all workers share a host;
/// `moon.xgboost.communicator_args()` pads the IDs so that XGBoost's string
/// comparison orders them as numbers. No timeout: the job's deadline bounds it.
fn tracker_program(workers: u32, host: &str, port: u16) -> String {
    // A JSON string is also a valid Python string literal.
    let host = serde_json::to_string(host).expect("a string serializes");
    format!(
        "from xgboost.tracker import RabitTracker\n\
         tracker = RabitTracker(n_workers={workers}, host_ip={host}, port={port}, sortby=\"task\")\n\
         tracker.start()\n\
         print(tracker.worker_args()[\"dmlc_tracker_port\"], flush=True)\n\
         tracker.wait_for()\n"
    )
}

/// The host of replica `index` of `role`.
type Hosts = Arc<dyn Fn(&str, u32) -> String + Send + Sync>;

/// Every replica's address: a host per replica and a port per port name.
///
/// On the local backend every host is [`LOCAL_HOST`] ([`Endpoints::local`]);
/// on Kubernetes hosts are the replicas' DNS names.
#[derive(Clone)]
pub struct Endpoints {
    hosts: Hosts,
    ports: BTreeMap<String, u16>,
}

impl Endpoints {
    /// Endpoints whose host for replica `index` of `role` is `hosts(role, index)`
    /// and whose ports are `ports`, keyed by the names of [`port_names`].
    pub fn new(
        hosts: impl Fn(&str, u32) -> String + Send + Sync + 'static,
        ports: BTreeMap<String, u16>,
    ) -> Endpoints {
        Endpoints {
            hosts: Arc::new(hosts),
            ports,
        }
    }

    /// Endpoints with every replica on [`LOCAL_HOST`].
    pub fn local(ports: BTreeMap<String, u16>) -> Endpoints {
        Endpoints::new(|_, _| LOCAL_HOST.to_string(), ports)
    }

    /// The host of replica `index` of `role`.
    pub fn host(&self, role: &str, index: u32) -> String {
        (self.hosts)(role, index)
    }

    /// The port allocated for `name`, if any.
    pub fn port(&self, name: &str) -> Option<u16> {
        self.ports.get(name).copied()
    }

    /// Every allocated port, by name.
    pub fn ports(&self) -> &BTreeMap<String, u16> {
        &self.ports
    }

    /// A port [`port_names`] says the job needs; its absence is the backend's bug.
    fn required_port(&self, name: &str) -> u16 {
        self.port(name).unwrap_or_else(|| {
            panic!(
                "no port named {name:?} among {:?}: allocate every name port_names returns",
                self.ports.keys().collect::<Vec<_>>()
            )
        })
    }

    /// `host:port` of a replica's own port.
    fn address(&self, role: &str, index: u32) -> String {
        let port = self.required_port(&port_name(role, index));
        host_port(&self.host(role, index), port)
    }
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// `host:port`, with an IPv6 address in brackets so the port stays apart.
fn host_port(host: &str, port: u16) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The variables moon sets for replica `index` of `role`; the role is one of
/// the job's or one of its [`hidden_roles`]. The role's own `env` is merged
/// by the caller, with these names winning.
///
/// mxnet's ps-lite binds each server and worker to `DMLC_NODE_HOST`, and
/// ZeroMQ binds only to IP addresses, so that variable is set only for an IP
/// host; without it ps-lite finds the machine's address itself, as it must on
/// Kubernetes. The scheduler binds `DMLC_PS_ROOT_URI`, so for a DNS name
/// `DMLC_USE_KUBERNETES=1` makes it bind `0.0.0.0` instead.
///
/// # Panics
///
/// When the job has no such replica, or `endpoints` lacks a port that
/// [`port_names`] names: both are mistakes of the caller, not of the spec.
pub fn replica_env(
    job: &Job,
    role: &str,
    index: u32,
    endpoints: &Endpoints,
) -> BTreeMap<String, String> {
    let hidden = !job.roles.iter().any(|own| own.name == role);
    let count = if !hidden {
        replicas(job, role)
    } else if hidden_role_names(job).contains(&role) {
        1
    } else {
        panic!("job {:?} has no role {role:?}", job.name)
    };
    assert!(
        index < count,
        "role {role:?} of job {:?} has {count} replicas, no index {index}",
        job.name
    );

    let mut env = Env::default();
    env.set("MOON_JOB", &job.name);
    env.set("MOON_TENANT", &job.tenant);
    env.set("MOON_FRAMEWORK", job.framework);
    env.set("MOON_ROLE", role);
    env.set("MOON_REPLICA_INDEX", index);
    env.set("MOON_REPLICA", port_name(role, index));
    env.set("MOON_WORLD_SIZE", job.replica_count());
    if !hidden {
        env.set("MOON_RANK", global_rank(job, role, index));
    }

    match job.framework {
        Framework::Pytorch => pytorch(&mut env, job, role, index, endpoints),
        Framework::Tensorflow => tensorflow(&mut env, job, role, index, endpoints),
        Framework::Xgboost => xgboost(&mut env, job, role, index, endpoints),
        Framework::Mxnet => mxnet(&mut env, job, role, index, endpoints),
        Framework::Spark => spark(&mut env, endpoints),
        Framework::Caffe | Framework::Custom => {}
    }
    env.0
}

#[derive(Default)]
struct Env(BTreeMap<String, String>);

impl Env {
    fn set(&mut self, name: &str, value: impl ToString) {
        self.0.insert(name.to_string(), value.to_string());
    }
}

fn pytorch(env: &mut Env, job: &Job, role: &str, index: u32, endpoints: &Endpoints) {
    let masters = replicas(job, "master");
    let world = u64::from(masters) + u64::from(replicas(job, "worker"));
    let rank = match role {
        "master" => u64::from(index),
        _ => u64::from(masters) + u64::from(index),
    };
    let addr = endpoints.host("master", 0);
    let port = endpoints.required_port(&port_name("master", 0));
    env.set("MASTER_ADDR", &addr);
    env.set("MASTER_PORT", port);
    env.set("WORLD_SIZE", world);
    env.set("RANK", rank);
    env.set("LOCAL_RANK", 0);
    // torchrun's flags, read from PET_<FLAG>; one process per replica keeps
    // its ranks the ones above.
    env.set("PET_MASTER_ADDR", &addr);
    env.set("PET_MASTER_PORT", port);
    env.set("PET_NNODES", world);
    env.set("PET_NODE_RANK", rank);
    env.set("PET_NPROC_PER_NODE", 1);
}

/// `TF_CONFIG`; struct fields are declared in sorted order so the JSON's keys
/// come out sorted at every level.
#[derive(Serialize)]
struct TfConfig<'a> {
    cluster: BTreeMap<&'a str, Vec<String>>,
    task: TfTask<'a>,
}

#[derive(Serialize)]
struct TfTask<'a> {
    index: u32,
    #[serde(rename = "type")]
    kind: &'a str,
}

fn tensorflow(env: &mut Env, job: &Job, role: &str, index: u32, endpoints: &Endpoints) {
    let cluster = job
        .roles
        .iter()
        .filter(|own| TF_CLUSTER_ROLES.contains(&own.name.as_str()))
        .map(|own| {
            let addresses = (0..own.replicas)
                .map(|i| endpoints.address(&own.name, i))
                .collect();
            (own.name.as_str(), addresses)
        })
        .collect();
    let config = TfConfig {
        cluster,
        task: TfTask { index, kind: role },
    };
    let json = serde_json::to_string(&config).expect("TF_CONFIG serializes");
    env.set("TF_CONFIG", json);
}

fn xgboost(env: &mut Env, job: &Job, role: &str, index: u32, endpoints: &Endpoints) {
    if role != "worker" {
        return;
    }
    env.set("DMLC_TRACKER_URI", endpoints.host(TRACKER, 0));
    env.set("DMLC_TRACKER_PORT", endpoints.required_port(TRACKER));
    env.set("DMLC_NUM_WORKER", replicas(job, "worker"));
    env.set("DMLC_TASK_ID", index);
}

fn mxnet(env: &mut Env, job: &Job, role: &str, index: u32, endpoints: &Endpoints) {
    let scheduler = endpoints.host("scheduler", 0);
    env.set("DMLC_ROLE", role);
    env.set("DMLC_PS_ROOT_URI", &scheduler);
    env.set(
        "DMLC_PS_ROOT_PORT",
        endpoints.required_port(&port_name("scheduler", 0)),
    );
    env.set("DMLC_NUM_SERVER", replicas(job, "server"));
    env.set("DMLC_NUM_WORKER", replicas(job, "worker"));
    if !is_ip(&scheduler) {
        env.set("DMLC_USE_KUBERNETES", 1);
    }
    if role != "scheduler" {
        let host = endpoints.host(role, index);
        if is_ip(&host) {
            env.set("DMLC_NODE_HOST", host);
        }
    }
}

fn spark(env: &mut Env, endpoints: &Endpoints) {
    let host = endpoints.host("driver", 0);
    let port = endpoints.required_port(&port_name("driver", 0));
    env.set(
        "MOON_SPARK_DRIVER_URL",
        format!("spark://{}", host_port(&host, port)),
    );
    env.set("MOON_SPARK_DRIVER_HOST", host);
    env.set("MOON_SPARK_DRIVER_PORT", port);
}

fn is_ip(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// Replicas of a role, 0 when the job has none.
fn replicas(job: &Job, role: &str) -> u32 {
    job.roles
        .iter()
        .find(|own| own.name == role)
        .map_or(0, |own| own.replicas)
}

/// The replicas of the roles before `role` in the spec, plus `index`.
fn global_rank(job: &Job, role: &str, index: u32) -> u64 {
    let before: u64 = job
        .roles
        .iter()
        .take_while(|own| own.name != role)
        .map(|own| u64::from(own.replicas))
        .sum();
    before + u64::from(index)
}

/// The names [`hidden_roles`] gives, without building the roles.
fn hidden_role_names(job: &Job) -> &'static [&'static str] {
    match job.framework {
        Framework::Xgboost => &[TRACKER],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn ports(pairs: &[(&str, u16)]) -> BTreeMap<String, u16> {
        pairs
            .iter()
            .map(|(name, port)| (name.to_string(), *port))
            .collect()
    }

    /// Kubernetes-style names: `<job>-<role>-<index>.<namespace>.svc`.
    fn dns(job: &str, namespace: &str) -> impl Fn(&str, u32) -> String + Send + Sync + 'static {
        let (job, namespace) = (job.to_string(), namespace.to_string());
        move |role, index| format!("{job}-{role}-{index}.{namespace}.svc")
    }

    fn job(name: &str, framework: Framework, roles: &[(&str, u32)]) -> Job {
        let roles = roles
            .iter()
            .map(|(role, replicas)| Role::new(role, *replicas, &["python3", "train.py"]))
            .collect();
        Job::new(name, "vision", framework, roles)
    }

    /// Every replica of the job and of its hidden roles, as (role, index).
    fn replicas_of(job: &Job) -> Vec<(String, u32)> {
        job.roles
            .iter()
            .chain(&hidden_roles(job, LOCAL_HOST, 9000))
            .flat_map(|role| (0..role.replicas).map(|i| (role.name.clone(), i)))
            .collect()
    }

    fn pytorch_job() -> Job {
        job("mnist", Framework::Pytorch, &[("master", 1), ("worker", 2)])
    }

    #[test]
    fn pytorch_golden_local() {
        let job = pytorch_job();
        assert_eq!(port_names(&job), ["master-0"]);
        let endpoints = Endpoints::local(ports(&[("master-0", 29500)]));
        let expected = |role: &str, index: &str, rank: &str| {
            let replica = format!("{role}-{index}");
            env(&[
                ("MOON_JOB", "mnist"),
                ("MOON_TENANT", "vision"),
                ("MOON_FRAMEWORK", "pytorch"),
                ("MOON_ROLE", role),
                ("MOON_REPLICA_INDEX", index),
                ("MOON_REPLICA", &replica),
                ("MOON_WORLD_SIZE", "3"),
                ("MOON_RANK", rank),
                ("MASTER_ADDR", "127.0.0.1"),
                ("MASTER_PORT", "29500"),
                ("WORLD_SIZE", "3"),
                ("RANK", rank),
                ("LOCAL_RANK", "0"),
                ("PET_MASTER_ADDR", "127.0.0.1"),
                ("PET_MASTER_PORT", "29500"),
                ("PET_NNODES", "3"),
                ("PET_NODE_RANK", rank),
                ("PET_NPROC_PER_NODE", "1"),
            ])
        };
        assert_eq!(
            replica_env(&job, "master", 0, &endpoints),
            expected("master", "0", "0")
        );
        assert_eq!(
            replica_env(&job, "worker", 0, &endpoints),
            expected("worker", "0", "1")
        );
        assert_eq!(
            replica_env(&job, "worker", 1, &endpoints),
            expected("worker", "1", "2")
        );
    }

    #[test]
    fn pytorch_golden_dns() {
        let job = pytorch_job();
        let endpoints = Endpoints::new(dns("mnist", "vision"), ports(&[("master-0", 23456)]));
        assert_eq!(
            replica_env(&job, "worker", 1, &endpoints),
            env(&[
                ("MOON_JOB", "mnist"),
                ("MOON_TENANT", "vision"),
                ("MOON_FRAMEWORK", "pytorch"),
                ("MOON_ROLE", "worker"),
                ("MOON_REPLICA_INDEX", "1"),
                ("MOON_REPLICA", "worker-1"),
                ("MOON_WORLD_SIZE", "3"),
                ("MOON_RANK", "2"),
                ("MASTER_ADDR", "mnist-master-0.vision.svc"),
                ("MASTER_PORT", "23456"),
                ("WORLD_SIZE", "3"),
                ("RANK", "2"),
                ("LOCAL_RANK", "0"),
                ("PET_MASTER_ADDR", "mnist-master-0.vision.svc"),
                ("PET_MASTER_PORT", "23456"),
                ("PET_NNODES", "3"),
                ("PET_NODE_RANK", "2"),
                ("PET_NPROC_PER_NODE", "1"),
            ])
        );
    }

    #[test]
    fn pytorch_ranks_do_not_depend_on_spec_order() {
        let job = job("mnist", Framework::Pytorch, &[("worker", 2), ("master", 1)]);
        let endpoints = Endpoints::local(ports(&[("master-0", 29500)]));
        let master = replica_env(&job, "master", 0, &endpoints);
        assert_eq!(master["RANK"], "0");
        assert_eq!(master["MOON_RANK"], "2");
        let worker = replica_env(&job, "worker", 0, &endpoints);
        assert_eq!(worker["RANK"], "1");
        assert_eq!(worker["MOON_RANK"], "0");
    }

    #[test]
    fn pytorch_master_alone() {
        let job = job("solo", Framework::Pytorch, &[("master", 1)]);
        let endpoints = Endpoints::local(ports(&[("master-0", 29500)]));
        let master = replica_env(&job, "master", 0, &endpoints);
        assert_eq!(master["WORLD_SIZE"], "1");
        assert_eq!(master["RANK"], "0");
        assert_eq!(master["PET_NNODES"], "1");
    }

    fn tensorflow_job() -> Job {
        job(
            "resnet",
            Framework::Tensorflow,
            &[("chief", 1), ("worker", 2), ("ps", 1)],
        )
    }

    fn tensorflow_ports() -> BTreeMap<String, u16> {
        ports(&[
            ("chief-0", 2220),
            ("worker-0", 2221),
            ("worker-1", 2222),
            ("ps-0", 2223),
        ])
    }

    fn tensorflow_common(role: &str, index: &str, rank: &str) -> BTreeMap<String, String> {
        let replica = format!("{role}-{index}");
        env(&[
            ("MOON_JOB", "resnet"),
            ("MOON_TENANT", "vision"),
            ("MOON_FRAMEWORK", "tensorflow"),
            ("MOON_ROLE", role),
            ("MOON_REPLICA_INDEX", index),
            ("MOON_REPLICA", &replica),
            ("MOON_WORLD_SIZE", "4"),
            ("MOON_RANK", rank),
        ])
    }

    #[test]
    fn tensorflow_golden_local() {
        let job = tensorflow_job();
        assert_eq!(
            port_names(&job),
            ["chief-0", "worker-0", "worker-1", "ps-0"]
        );
        let endpoints = Endpoints::local(tensorflow_ports());
        let cluster = r#"{"chief":["127.0.0.1:2220"],"ps":["127.0.0.1:2223"],"worker":["127.0.0.1:2221","127.0.0.1:2222"]}"#;
        for (role, index, rank) in [("chief", 0, "0"), ("worker", 1, "2"), ("ps", 0, "3")] {
            let mut expected = tensorflow_common(role, &index.to_string(), rank);
            expected.insert(
                "TF_CONFIG".into(),
                format!(r#"{{"cluster":{cluster},"task":{{"index":{index},"type":"{role}"}}}}"#),
            );
            assert_eq!(replica_env(&job, role, index, &endpoints), expected);
        }
    }

    #[test]
    fn tensorflow_golden_dns() {
        let job = tensorflow_job();
        let endpoints = Endpoints::new(dns("resnet", "vision"), tensorflow_ports());
        let mut expected = tensorflow_common("worker", "0", "1");
        expected.insert(
            "TF_CONFIG".into(),
            concat!(
                r#"{"cluster":{"chief":["resnet-chief-0.vision.svc:2220"],"#,
                r#""ps":["resnet-ps-0.vision.svc:2223"],"#,
                r#""worker":["resnet-worker-0.vision.svc:2221","resnet-worker-1.vision.svc:2222"]},"#,
                r#""task":{"index":0,"type":"worker"}}"#
            )
            .into(),
        );
        assert_eq!(replica_env(&job, "worker", 0, &endpoints), expected);
    }

    #[test]
    fn tensorflow_config_parses_as_tensorflow_reads_it() {
        let job = tensorflow_job();
        let endpoints = Endpoints::local(tensorflow_ports());
        let config: serde_json::Value =
            serde_json::from_str(&replica_env(&job, "worker", 1, &endpoints)["TF_CONFIG"]).unwrap();
        assert_eq!(config["task"]["type"], "worker");
        assert_eq!(config["task"]["index"], 1);
        assert_eq!(config["cluster"]["worker"][1], "127.0.0.1:2222");
        assert_eq!(config["cluster"].as_object().unwrap().len(), 3);
    }

    #[test]
    fn tensorflow_evaluator_has_a_task_but_is_not_in_the_cluster() {
        let job = job(
            "resnet",
            Framework::Tensorflow,
            &[("worker", 2), ("evaluator", 1)],
        );
        assert_eq!(port_names(&job), ["worker-0", "worker-1", "evaluator-0"]);
        let endpoints = Endpoints::local(ports(&[
            ("worker-0", 3000),
            ("worker-1", 3001),
            ("evaluator-0", 3002),
        ]));
        let expected = r#"{"cluster":{"worker":["127.0.0.1:3000","127.0.0.1:3001"]},"task":{"index":0,"type":"evaluator"}}"#;
        let evaluator = replica_env(&job, "evaluator", 0, &endpoints);
        assert_eq!(evaluator["TF_CONFIG"], expected);
        assert_eq!(evaluator["MOON_RANK"], "2");
        let worker = replica_env(&job, "worker", 0, &endpoints);
        assert!(!worker["TF_CONFIG"].contains("3002"));
    }

    #[test]
    fn tensorflow_config_is_the_same_every_time() {
        let job = tensorflow_job();
        let endpoints = Endpoints::local(tensorflow_ports());
        let first = replica_env(&job, "ps", 0, &endpoints);
        for _ in 0..10 {
            assert_eq!(replica_env(&job, "ps", 0, &endpoints), first);
        }
    }

    fn mxnet_job() -> Job {
        job(
            "ctr",
            Framework::Mxnet,
            &[("scheduler", 1), ("server", 1), ("worker", 2)],
        )
    }

    fn mxnet_common(role: &str, index: &str, rank: &str) -> BTreeMap<String, String> {
        let replica = format!("{role}-{index}");
        env(&[
            ("MOON_JOB", "ctr"),
            ("MOON_TENANT", "vision"),
            ("MOON_FRAMEWORK", "mxnet"),
            ("MOON_ROLE", role),
            ("MOON_REPLICA_INDEX", index),
            ("MOON_REPLICA", &replica),
            ("MOON_WORLD_SIZE", "4"),
            ("MOON_RANK", rank),
            ("DMLC_ROLE", role),
            ("DMLC_NUM_SERVER", "1"),
            ("DMLC_NUM_WORKER", "2"),
        ])
    }

    #[test]
    fn mxnet_golden_local() {
        let job = mxnet_job();
        assert_eq!(port_names(&job), ["scheduler-0"]);
        let endpoints = Endpoints::local(ports(&[("scheduler-0", 9091)]));
        let root = env(&[
            ("DMLC_PS_ROOT_URI", "127.0.0.1"),
            ("DMLC_PS_ROOT_PORT", "9091"),
        ]);

        let mut scheduler = mxnet_common("scheduler", "0", "0");
        scheduler.extend(root.clone());
        assert_eq!(replica_env(&job, "scheduler", 0, &endpoints), scheduler);

        for (role, index, rank) in [("server", 0, "1"), ("worker", 1, "3")] {
            let mut expected = mxnet_common(role, &index.to_string(), rank);
            expected.extend(root.clone());
            expected.insert("DMLC_NODE_HOST".into(), "127.0.0.1".into());
            assert_eq!(replica_env(&job, role, index, &endpoints), expected);
        }
    }

    #[test]
    fn mxnet_golden_dns() {
        let job = mxnet_job();
        let endpoints = Endpoints::new(dns("ctr", "vision"), ports(&[("scheduler-0", 9091)]));
        for (role, index, rank) in [
            ("scheduler", 0, "0"),
            ("server", 0, "1"),
            ("worker", 0, "2"),
        ] {
            let mut expected = mxnet_common(role, &index.to_string(), rank);
            expected.extend(env(&[
                ("DMLC_PS_ROOT_URI", "ctr-scheduler-0.vision.svc"),
                ("DMLC_PS_ROOT_PORT", "9091"),
                ("DMLC_USE_KUBERNETES", "1"),
            ]));
            assert_eq!(replica_env(&job, role, index, &endpoints), expected);
        }
    }

    fn xgboost_job() -> Job {
        job("churn", Framework::Xgboost, &[("worker", 2)])
    }

    #[test]
    fn xgboost_golden_local() {
        let job = xgboost_job();
        assert_eq!(port_names(&job), ["tracker"]);
        let endpoints = Endpoints::local(ports(&[("tracker", 9099)]));
        assert_eq!(
            replica_env(&job, "worker", 1, &endpoints),
            env(&[
                ("MOON_JOB", "churn"),
                ("MOON_TENANT", "vision"),
                ("MOON_FRAMEWORK", "xgboost"),
                ("MOON_ROLE", "worker"),
                ("MOON_REPLICA_INDEX", "1"),
                ("MOON_REPLICA", "worker-1"),
                ("MOON_WORLD_SIZE", "2"),
                ("MOON_RANK", "1"),
                ("DMLC_TRACKER_URI", "127.0.0.1"),
                ("DMLC_TRACKER_PORT", "9099"),
                ("DMLC_NUM_WORKER", "2"),
                ("DMLC_TASK_ID", "1"),
            ])
        );
        assert_eq!(
            replica_env(&job, "tracker", 0, &endpoints),
            env(&[
                ("MOON_JOB", "churn"),
                ("MOON_TENANT", "vision"),
                ("MOON_FRAMEWORK", "xgboost"),
                ("MOON_ROLE", "tracker"),
                ("MOON_REPLICA_INDEX", "0"),
                ("MOON_REPLICA", "tracker-0"),
                ("MOON_WORLD_SIZE", "2"),
            ])
        );
    }

    #[test]
    fn xgboost_golden_dns() {
        let job = xgboost_job();
        let endpoints = Endpoints::new(dns("churn", "vision"), ports(&[("tracker", 9099)]));
        let worker = replica_env(&job, "worker", 0, &endpoints);
        assert_eq!(
            worker
                .iter()
                .filter(|(name, _)| name.starts_with("DMLC_"))
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect::<Vec<_>>(),
            [
                ("DMLC_NUM_WORKER", "2"),
                ("DMLC_TASK_ID", "0"),
                ("DMLC_TRACKER_PORT", "9099"),
                ("DMLC_TRACKER_URI", "churn-tracker-0.vision.svc"),
            ]
        );
    }

    #[test]
    fn xgboost_tracker_role() {
        let mut job = xgboost_job();
        job.roles[0].command = vec!["/opt/venv/bin/python3.12".into(), "train.py".into()];
        job.roles[0].env = env(&[("PYTHONPATH", "/src")]);
        job.roles[0].working_dir = Some("/work".into());
        let roles = hidden_roles(&job, "127.0.0.1", 9099);
        assert_eq!(roles.len(), 1);
        let tracker = &roles[0];
        assert_eq!(tracker.name, TRACKER);
        assert_eq!(tracker.replicas, 1);
        assert_eq!(
            tracker.command,
            [
                "/opt/venv/bin/python3.12",
                "-c",
                "from xgboost.tracker import RabitTracker\n\
                 tracker = RabitTracker(n_workers=2, host_ip=\"127.0.0.1\", port=9099, sortby=\"task\")\n\
                 tracker.start()\n\
                 print(tracker.worker_args()[\"dmlc_tracker_port\"], flush=True)\n\
                 tracker.wait_for()\n",
            ]
        );
        assert!(tracker.args.is_empty());
        assert_eq!(tracker.env, job.roles[0].env);
        assert_eq!(tracker.working_dir.as_deref(), Some("/work"));
        assert_eq!(tracker.gpus.count(), 0);
    }

    #[test]
    fn xgboost_tracker_python() {
        let cases = [
            (vec!["python"], "python"),
            (vec!["python3", "-m", "train"], "python3"),
            (
                vec!["/usr/bin/python3.11", "train.py"],
                "/usr/bin/python3.11",
            ),
            (vec!["./train.sh"], "python3"),
            (vec!["/opt/python/bin/torchrun"], "python3"),
            (vec!["uv", "run", "python", "train.py"], "python3"),
        ];
        for (command, python) in cases {
            let mut job = xgboost_job();
            job.roles[0].command = command.iter().map(|part| part.to_string()).collect();
            let roles = hidden_roles(&job, LOCAL_HOST, 1);
            assert_eq!(roles[0].command[0], python, "for {command:?}");
        }
    }

    #[test]
    fn xgboost_tracker_host_is_a_python_literal() {
        let job = xgboost_job();
        let roles = hidden_roles(&job, "0.0.0.0", 9099);
        assert!(roles[0].command[2].contains("host_ip=\"0.0.0.0\", port=9099,"));
        let roles = hidden_roles(&job, "a\"b", 1);
        assert!(roles[0].command[2].contains(r#"host_ip="a\"b""#));
    }

    #[test]
    fn only_xgboost_has_hidden_roles() {
        for framework in Framework::ALL {
            let job = job("j", framework, &[("worker", 1)]);
            assert_eq!(
                hidden_roles(&job, LOCAL_HOST, 1).is_empty(),
                framework != Framework::Xgboost,
                "{framework}"
            );
        }
    }

    #[test]
    fn spark_golden() {
        let job = job("etl", Framework::Spark, &[("driver", 1), ("executor", 2)]);
        assert_eq!(port_names(&job), ["driver-0"]);
        let endpoints = Endpoints::local(ports(&[("driver-0", 7078)]));
        assert_eq!(
            replica_env(&job, "executor", 1, &endpoints),
            env(&[
                ("MOON_JOB", "etl"),
                ("MOON_TENANT", "vision"),
                ("MOON_FRAMEWORK", "spark"),
                ("MOON_ROLE", "executor"),
                ("MOON_REPLICA_INDEX", "1"),
                ("MOON_REPLICA", "executor-1"),
                ("MOON_WORLD_SIZE", "3"),
                ("MOON_RANK", "2"),
                ("MOON_SPARK_DRIVER_HOST", "127.0.0.1"),
                ("MOON_SPARK_DRIVER_PORT", "7078"),
                ("MOON_SPARK_DRIVER_URL", "spark://127.0.0.1:7078"),
            ])
        );
        let endpoints = Endpoints::new(dns("etl", "data"), ports(&[("driver-0", 7078)]));
        let driver = replica_env(&job, "driver", 0, &endpoints);
        assert_eq!(
            driver["MOON_SPARK_DRIVER_URL"],
            "spark://etl-driver-0.data.svc:7078"
        );
    }

    #[test]
    fn caffe_and_custom_get_moon_variables_only() {
        let caffe = job("lenet", Framework::Caffe, &[("worker", 1)]);
        assert!(port_names(&caffe).is_empty());
        let endpoints = Endpoints::local(BTreeMap::new());
        assert_eq!(
            replica_env(&caffe, "worker", 0, &endpoints),
            env(&[
                ("MOON_JOB", "lenet"),
                ("MOON_TENANT", "vision"),
                ("MOON_FRAMEWORK", "caffe"),
                ("MOON_ROLE", "worker"),
                ("MOON_REPLICA_INDEX", "0"),
                ("MOON_REPLICA", "worker-0"),
                ("MOON_WORLD_SIZE", "1"),
                ("MOON_RANK", "0"),
            ])
        );

        let custom = job(
            "sim",
            Framework::Custom,
            &[("coordinator", 1), ("actor", 3), ("learner", 2)],
        );
        assert!(port_names(&custom).is_empty());
        assert_eq!(
            replica_env(&custom, "learner", 1, &endpoints),
            env(&[
                ("MOON_JOB", "sim"),
                ("MOON_TENANT", "vision"),
                ("MOON_FRAMEWORK", "custom"),
                ("MOON_ROLE", "learner"),
                ("MOON_REPLICA_INDEX", "1"),
                ("MOON_REPLICA", "learner-1"),
                ("MOON_WORLD_SIZE", "6"),
                ("MOON_RANK", "5"),
            ])
        );
    }

    #[test]
    fn ranks_cover_every_replica_once() {
        let custom = job(
            "sim",
            Framework::Custom,
            &[("coordinator", 1), ("actor", 3), ("learner", 2)],
        );
        let endpoints = Endpoints::local(BTreeMap::new());
        let ranks: Vec<String> = replicas_of(&custom)
            .iter()
            .map(|(role, i)| replica_env(&custom, role, *i, &endpoints)["MOON_RANK"].clone())
            .collect();
        assert_eq!(ranks, ["0", "1", "2", "3", "4", "5"]);
    }

    fn every_framework() -> Vec<Job> {
        vec![
            pytorch_job(),
            tensorflow_job(),
            job(
                "resnet",
                Framework::Tensorflow,
                &[("chief", 1), ("worker", 3), ("ps", 2), ("evaluator", 1)],
            ),
            xgboost_job(),
            mxnet_job(),
            job("lenet", Framework::Caffe, &[("worker", 1)]),
            job("etl", Framework::Spark, &[("driver", 1), ("executor", 2)]),
            job("sim", Framework::Custom, &[("a", 2), ("b", 1)]),
        ]
    }

    #[test]
    fn the_ports_port_names_lists_are_enough_for_every_replica() {
        for job in every_framework() {
            let names = port_names(&job);
            let allocated = names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), 20000 + i as u16))
                .collect();
            let endpoints = Endpoints::local(allocated);
            for (role, index) in replicas_of(&job) {
                let vars = replica_env(&job, &role, index, &endpoints);
                assert_eq!(vars["MOON_REPLICA"], format!("{role}-{index}"));
            }
        }
    }

    #[test]
    fn port_names_are_unique() {
        for job in every_framework() {
            let mut names = port_names(&job);
            let count = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), count, "{}", job.framework);
        }
    }

    #[test]
    fn every_name_is_an_environment_variable_name() {
        for job in every_framework() {
            let endpoints =
                Endpoints::local(port_names(&job).into_iter().map(|name| (name, 1)).collect());
            for (role, index) in replicas_of(&job) {
                for name in replica_env(&job, &role, index, &endpoints).keys() {
                    assert!(
                        name.chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_addresses_only() {
        let job = tensorflow_job();
        let endpoints = Endpoints::new(|_, _| "::1".to_string(), tensorflow_ports());
        let config = &replica_env(&job, "chief", 0, &endpoints)["TF_CONFIG"];
        assert!(config.contains(r#""chief":["[::1]:2220"]"#), "{config}");

        let pytorch = pytorch_job();
        let endpoints = Endpoints::new(|_, _| "::1".to_string(), ports(&[("master-0", 1)]));
        assert_eq!(
            replica_env(&pytorch, "worker", 0, &endpoints)["MASTER_ADDR"],
            "::1"
        );
    }

    #[test]
    fn endpoints_answer_hosts_and_ports() {
        let endpoints = Endpoints::new(dns("j", "ns"), ports(&[("tracker", 5)]));
        assert_eq!(endpoints.host("worker", 3), "j-worker-3.ns.svc");
        assert_eq!(endpoints.port("tracker"), Some(5));
        assert_eq!(endpoints.port("master-0"), None);
        assert_eq!(endpoints.ports().len(), 1);
        assert_eq!(Endpoints::local(BTreeMap::new()).host("x", 0), LOCAL_HOST);
        assert!(format!("{endpoints:?}").contains("tracker"));
    }

    #[test]
    #[should_panic(expected = "no port named \"master-0\"")]
    fn a_missing_port_is_a_bug() {
        replica_env(
            &pytorch_job(),
            "worker",
            0,
            &Endpoints::local(BTreeMap::new()),
        );
    }

    #[test]
    #[should_panic(expected = "has no role \"tracker\"")]
    fn an_unknown_role_is_a_bug() {
        let endpoints = Endpoints::local(ports(&[("master-0", 1)]));
        replica_env(&pytorch_job(), TRACKER, 0, &endpoints);
    }

    #[test]
    #[should_panic(expected = "has 2 replicas, no index 2")]
    fn an_index_past_the_replicas_is_a_bug() {
        let endpoints = Endpoints::local(ports(&[("master-0", 1)]));
        replica_env(&pytorch_job(), "worker", 2, &endpoints);
    }
}
