//! The rules a spec must meet beyond its shape. Every broken rule is
//! reported, each with its field path, so a user fixes a spec in one go.

use std::collections::{BTreeMap, HashSet};

use super::{
    Autoscale, Expose, Framework, Job, Quantity, Readiness, Role, Service, StorageSystem, Tenant,
    TenantStorage, Volume,
};
use crate::error::{Error, FieldError, FieldErrors, rule};
use crate::secret::SecretData;

/// Longest name of a tenant or job: a Kubernetes label value (63) less room
/// for the suffixes moon appends to object names.
const MAX_NAME_LEN: usize = 40;
/// Longest role name, for the same reason.
const MAX_ROLE_LEN: usize = 20;
/// Most replicas one role or service may ask for.
pub const MAX_REPLICAS: u32 = 10_000;
/// Longest secret name: a DNS label, as a Kubernetes Secret's name can be
/// and a file name always can.
const MAX_SECRET_NAME_LEN: usize = 63;
const ENV_NAME_RULE: &str =
    "must be a variable name of letters, digits and '_', not starting with a digit";
/// Longest `ttlSecondsAfterFinished`: Kubernetes' own field is an int32.
const MAX_TTL_SECONDS: u64 = i32::MAX as u64;

/// What a job holds while it runs, summed over all replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Demand {
    /// CPUs in millicores.
    pub millicores: u64,
    /// Memory in bytes.
    pub bytes: u64,
    /// Whole GPUs.
    pub gpus: u64,
}

impl Demand {
    /// The demand of a valid job. A total beyond 64 bits stays at the
    /// maximum, which no quota or machine can hold, so such a job is refused
    /// at admission instead of wrapping round to a small demand.
    pub fn of(job: &Job) -> Demand {
        let mut demand = Demand::default();
        for role in &job.roles {
            let replicas = u64::from(role.replicas);
            let millicores = role.cpus.millicores().unwrap_or(0);
            let bytes = role.memory.bytes().unwrap_or(0);
            demand.millicores = demand
                .millicores
                .saturating_add(replicas.saturating_mul(millicores));
            demand.bytes = demand.bytes.saturating_add(replicas.saturating_mul(bytes));
            demand.gpus = demand
                .gpus
                .saturating_add(replicas.saturating_mul(role.gpus.count()));
        }
        demand
    }
}

#[derive(Default)]
struct Findings(Vec<FieldError>);

impl Findings {
    fn add(&mut self, rule: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, rule, message));
    }

    fn into_result(self, kind: &'static str) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidSpec {
                kind,
                errors: FieldErrors(self.0),
            })
        }
    }
}

/// Checks a tenant spec.
pub fn validate_tenant(tenant: &Tenant) -> Result<(), Error> {
    let mut findings = Findings::default();
    check_name(&mut findings, "name", &tenant.name, MAX_NAME_LEN);
    if let Some(cpus) = &tenant.quota.cpus {
        check_cpus(&mut findings, "quota.cpus", cpus, true);
    }
    if let Some(memory) = &tenant.quota.memory {
        check_memory(&mut findings, "quota.memory", memory, true);
    }
    for (i, user) in tenant.users.iter().enumerate() {
        if user.trim().is_empty() {
            findings.add(rule::REQUIRED, format!("users[{i}]"), "must not be empty");
        }
    }
    for (i, group) in tenant.groups.iter().enumerate() {
        if group.trim().is_empty() {
            findings.add(rule::REQUIRED, format!("groups[{i}]"), "must not be empty");
        }
    }
    check_storage(&mut findings, &tenant.storage);
    for (rule, path, message) in super::network::check_network(&tenant.network) {
        findings.add(rule, path, message);
    }
    check_labels(&mut findings, &tenant.labels);
    findings.into_result("tenant")
}

/// Checks a job spec, including its framework's role rules.
pub fn validate_job(job: &Job) -> Result<(), Error> {
    let mut findings = Findings::default();
    check_name(&mut findings, "name", &job.name, MAX_NAME_LEN);
    check_name(&mut findings, "tenant", &job.tenant, MAX_NAME_LEN);
    if job.roles.is_empty() {
        findings.add(rule::REQUIRED, "roles", "must have at least one role");
    }
    let mut seen = HashSet::new();
    for (i, role) in job.roles.iter().enumerate() {
        let at = format!("roles[{i}]");
        check_name(
            &mut findings,
            &format!("{at}.name"),
            &role.name,
            MAX_ROLE_LEN,
        );
        if !seen.insert(role.name.as_str()) {
            findings.add(
                rule::UNIQUE,
                format!("{at}.name"),
                format!("role {:?} appears more than once", role.name),
            );
        }
        if role.replicas < 1 {
            findings.add(
                rule::RANGE,
                format!("{at}.replicas"),
                format!("must be at least 1, got {}", role.replicas),
            );
        } else if role.replicas > MAX_REPLICAS {
            findings.add(
                rule::RANGE,
                format!("{at}.replicas"),
                format!("must be at most {MAX_REPLICAS}, got {}", role.replicas),
            );
        }
        check_process(&mut findings, &format!("{at}."), role, true);
    }
    check_framework_roles(&mut findings, job);
    if let Some(image) = &job.image {
        check_image(&mut findings, "image", image);
    }
    if job.active_deadline_seconds == Some(0) {
        findings.add(
            rule::RANGE,
            "activeDeadlineSeconds",
            "must be at least 1, got 0",
        );
    }
    if let Some(ttl) = job.ttl_seconds_after_finished
        && ttl > MAX_TTL_SECONDS
    {
        findings.add(
            rule::RANGE,
            "ttlSecondsAfterFinished",
            format!("must be at most {MAX_TTL_SECONDS} (as in Kubernetes), got {ttl}"),
        );
    }
    check_volumes(&mut findings, &job.volumes);
    check_labels(&mut findings, &job.labels);
    findings.into_result("job")
}

/// Checks a service's spec, naming every field that breaks a rule.
pub fn validate_service(service: &Service) -> Result<(), Error> {
    let mut findings = Findings::default();
    check_name(&mut findings, "name", &service.name, MAX_NAME_LEN);
    check_name(&mut findings, "tenant", &service.tenant, MAX_NAME_LEN);
    // On Kubernetes the image's entrypoint may run instead; the local backend refuses a
    // service without a command when it is served.
    let command_required = service.image.is_none();
    check_process(&mut findings, "", &service.replica_role(), command_required);
    if service.port == 0 {
        findings.add(rule::RANGE, "port", "must be between 1 and 65535, got 0");
    }
    if service.replicas > MAX_REPLICAS {
        findings.add(
            rule::RANGE,
            "replicas",
            format!("must be at most {MAX_REPLICAS}, got {}", service.replicas),
        );
    }
    if let Some(readiness) = &service.readiness {
        check_readiness(&mut findings, readiness);
    }
    if let Some(autoscale) = &service.autoscale {
        check_autoscale(&mut findings, autoscale);
    }
    if let Some(expose) = &service.expose {
        check_expose(&mut findings, expose);
    }
    check_volumes(&mut findings, &service.volumes);
    check_labels(&mut findings, &service.labels);
    findings.into_result("service")
}

/// The longest stabilization window, as the HorizontalPodAutoscaler allows (one hour).
const MAX_STABILIZATION_SECONDS: u32 = 3600;

fn check_readiness(findings: &mut Findings, readiness: &Readiness) {
    match (&readiness.http_path, readiness.tcp) {
        (Some(_), true) => findings.add(
            rule::FORMAT,
            "readiness",
            "give httpPath or tcp: true, not both",
        ),
        (None, false) => findings.add(
            rule::REQUIRED,
            "readiness",
            "must give httpPath (an HTTP GET) or tcp: true (a TCP connect)",
        ),
        (Some(path), false) => {
            if let Some(problem) = url_path_problem(path) {
                findings.add(rule::FORMAT, "readiness.httpPath", problem);
            }
        }
        (None, true) => {}
    }
    for (field, value) in [
        ("periodSeconds", readiness.period_seconds),
        ("timeoutSeconds", readiness.timeout_seconds),
        ("failureThreshold", readiness.failure_threshold),
    ] {
        if value == 0 {
            findings.add(
                rule::RANGE,
                format!("readiness.{field}"),
                "must be at least 1, got 0",
            );
        }
    }
}

fn check_autoscale(findings: &mut Findings, autoscale: &Autoscale) {
    if autoscale.max_replicas < 1 || autoscale.max_replicas > MAX_REPLICAS {
        findings.add(
            rule::RANGE,
            "autoscale.maxReplicas",
            format!(
                "must be between 1 and {MAX_REPLICAS}, got {}",
                autoscale.max_replicas
            ),
        );
    } else if autoscale.min_replicas > autoscale.max_replicas {
        findings.add(
            rule::RANGE,
            "autoscale.minReplicas",
            format!(
                "must be at most maxReplicas ({}), got {}",
                autoscale.max_replicas, autoscale.min_replicas
            ),
        );
    }
    let targets = [
        (
            "targetRequestsPerSecond",
            autoscale.target_requests_per_second,
        ),
        ("targetInFlight", autoscale.target_in_flight),
    ];
    let given: Vec<&str> = targets
        .iter()
        .filter(|(_, value)| value.is_some())
        .map(|(field, _)| *field)
        .collect();
    if given.len() != 1 {
        findings.add(
            if given.is_empty() {
                rule::REQUIRED
            } else {
                rule::FORMAT
            },
            "autoscale",
            format!(
                "must give exactly one target, targetRequestsPerSecond or targetInFlight; got {}",
                if given.is_empty() {
                    "none".to_string()
                } else {
                    given.join(" and ")
                }
            ),
        );
    }
    for (field, value) in targets {
        if let Some(value) = value
            && !(value.is_finite() && value > 0.0)
        {
            findings.add(
                rule::RANGE,
                format!("autoscale.{field}"),
                format!("must be a number above 0, got {value}"),
            );
        }
    }
    for (field, value) in [
        (
            "scaleUpStabilizationSeconds",
            autoscale.scale_up_stabilization_seconds,
        ),
        (
            "scaleDownStabilizationSeconds",
            autoscale.scale_down_stabilization_seconds,
        ),
    ] {
        if value > MAX_STABILIZATION_SECONDS {
            findings.add(
                rule::RANGE,
                format!("autoscale.{field}"),
                format!(
                    "must be at most {MAX_STABILIZATION_SECONDS} (as in Kubernetes), got {value}"
                ),
            );
        }
    }
}

fn check_expose(findings: &mut Findings, expose: &Expose) {
    if let Some(host) = &expose.host
        && !is_dns_subdomain(host)
    {
        findings.add(
            rule::FORMAT,
            "expose.host",
            format!("must be a DNS name (lowercase letters, digits, '-' and '.'), got {host:?}"),
        );
    }
    if let Some(problem) = url_path_problem(&expose.path) {
        findings.add(rule::FORMAT, "expose.path", problem);
    }
    if let Some(rpc) = &expose.rpc {
        check_name(findings, "expose.rpc", rpc, MAX_NAME_LEN);
    }
}

/// What is wrong with `path` as the path of an HTTP URL, if anything.
fn url_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        Some(format!("must start with '/', got {path:?}"))
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(format!(
            "must not hold spaces or control characters, got {path:?}"
        ))
    } else {
        None
    }
}

/// The checks of one kind of replica, a job's role or a service's: its program, environment,
/// secrets, directory, image and resources. `at` prefixes every path (`roles[0].`, or `` for a
/// service's own fields).
fn check_process(findings: &mut Findings, at: &str, role: &Role, command_required: bool) {
    if role.command.is_empty() {
        if command_required {
            findings.add(
                rule::REQUIRED,
                format!("{at}command"),
                "must name a program",
            );
        }
    } else if role.command[0].trim().is_empty() {
        findings.add(
            rule::REQUIRED,
            format!("{at}command[0]"),
            "must not be empty",
        );
    }
    for key in role.env.keys() {
        if !is_env_name(key) {
            findings.add(
                rule::FORMAT,
                format!("{at}env.{key}"),
                format!("{ENV_NAME_RULE}, got {key:?}"),
            );
        }
    }
    let mut inherited = HashSet::new();
    for (j, name) in role.inherit_env.iter().enumerate() {
        let path = format!("{at}inheritEnv[{j}]");
        if !is_env_name(name) {
            findings.add(rule::FORMAT, path, format!("{ENV_NAME_RULE}, got {name:?}"));
        } else if !inherited.insert(name.as_str()) {
            findings.add(
                rule::UNIQUE,
                path,
                format!("{name:?} appears more than once"),
            );
        }
    }
    let mut secrets = HashSet::new();
    for (j, source) in role.env_from.iter().enumerate() {
        let path = format!("{at}envFrom[{j}].secret");
        let before = findings.0.len();
        check_name(findings, &path, &source.secret, MAX_SECRET_NAME_LEN);
        if findings.0.len() == before && !secrets.insert(source.secret.as_str()) {
            findings.add(
                rule::UNIQUE,
                path,
                format!("secret {:?} appears more than once", source.secret),
            );
        }
    }
    if let Some(dir) = &role.working_dir
        && dir.trim().is_empty()
    {
        findings.add(
            rule::REQUIRED,
            format!("{at}workingDir"),
            "must not be empty when given",
        );
    }
    if let Some(image) = &role.image {
        check_image(findings, &format!("{at}image"), image);
    }
    check_cpus(findings, &format!("{at}cpus"), &role.cpus, false);
    check_memory(findings, &format!("{at}memory"), &role.memory, false);
}

/// Checks that every volume of `job` is on a system `tenant` has storage on: what a job's own
/// spec cannot tell, checked when it is submitted.
pub fn check_volumes_of_tenant(job: &Job, tenant: &Tenant) -> Result<(), Error> {
    let mut findings = Findings::default();
    let storage = &tenant.storage;
    let has = |system: StorageSystem| match system {
        StorageSystem::Seaweedfs => storage.seaweedfs.is_some(),
        StorageSystem::Hdfs => storage.hdfs.is_some(),
        StorageSystem::Gluster => storage.gluster.is_some(),
    };
    let own: Vec<&str> = [
        StorageSystem::Seaweedfs,
        StorageSystem::Hdfs,
        StorageSystem::Gluster,
    ]
    .into_iter()
    .filter(|system| has(*system))
    .map(StorageSystem::as_str)
    .collect();
    for (i, volume) in job.volumes.iter().enumerate() {
        let Some(system) = volume.system() else {
            continue;
        };
        if !has(system) {
            let field = if volume.store.is_some() {
                "store"
            } else {
                "url"
            };
            let owns = if own.is_empty() {
                "none".to_string()
            } else {
                own.join(", ")
            };
            findings.add(
                rule::UNSUPPORTED,
                format!("volumes[{i}].{field}"),
                format!(
                    "tenant {:?} has no {system} storage (its spec's storage gives {owns})",
                    tenant.name
                ),
            );
        }
    }
    findings.into_result("job")
}

/// The URL schemes a volume may name.
const VOLUME_SCHEMES: &str = "seaweedfs://, hdfs:// or gluster://";

fn check_volumes(findings: &mut Findings, volumes: &[Volume]) {
    let mut names = HashSet::new();
    let mut mount_paths = HashSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let at = format!("volumes[{i}]");
        let before = findings.0.len();
        check_name(findings, &format!("{at}.name"), &volume.name, MAX_NAME_LEN);
        if findings.0.len() == before && !names.insert(volume.name.as_str()) {
            findings.add(
                rule::UNIQUE,
                format!("{at}.name"),
                format!("volume {:?} appears more than once", volume.name),
            );
        }
        match (&volume.store, &volume.url) {
            (None, None) => findings.add(
                rule::REQUIRED,
                at.clone(),
                "must give a store (and a path in it) or a url",
            ),
            (Some(_), Some(_)) => findings.add(
                rule::FORMAT,
                format!("{at}.url"),
                "give either store (and path) or url, not both",
            ),
            (None, Some(url)) => {
                if volume.path.is_some() {
                    findings.add(
                        rule::FORMAT,
                        format!("{at}.path"),
                        "goes with store only; a url holds its own path",
                    );
                }
                let readable = !url.chars().any(|c| c.is_whitespace() || c.is_control());
                if !readable || StorageSystem::of_url(url).is_none() {
                    findings.add(
                        rule::FORMAT,
                        format!("{at}.url"),
                        format!("must be a {VOLUME_SCHEMES} URL, got {url:?}"),
                    );
                }
            }
            (Some(_), None) => {}
        }
        if let Some(path) = &volume.path
            && let Some(problem) = store_path_problem(path)
        {
            findings.add(
                rule::FORMAT,
                format!("{at}.path"),
                format!("{problem}, got {path:?}"),
            );
        }
        match mount_path_problem(&volume.mount_path) {
            Some(problem) => findings.add(
                rule::FORMAT,
                format!("{at}.mountPath"),
                format!("{problem}, got {:?}", volume.mount_path),
            ),
            None => {
                let normal = volume.mount_path.trim_end_matches('/');
                if !mount_paths.insert(normal) {
                    findings.add(
                        rule::UNIQUE,
                        format!("{at}.mountPath"),
                        format!("{normal:?} is the mount path of another volume"),
                    );
                }
            }
        }
        if volume.cached
            && let Some(system) = volume.system()
            && system != StorageSystem::Hdfs
        {
            findings.add(
                rule::UNSUPPORTED,
                format!("{at}.cached"),
                format!("only HDFS volumes can be cached, this one is on {system}"),
            );
        }
        if volume.cached && !volume.read_only {
            // The cache serves reads; Fluid's dataset is mounted read-only.
            findings.add(
                rule::UNSUPPORTED,
                format!("{at}.readOnly"),
                "must be true for a cached volume: the cache serves reads only",
            );
        }
    }
}

/// What is wrong with a directory inside a store, if anything: the rules of moon-storage's
/// `StorePath` (relative, no empty, `.` or `..` segments, no control characters).
fn store_path_problem(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("must be relative to the store, not absolute");
    }
    if path.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    let segments_ok = path
        .split('/')
        .all(|segment| !matches!(segment, "" | "." | ".."));
    (!segments_ok).then_some("must be '/'-separated names without empty, '.' or '..' segments")
}

/// What is wrong with a mount path, if anything.
fn mount_path_problem(path: &str) -> Option<&'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some("must be an absolute path");
    };
    if path.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Some("must not be the root directory");
    }
    let segments_ok = rest
        .split('/')
        .all(|segment| !matches!(segment, "" | "." | ".."));
    (!segments_ok).then_some("must not have empty, '.' or '..' segments")
}

/// Checks a secret before it is stored: its name is a DNS label and each
/// key a variable name, since its keys become variables of replicas. The
/// errors name keys, never values.
pub fn validate_secret(name: &str, data: &SecretData) -> Result<(), Error> {
    let mut findings = Findings::default();
    check_name(&mut findings, "name", name, MAX_SECRET_NAME_LEN);
    if data.is_empty() {
        findings.add(rule::REQUIRED, "data", "must have at least one key");
    }
    for (key, value) in data.expose() {
        if !is_env_name(key) {
            findings.add(
                rule::FORMAT,
                format!("data.{key}"),
                format!("key {ENV_NAME_RULE}, got {key:?}"),
            );
        }
        if value.contains('\0') {
            // A process's environment cannot hold a NUL byte.
            findings.add(
                rule::FORMAT,
                format!("data.{key}"),
                "value must not contain a NUL byte",
            );
        }
    }
    findings.into_result("secret")
}

/// Checks the name of a secret to read or delete.
pub fn validate_secret_name(name: &str) -> Result<(), Error> {
    let mut findings = Findings::default();
    check_name(&mut findings, "name", name, MAX_SECRET_NAME_LEN);
    findings.into_result("secret")
}

/// An image reference: what `docker pull` takes, so no spaces and not empty.
fn check_image(findings: &mut Findings, path: &str, image: &str) {
    if image.is_empty() {
        findings.add(rule::REQUIRED, path, "must not be empty when given");
    } else if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        findings.add(
            rule::FORMAT,
            path,
            format!("must be an image reference without spaces, got {image:?}"),
        );
    }
}

fn check_framework_roles(findings: &mut Findings, job: &Job) {
    let Some(rules) = job.framework.role_rules() else {
        return;
    };
    let allowed: Vec<&str> = rules.iter().map(|rule| rule.name).collect();
    for (i, role) in job.roles.iter().enumerate() {
        match job.framework.role_rule(&role.name) {
            None => findings.add(
                rule::FRAMEWORK,
                format!("roles[{i}].name"),
                format!(
                    "{} allows roles {}, got {:?}",
                    job.framework,
                    allowed.join(", "),
                    role.name
                ),
            ),
            // Below 1 is already reported, whatever the framework.
            Some(rule) if role.replicas >= 1 => {
                if role.replicas < rule.min_replicas {
                    findings.add(
                        rule::FRAMEWORK,
                        format!("roles[{i}].replicas"),
                        format!(
                            "{} {} must have at least {} replicas, got {}",
                            job.framework, role.name, rule.min_replicas, role.replicas
                        ),
                    );
                }
                if let Some(max) = rule.max_replicas
                    && role.replicas > max
                {
                    let bound = if rule.required && rule.min_replicas == max {
                        "exactly"
                    } else {
                        "at most"
                    };
                    findings.add(
                        rule::FRAMEWORK,
                        format!("roles[{i}].replicas"),
                        format!(
                            "{} {} must have {bound} {max} replica{}, got {}",
                            job.framework,
                            role.name,
                            if max == 1 { "" } else { "s" },
                            role.replicas
                        ),
                    );
                }
            }
            Some(_) => {}
        }
    }
    for rule in rules.iter().filter(|rule| rule.required) {
        if !job.roles.iter().any(|role| role.name == rule.name) {
            findings.add(
                rule::FRAMEWORK,
                "roles",
                format!("{} needs a {:?} role", job.framework, rule.name),
            );
        }
    }
    if job.framework == Framework::Tensorflow
        && !job
            .roles
            .iter()
            .any(|role| role.name == "chief" || role.name == "worker")
    {
        findings.add(
            rule::FRAMEWORK,
            "roles",
            "tensorflow needs a \"chief\" or a \"worker\" role",
        );
    }
}

fn check_name(findings: &mut Findings, path: &str, name: &str, max: usize) {
    if name.is_empty() {
        findings.add(rule::REQUIRED, path, "must not be empty");
        return;
    }
    if name.len() > max {
        findings.add(
            rule::RANGE,
            path,
            format!("must be at most {max} characters, got {}", name.len()),
        );
    }
    let valid = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        findings.add(rule::FORMAT,
            path,
            format!(
                "must be lowercase letters, digits and '-', starting and ending with a letter or digit, got {name:?}"
            ),
        );
    }
}

/// Smallest Gluster volume: its directory quota is kept in whole blocks, and a volume smaller
/// than a few of them is a mistake rather than a choice.
const MIN_GLUSTER_BYTES: u64 = 1 << 20;
/// SeaweedFS keeps a TTL's count in one byte.
const MAX_SEAWEEDFS_TTL_COUNT: u32 = 255;

fn check_storage(findings: &mut Findings, storage: &TenantStorage) {
    if let Some(seaweedfs) = &storage.seaweedfs {
        if let Some(replication) = &seaweedfs.replication
            && (replication.len() != 3 || !replication.bytes().all(|b| b.is_ascii_digit()))
        {
            findings.add(
                rule::FORMAT,
                "storage.seaweedfs.replication",
                format!("must be three digits (copies on other data centres, racks and servers), such as \"001\", got {replication:?}"),
            );
        }
        if let Some(ttl) = &seaweedfs.ttl
            && let Some(message) = seaweedfs_ttl_problem(ttl)
        {
            findings.add(rule::FORMAT, "storage.seaweedfs.ttl", message);
        }
    }
    if let Some(hdfs) = &storage.hdfs {
        if let Some(quota) = &hdfs.space_quota {
            check_memory(findings, "storage.hdfs.spaceQuota", quota, false);
        }
        if let Some(kerberos) = &hdfs.kerberos {
            if !is_principal(&kerberos.principal) {
                findings.add(
                    rule::FORMAT,
                    "storage.hdfs.kerberos.principal",
                    format!(
                        "must be primary[/instance]@REALM, got {:?}",
                        kerberos.principal
                    ),
                );
            }
            check_name(
                findings,
                "storage.hdfs.kerberos.keytabSecret",
                &kerberos.keytab_secret,
                MAX_SECRET_NAME_LEN,
            );
        }
        if let Some(cache) = &hdfs.cache {
            if cache.memory.is_none() && cache.disk.is_none() {
                findings.add(
                    rule::REQUIRED,
                    "storage.hdfs.cache",
                    "must give memory, disk or both",
                );
            }
            if let Some(memory) = &cache.memory {
                check_memory(findings, "storage.hdfs.cache.memory", memory, false);
            }
            if let Some(disk) = &cache.disk {
                check_memory(findings, "storage.hdfs.cache.disk", disk, false);
            }
        }
    }
    if let Some(gluster) = &storage.gluster {
        match gluster.size.bytes() {
            Err(problem) => findings.add(rule::FORMAT, "storage.gluster.size", problem),
            Ok(bytes) if bytes < MIN_GLUSTER_BYTES => findings.add(
                rule::RANGE,
                "storage.gluster.size",
                format!("must be at least 1Mi, got {}", gluster.size.written()),
            ),
            Ok(_) => {}
        }
    }
}

/// What is wrong with a SeaweedFS TTL (`30d`), if anything.
fn seaweedfs_ttl_problem(ttl: &str) -> Option<String> {
    let rule = "must be a count of 1-255 and a unit of m, h, d, w, M or y, such as \"30d\"";
    let Some(unit) = ttl.chars().last() else {
        return Some(format!("{rule}, got \"\""));
    };
    let count = &ttl[..ttl.len() - unit.len_utf8()];
    let count_ok = !count.is_empty()
        && count.bytes().all(|b| b.is_ascii_digit())
        && count
            .parse::<u32>()
            .is_ok_and(|n| (1..=MAX_SEAWEEDFS_TTL_COUNT).contains(&n));
    if count_ok && "mhdwMy".contains(unit) {
        None
    } else {
        Some(format!("{rule}, got {ttl:?}"))
    }
}

/// A Kerberos principal: `primary[/instance]@REALM`, no part empty, no spaces.
fn is_principal(principal: &str) -> bool {
    let Some((name, realm)) = principal.rsplit_once('@') else {
        return false;
    };
    let well_formed =
        |part: &str| !part.is_empty() && !part.chars().any(|c| c.is_whitespace() || c.is_control());
    let (primary, instance) = name.split_once('/').unwrap_or((name, "x"));
    well_formed(primary)
        && well_formed(instance)
        && well_formed(realm)
        && !instance.contains('/')
        && !realm.contains('@')
}

fn check_cpus(findings: &mut Findings, path: &str, cpus: &Quantity, zero_ok: bool) {
    match cpus.millicores() {
        Err(problem) => findings.add(rule::FORMAT, path, problem),
        Ok(0) if !zero_ok => findings.add(
            rule::RANGE,
            path,
            format!("must be more than 0, got {}", cpus.written()),
        ),
        Ok(_) => {}
    }
}

fn check_memory(findings: &mut Findings, path: &str, memory: &Quantity, zero_ok: bool) {
    match memory.bytes() {
        Err(problem) => findings.add(rule::FORMAT, path, problem),
        Ok(0) if !zero_ok => findings.add(
            rule::RANGE,
            path,
            format!("must be more than 0, got {}", memory.written()),
        ),
        Ok(_) => {}
    }
}

/// Labels as Kubernetes takes them, so that a spec valid here is valid on
/// every backend: a key is an optional DNS-subdomain prefix and `/`, then a
/// name of 1-63 letters, digits, `-`, `_` and `.` that starts and ends with
/// a letter or digit; a value is empty or such a name.
fn check_labels(findings: &mut Findings, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        if let Some(message) = label_key_problem(key) {
            findings.add(rule::FORMAT, format!("labels.{key}"), message);
        }
        if let Some((rule, message)) = label_value_problem(value) {
            findings.add(rule, format!("labels.{key}"), message);
        }
    }
}

/// What is wrong with a label (or node selector) `key=value`, if anything.
pub fn label_problem(key: &str, value: &str) -> Option<String> {
    label_key_problem(key).or_else(|| label_value_problem(value).map(|(_, message)| message))
}

fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    (!prefix.is_none_or(is_dns_subdomain) || !is_label_name(name)).then(|| {
        format!(
            "key must be an optional DNS prefix and '/', then 1-63 letters, digits, '-', '_' \
             or '.' starting and ending with a letter or digit, got {key:?}"
        )
    })
}

fn label_value_problem(value: &str) -> Option<(&'static str, String)> {
    if value.len() > 63 {
        Some((
            rule::RANGE,
            format!("value must be at most 63 characters, got {}", value.len()),
        ))
    } else if !value.is_empty() && !is_label_name(value) {
        Some((
            rule::FORMAT,
            format!(
                "value must be letters, digits, '-', '_' or '.' starting and ending with a \
                 letter or digit, got {value:?}"
            ),
        ))
    } else {
        None
    }
}

fn is_label_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    name.len() <= 63
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn is_dns_subdomain(prefix: &str) -> bool {
    prefix.len() <= 253
        && prefix.split('.').all(|part| {
            let edge =
                |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            edge(part.chars().next())
                && edge(part.chars().last())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Whether `name` can name an environment variable: letters, digits and
/// `_`, not starting with a digit.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
