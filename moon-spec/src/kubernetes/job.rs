//! A training job as Kubernetes objects: an anchor, a headless Service for
//! the rendezvous, and a batch Job per replica. The module docs of
//! [`kubernetes`](super) say why it takes this shape.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::meta::{
    JOB_LABEL, MAX_NAME_LEN, REPLICA_INDEX_LABEL, ROLE_LABEL, TENANT_LABEL, container_resources,
    labels, meta, pod_tolerations,
};
use super::object::Object;
use super::tenant::WORKLOAD_SERVICE_ACCOUNT;
use super::volumes;
use crate::error::{Error, FieldError, FieldErrors, Result, rule};
use crate::rendezvous::{self, Endpoints, TRACKER};
use crate::spec::{EnvFrom, Framework, Job, RestartPolicy, Role, validate_job};
use crate::volumes::{self as job_volumes, ResolvedVolume};

/// The image replicas run while specs have no image of their own. Every
/// framework moon wires up is driven from Python, so a plain Python image
/// is the one that makes sense for all of them.
pub const DEFAULT_IMAGE: &str = "python:3.12-slim";

/// PyTorch's usual `MASTER_PORT`.
pub const PYTORCH_MASTER_PORT: u16 = 29500;
/// The port of every TensorFlow replica, as in TensorFlow's own examples.
pub const TENSORFLOW_PORT: u16 = 2222;
/// The first port DMLC's tracker tries.
pub const XGBOOST_TRACKER_PORT: u16 = 9091;
/// ps-lite's usual `DMLC_PS_ROOT_PORT`.
pub const MXNET_SCHEDULER_PORT: u16 = 9091;
/// The driver port Spark uses on Kubernetes.
pub const SPARK_DRIVER_PORT: u16 = 7078;

/// A container runtime's `/dev/shm` is 64 MiB, which PyTorch's data loader
/// workers and NCCL outgrow at once; on the local backend replicas share the
/// machine's. A memory-backed volume there is sized and charged within the
/// pod's memory limit, so it gives no more than the role asked for.
const SHM_VOLUME: &str = "dshm";
/// The key of the anchor ConfigMap that holds the job's spec.
pub const SPEC_KEY: &str = "job.json";

/// What rendering needs beyond the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// The image of every replica whose role and job name none (the
    /// backend's configured image).
    pub image: String,
    /// The UID of the job's anchor ConfigMap once it exists; with it every
    /// other object names the anchor as its owner.
    pub anchor_uid: Option<String>,
    /// Tolerations every replica's pod gets, after the GPU one.
    pub tolerations: Vec<core::Toleration>,
    /// Node labels every replica's pod asks for (`nodeSelector`), for
    /// clusters that set nodes aside for this work.
    pub node_selector: BTreeMap<String, String>,
    /// The job's volumes, resolved against the platform's storage servers when it was
    /// submitted: one for each of the spec's, in order.
    pub volumes: Vec<ResolvedVolume>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            image: DEFAULT_IMAGE.to_string(),
            anchor_uid: None,
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
            volumes: Vec::new(),
        }
    }
}

/// The name of replica `index` of `role`: its Job's name and its pod's hostname.
pub fn replica_name(job: &Job, role: &str, index: u32) -> String {
    format!("{}-{role}-{index}", job.name)
}

/// Where the job's replicas find each other on Kubernetes: each replica at
/// `<job>-<role>-<index>.<job>.<tenant>.svc`, the XGBoost tracker at its own
/// Service, `<job>-tracker.<tenant>.svc`, which answers only once it
/// listens; and each port at its framework's usual number.
pub fn endpoints(job: &Job) -> Endpoints {
    let ports = rendezvous::port_names(job)
        .into_iter()
        .filter_map(|name| Some((name, framework_port(job.framework)?)))
        .collect();
    let (name, namespace) = (job.name.clone(), job.tenant.clone());
    let has_tracker = !rendezvous::hidden_roles(job, "0.0.0.0", XGBOOST_TRACKER_PORT).is_empty();
    Endpoints::new(
        move |role, index| {
            if has_tracker && role == TRACKER {
                format!("{}.{namespace}.svc", tracker_service(&name))
            } else {
                format!("{name}-{role}-{index}.{name}.{namespace}.svc")
            }
        },
        ports,
    )
}

fn framework_port(framework: Framework) -> Option<u16> {
    match framework {
        Framework::Pytorch => Some(PYTORCH_MASTER_PORT),
        Framework::Tensorflow => Some(TENSORFLOW_PORT),
        Framework::Xgboost => Some(XGBOOST_TRACKER_PORT),
        Framework::Mxnet => Some(MXNET_SCHEDULER_PORT),
        Framework::Spark => Some(SPARK_DRIVER_PORT),
        Framework::Caffe | Framework::Custom => None,
    }
}

/// `ttlSecondsAfterFinished` is refused rather than dropped: deleting a job
/// takes its anchor and Service too, which Kubernetes' own TTL controller
/// (it deletes Jobs only) does not do, and moon runs nothing in the cluster
/// that could.
fn refuse_ttl(job: &Job) -> Result<()> {
    match job.ttl_seconds_after_finished {
        None => Ok(()),
        Some(_) => Err(Error::NotSupported(format!(
            "job {}/{}: ttlSecondsAfterFinished on the kubernetes backend: deleting a finished \
             job there needs a controller in the cluster, which moon does not run yet; \
             delete it yourself (moon job delete) or leave the field out",
            job.tenant, job.name
        ))),
    }
}

fn tracker_service(job: &str) -> String {
    format!("{job}-{TRACKER}")
}

/// The objects of a job, in the order they are applied: the anchor
/// ConfigMap, the headless Service(s), then one Job per replica, the hidden
/// roles' first. Refuses a job that is invalid, or whose names Kubernetes
/// would refuse. See the [module docs](super).
pub fn render_job(job: &Job, options: &RenderOptions) -> Result<Vec<Object>> {
    validate_job(job)?;
    check_names(job)?;
    refuse_ttl(job)?;
    job_volumes::check_resolved(job, &options.volumes)?;
    let endpoints = endpoints(job);
    let job_labels = labels(
        &job.labels,
        &[(TENANT_LABEL, &job.tenant), (JOB_LABEL, &job.name)],
    );
    let namespace = Some(job.tenant.as_str());

    let spec = serde_json::to_string_pretty(job).expect("a job spec serializes");
    let anchor = core::ConfigMap {
        metadata: meta(&job.name, namespace, &job_labels),
        data: Some(BTreeMap::from([(SPEC_KEY.to_string(), spec)])),
        ..core::ConfigMap::default()
    };
    let mut objects: Vec<Object> = vec![anchor.into()];

    objects.push(
        headless_service(
            &job.name,
            namespace,
            &job_labels,
            BTreeMap::from([(JOB_LABEL.to_string(), job.name.clone())]),
            true,
            service_ports(job, &endpoints),
        )
        .into(),
    );

    let hidden = rendezvous::hidden_roles(job, "0.0.0.0", XGBOOST_TRACKER_PORT);
    let tracker = hidden.iter().find(|role| role.name == TRACKER);
    if tracker.is_some() {
        // Ready pods only: the name resolving is the sign that the tracker listens.
        let selector = BTreeMap::from([
            (JOB_LABEL.to_string(), job.name.clone()),
            (ROLE_LABEL.to_string(), TRACKER.to_string()),
        ]);
        let ports = vec![service_port(TRACKER, XGBOOST_TRACKER_PORT)];
        let name = tracker_service(&job.name);
        objects
            .push(headless_service(&name, namespace, &job_labels, selector, false, ports).into());
    }

    for (position, role) in hidden.iter().chain(&job.roles).enumerate() {
        let path = match position.checked_sub(hidden.len()) {
            Some(i) => format!("roles[{i}]"),
            None => format!("hidden role {}", role.name),
        };
        for index in 0..role.replicas {
            let replica = Replica {
                job,
                role,
                index,
                path: &path,
                endpoints: &endpoints,
                image: image_of(job, role, position < hidden.len(), &options.image),
                tolerations: &options.tolerations,
                node_selector: &options.node_selector,
                volumes: &options.volumes,
                tracker,
            };
            objects.push(replica.render(&job_labels)?.into());
        }
    }

    if let Some(uid) = &options.anchor_uid {
        let owner = OwnerReference {
            api_version: "v1".to_string(),
            kind: "ConfigMap".to_string(),
            name: job.name.clone(),
            uid: uid.clone(),
            block_owner_deletion: Some(true),
            controller: None,
        };
        for object in &mut objects[1..] {
            object.metadata_mut().owner_references = Some(vec![owner.clone()]);
        }
    }
    Ok(objects)
}

/// A replica's image: its role's, else the job's, else the backend's. A
/// hidden role (the XGBoost tracker) runs the workers' Python, so it takes
/// the workers' image.
fn image_of<'a>(job: &'a Job, role: &'a Role, hidden: bool, default: &'a str) -> &'a str {
    let workers = || {
        job.roles
            .iter()
            .find(|role| role.name == "worker")
            .and_then(|role| role.image.as_deref())
    };
    role.image
        .as_deref()
        .or_else(|| if hidden { workers() } else { None })
        .or(job.image.as_deref())
        .unwrap_or(default)
}

/// Names that the spec's rules allow but Kubernetes does not.
fn check_names(job: &Job) -> Result<()> {
    let mut errors = Vec::new();
    if !job.name.starts_with(|c: char| c.is_ascii_lowercase()) {
        errors.push(FieldError::new(
            "name", rule::FORMAT,
            format!(
                "must start with a letter on Kubernetes, where it names the job's Service, got {:?}",
                job.name
            ),
        ));
    }
    for (i, role) in job.roles.iter().enumerate() {
        let longest = replica_name(job, &role.name, role.replicas.saturating_sub(1));
        if longest.len() > MAX_NAME_LEN {
            errors.push(FieldError::new(
                format!("roles[{i}]"), rule::RANGE,
                format!(
                    "replica name {longest:?} is {} characters, Kubernetes allows {MAX_NAME_LEN}: shorten the job's or the role's name",
                    longest.len()
                ),
            ));
        }
        if !role.inherit_env.is_empty() {
            errors.push(FieldError::new(
                format!("roles[{i}].inheritEnv"),
                rule::UNSUPPORTED,
                "has no meaning on Kubernetes, where replicas run in containers, not in the \
                 submitter's environment: put the values in a secret (moon secret create) \
                 and name it in envFrom",
            ));
        }
        if let Some(dir) = &role.working_dir
            && !dir.starts_with('/')
        {
            errors.push(FieldError::new(
                format!("roles[{i}].workingDir"),
                rule::FORMAT,
                format!("must be an absolute path on Kubernetes, got {dir:?}"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            kind: "job",
            errors: FieldErrors(errors),
        })
    }
}

/// The Service's ports: each number once, since a Service refuses two ports
/// with one number. TensorFlow's replicas all listen on one number, so its
/// one port is named after the framework; the others keep their port's name.
fn service_ports(job: &Job, endpoints: &Endpoints) -> Vec<core::ServicePort> {
    let mut numbers: Vec<(u16, Vec<String>)> = Vec::new();
    for name in rendezvous::port_names(job) {
        let Some(number) = endpoints.port(&name) else {
            continue;
        };
        match numbers.iter_mut().find(|(seen, _)| *seen == number) {
            Some((_, names)) => names.push(name),
            None => numbers.push((number, vec![name])),
        }
    }
    numbers
        .into_iter()
        .map(|(number, names)| match names.as_slice() {
            [name] => service_port(name, number),
            _ => service_port(job.framework.as_str(), number),
        })
        .collect()
}

fn service_port(name: &str, number: u16) -> core::ServicePort {
    core::ServicePort {
        name: Some(name.to_string()),
        port: i32::from(number),
        protocol: Some("TCP".to_string()),
        ..core::ServicePort::default()
    }
}

fn headless_service(
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
    publish_not_ready: bool,
    ports: Vec<core::ServicePort>,
) -> core::Service {
    core::Service {
        metadata: meta(name, namespace, labels),
        spec: Some(core::ServiceSpec {
            cluster_ip: Some("None".to_string()),
            selector: Some(selector),
            publish_not_ready_addresses: Some(publish_not_ready),
            ports: Some(ports),
            ..core::ServiceSpec::default()
        }),
        ..core::Service::default()
    }
}

/// One replica of one role, about to become a Job.
struct Replica<'a> {
    job: &'a Job,
    role: &'a Role,
    index: u32,
    /// Where the role is in the spec, for errors.
    path: &'a str,
    endpoints: &'a Endpoints,
    image: &'a str,
    tolerations: &'a [core::Toleration],
    node_selector: &'a BTreeMap<String, String>,
    volumes: &'a [ResolvedVolume],
    /// The XGBoost tracker's role, when the job has one.
    tracker: Option<&'a Role>,
}

impl Replica<'_> {
    fn render(&self, job_labels: &BTreeMap<String, String>) -> Result<batch::Job> {
        let (job, role) = (self.job, self.role);
        let name = replica_name(job, &role.name, self.index);
        let mut labels = job_labels.clone();
        labels.insert(ROLE_LABEL.to_string(), role.name.clone());
        labels.insert(REPLICA_INDEX_LABEL.to_string(), self.index.to_string());
        let namespace = Some(job.tenant.as_str());

        let mut container = self.container(&role.name, role.gpus.count())?;
        container.command = Some(role.command.iter().map(|part| literal(part)).collect());
        if !role.args.is_empty() {
            container.args = Some(role.args.iter().map(|arg| literal(arg)).collect());
        }
        container.working_dir = role.working_dir.clone();
        container.env = Some(self.env());
        container.env_from = self.env_from();
        container.ports = self.ports();
        let (job_volumes, job_mounts) = volumes::pod_volumes(self.volumes);
        let mut mounts = vec![core::VolumeMount {
            name: SHM_VOLUME.to_string(),
            mount_path: "/dev/shm".to_string(),
            ..core::VolumeMount::default()
        }];
        mounts.extend(job_mounts);
        container.volume_mounts = Some(mounts);
        if self.is_tracker() {
            container.readiness_probe = Some(listening_probe(&role.command[0]));
        }
        let init_containers = match self.tracker {
            Some(tracker) if role.name == "worker" => {
                // The worker's CPUs and memory, which leave the pod's
                // resources and quality of service as they were; no GPUs.
                let mut wait = self.container("wait-for-tracker", 0)?;
                let host = self.endpoints.host(TRACKER, 0);
                wait.command = Some(vec![
                    tracker.command[0].clone(),
                    "-c".to_string(),
                    wait_for_name_program(&host),
                ]);
                Some(vec![wait])
            }
            _ => None,
        };
        let affinity = role.gpus.selector().and_then(super::gpu::node_affinity);
        let tolerations = pod_tolerations(role.gpus.count(), self.tolerations);

        let pod = core::PodSpec {
            hostname: Some(name.clone()),
            subdomain: Some(job.name.clone()),
            restart_policy: Some("Never".to_string()),
            service_account_name: Some(WORKLOAD_SERVICE_ACCOUNT.to_string()),
            // Service links add a variable per Service in the namespace
            // (`<NAME>_PORT`, ...), which could shadow a framework's own names;
            // a replica's environment is its spec's and moon's, nothing else.
            enable_service_links: Some(false),
            init_containers,
            containers: vec![container],
            tolerations,
            affinity,
            node_selector: (!self.node_selector.is_empty()).then(|| self.node_selector.clone()),
            volumes: Some(
                [core::Volume {
                    name: SHM_VOLUME.to_string(),
                    empty_dir: Some(core::EmptyDirVolumeSource {
                        medium: Some("Memory".to_string()),
                        ..core::EmptyDirVolumeSource::default()
                    }),
                    ..core::Volume::default()
                }]
                .into_iter()
                .chain(job_volumes)
                .collect(),
            ),
            ..core::PodSpec::default()
        };
        let backoff_limit = match job.restart_policy {
            RestartPolicy::Never => 0,
            RestartPolicy::OnFailure => i32::try_from(job.backoff_limit).unwrap_or(i32::MAX),
        };
        let active_deadline_seconds = job
            .active_deadline_seconds
            .map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX));
        Ok(batch::Job {
            metadata: meta(&name, namespace, &labels),
            spec: Some(batch::JobSpec {
                completions: Some(1),
                parallelism: Some(1),
                completion_mode: Some("NonIndexed".to_string()),
                backoff_limit: Some(backoff_limit),
                active_deadline_seconds,
                pod_replacement_policy: Some("Failed".to_string()),
                template: core::PodTemplateSpec {
                    metadata: Some(template_meta(&labels)),
                    spec: Some(pod),
                },
                ..batch::JobSpec::default()
            }),
            ..batch::Job::default()
        })
    }

    /// Whether this is the XGBoost tracker moon added, rather than a role of
    /// the spec that happens to have its name.
    fn is_tracker(&self) -> bool {
        self.tracker.is_some() && self.role.name == TRACKER
    }

    /// A container of the replica's image with the role's CPUs and memory and `gpus` GPUs
    /// ([`container_resources`]).
    fn container(&self, name: &str, gpus: u64) -> Result<core::Container> {
        let role = self.role;
        let at = format!("{}.", self.path);
        Ok(core::Container {
            name: name.to_string(),
            image: Some(self.image.to_string()),
            resources: Some(container_resources(
                &role.cpus,
                &role.memory,
                gpus,
                "job",
                &at,
            )?),
            ..core::Container::default()
        })
    }

    /// The role's variables, then moon's, which win, as on the local backend: the
    /// rendezvous', and each volume's URL and, where it is mounted, its mount path.
    fn env(&self) -> Vec<core::EnvVar> {
        let mut env = self.role.env.clone();
        env.extend(job_volumes::replica_env(self.volumes, |volume| {
            volumes::claim_of(volume).map(|_| volume.mount_path.clone())
        }));
        env.extend(rendezvous::replica_env(
            self.job,
            &self.role.name,
            self.index,
            self.endpoints,
        ));
        env.into_iter()
            .map(|(name, value)| core::EnvVar {
                name,
                value: Some(literal(&value)),
                ..core::EnvVar::default()
            })
            .collect()
    }

    /// The role's secrets ([`secret_env_sources`]).
    fn env_from(&self) -> Option<Vec<core::EnvFromSource>> {
        secret_env_sources(&self.role.env_from)
    }

    /// The ports this replica listens on: its own (`<role>-<index>`) or the
    /// tracker's.
    fn ports(&self) -> Option<Vec<core::ContainerPort>> {
        let own = rendezvous::port_name(&self.role.name, self.index);
        let ports: Vec<core::ContainerPort> = self
            .endpoints
            .ports()
            .iter()
            .filter(|(name, _)| **name == own || (self.is_tracker() && *name == TRACKER))
            .map(|(name, number)| core::ContainerPort {
                name: Some(name.clone()),
                container_port: i32::from(*number),
                protocol: Some("TCP".to_string()),
                ..core::ContainerPort::default()
            })
            .collect();
        (!ports.is_empty()).then_some(ports)
    }
}

/// Secrets whose keys become a container's variables under its `env`, as on the local
/// backend. Not optional: a replica whose secret is missing waits with the kubelet's
/// `CreateContainerConfigError` naming it.
pub(super) fn secret_env_sources(env_from: &[EnvFrom]) -> Option<Vec<core::EnvFromSource>> {
    let sources: Vec<core::EnvFromSource> = env_from
        .iter()
        .map(|source| core::EnvFromSource {
            secret_ref: Some(core::SecretEnvSource {
                name: source.secret.clone(),
                optional: None,
            }),
            ..core::EnvFromSource::default()
        })
        .collect();
    (!sources.is_empty()).then_some(sources)
}

/// A pod template's metadata: labels only, the Job controller names the pods.
pub(super) fn template_meta(labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    }
}

/// A value Kubernetes passes on as written: it expands `$(NAME)` in a
/// container's command, arguments and environment and reads `$$` as `$`, so
/// doubling every `$` leaves the text exactly as the spec has it.
pub(super) fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

/// Ready once the tracker's port is in the LISTEN state, read from the
/// kernel's socket tables: a probe that connected would be taken by the
/// tracker for a worker and break its count.
fn listening_probe(python: &str) -> core::Probe {
    let program = format!(
        "import sys\n\
         def listening(table):\n\
        \x20   try:\n\
        \x20       with open(table) as rows:\n\
        \x20           fields = [row.split() for row in rows.readlines()[1:]]\n\
        \x20   except OSError:\n\
        \x20       return False\n\
        \x20   return any(f[1].endswith(\":{XGBOOST_TRACKER_PORT:04X}\") and f[3] == \"0A\" for f in fields)\n\
         sys.exit(0 if listening(\"/proc/net/tcp\") or listening(\"/proc/net/tcp6\") else 1)\n"
    );
    core::Probe {
        exec: Some(core::ExecAction {
            command: Some(vec![python.to_string(), "-c".to_string(), program]),
        }),
        period_seconds: Some(2),
        timeout_seconds: Some(5),
        ..core::Probe::default()
    }
}

/// Waits until `host` resolves; the job's deadline bounds the wait.
fn wait_for_name_program(host: &str) -> String {
    // A JSON string is also a valid Python string literal.
    let host = serde_json::to_string(host).expect("a string serializes");
    format!(
        "import socket, time\n\
         while True:\n\
        \x20   try:\n\
        \x20       socket.getaddrinfo({host}, None)\n\
        \x20       break\n\
        \x20   except socket.gaierror:\n\
        \x20       time.sleep(1)\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pytorch() -> Job {
        Job::new(
            "mnist",
            "vision",
            Framework::Pytorch,
            vec![
                Role::new("master", 1, &["python3", "train.py"]),
                Role::new("worker", 2, &["python3", "train.py"]),
            ],
        )
    }

    fn jobs(objects: &[Object]) -> Vec<&batch::Job> {
        objects
            .iter()
            .filter_map(|object| match object {
                Object::Job(job) => Some(&**job),
                _ => None,
            })
            .collect()
    }

    fn container(job: &batch::Job) -> &core::Container {
        &job.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
    }

    fn env(job: &batch::Job) -> BTreeMap<String, String> {
        container(job)
            .env
            .iter()
            .flatten()
            .map(|var| (var.name.clone(), var.value.clone().unwrap()))
            .collect()
    }

    #[test]
    fn every_replica_gets_its_own_job_and_environment() {
        let objects = render_job(&pytorch(), &RenderOptions::default()).unwrap();
        let kinds: Vec<_> = objects.iter().map(|o| (o.kind(), o.name())).collect();
        assert_eq!(
            kinds,
            [
                ("ConfigMap", "mnist"),
                ("Service", "mnist"),
                ("Job", "mnist-master-0"),
                ("Job", "mnist-worker-0"),
                ("Job", "mnist-worker-1"),
            ]
        );
        let ranks: Vec<_> = jobs(&objects)
            .iter()
            .map(|job| env(job)["RANK"].clone())
            .collect();
        assert_eq!(ranks, ["0", "1", "2"]);
        assert_eq!(
            env(jobs(&objects)[2])["MASTER_ADDR"],
            "mnist-master-0.mnist.vision.svc"
        );
    }

    #[test]
    fn owner_references_only_with_the_anchors_uid() {
        let objects = render_job(&pytorch(), &RenderOptions::default()).unwrap();
        assert!(
            objects
                .iter()
                .all(|o| o.metadata().owner_references.is_none())
        );

        let options = RenderOptions {
            anchor_uid: Some("0f1e".into()),
            ..RenderOptions::default()
        };
        let objects = render_job(&pytorch(), &options).unwrap();
        assert!(objects[0].metadata().owner_references.is_none());
        for object in &objects[1..] {
            let owners = object.metadata().owner_references.as_ref().unwrap();
            assert_eq!(owners.len(), 1, "{}", object.name());
            assert_eq!(
                (owners[0].kind.as_str(), owners[0].name.as_str()),
                ("ConfigMap", "mnist")
            );
            assert_eq!(owners[0].uid, "0f1e");
        }
    }

    #[test]
    fn dollars_reach_the_program_as_written() {
        let mut job = pytorch();
        job.roles[1].args = vec!["--out=$(HOME)/x".into()];
        job.roles[1].env.insert("PRICE".into(), "$5".into());
        let objects = render_job(&job, &RenderOptions::default()).unwrap();
        let worker = jobs(&objects)[1];
        assert_eq!(
            container(worker).args,
            Some(vec!["--out=$$(HOME)/x".into()])
        );
        assert_eq!(env(worker)["PRICE"], "$$5");
        assert_eq!(literal("$$"), "$$$$");
    }

    #[test]
    fn names_kubernetes_refuses_are_reported_together() {
        let mut job = Job::new(
            &format!("1{}", "m".repeat(39)),
            "vision",
            Framework::Custom,
            vec![
                Role::new("main", 1, &["sim"]),
                Role::new(&"w".repeat(20), 100, &["sim"]),
            ],
        );
        job.roles[0].working_dir = Some("src".into());
        let Err(Error::InvalidSpec { kind, errors }) = render_job(&job, &RenderOptions::default())
        else {
            panic!("rendered");
        };
        assert_eq!(kind, "job");
        let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["name", "roles[0].workingDir", "roles[1]"]);
        assert!(errors.0[2].message.contains("is 64 characters"), "{errors}");
    }

    #[test]
    fn invalid_specs_are_refused_before_rendering() {
        let mut job = pytorch();
        job.roles.remove(0);
        let error = render_job(&job, &RenderOptions::default()).unwrap_err();
        assert!(
            error.to_string().contains("needs a \"master\" role"),
            "{error}"
        );
    }

    #[test]
    fn a_time_to_live_is_not_supported() {
        let mut job = pytorch();
        job.ttl_seconds_after_finished = Some(60);
        let error = render_job(&job, &RenderOptions::default()).unwrap_err();
        assert!(matches!(error, Error::NotSupported(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("ttlSecondsAfterFinished on the kubernetes backend"),
            "{error}"
        );
    }

    #[test]
    fn only_the_hidden_tracker_is_gated() {
        let job = Job::new(
            "sim",
            "vision",
            Framework::Custom,
            vec![
                Role::new(TRACKER, 1, &["track"]),
                Role::new("worker", 2, &["work"]),
            ],
        );
        let objects = render_job(&job, &RenderOptions::default()).unwrap();
        assert_eq!(objects.iter().filter(|o| o.kind() == "Service").count(), 1);
        for job in jobs(&objects) {
            let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            assert!(pod.init_containers.is_none());
            assert!(pod.containers[0].readiness_probe.is_none());
            assert!(pod.containers[0].ports.is_none());
        }
    }

    #[test]
    fn a_service_lists_each_port_number_once() {
        let job = Job::new(
            "resnet",
            "vision",
            Framework::Tensorflow,
            vec![
                Role::new("chief", 1, &["python3"]),
                Role::new("worker", 2, &["python3"]),
            ],
        );
        let ports = service_ports(&job, &endpoints(&job));
        assert_eq!(ports, [service_port("tensorflow", TENSORFLOW_PORT)]);
        let custom = Job::new(
            "sim",
            "vision",
            Framework::Custom,
            vec![Role::new("a", 1, &["sim"])],
        );
        assert!(service_ports(&custom, &endpoints(&custom)).is_empty());
    }
}
