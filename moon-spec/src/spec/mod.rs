//! Specs: what users write (YAML, JSON, Rust, Python) and the rules they must meet.
//!
//! Keys are camelCase, as in Kubernetes (`restartPolicy`, `activeDeadlineSeconds`).
//! Unknown keys are refused.

mod document;
mod framework;
mod gpus;
mod job;
mod kind;
mod mapping;
mod network;
mod quantity;
mod service;
mod storage;
mod tenant;
mod validate;
mod volume;

pub use document::{Spec, spec_from_yaml, spec_kind};
pub use framework::{Framework, RoleRule};
pub use gpus::Gpus;
pub use job::{DEFAULT_BACKOFF_LIMIT, EnvFrom, Job, RestartPolicy, Role};
pub use kind::{JobKind, Kind, ServiceKind, TenantKind};
pub use network::{
    DEFAULT_INGRESS_NAMESPACE, EgressRule, Exposure, Isolation, TenantNetwork, Underlay,
    UnderlayKind,
};
pub use quantity::{Quantity, format_bytes, format_cpus};
pub use service::{
    Autoscale, DEFAULT_SCALE_DOWN_WINDOW, DEFAULT_SERVICE_PORT, Expose, REPLICA_ROLE, Readiness,
    Service,
};
pub use storage::{
    CacheSize, GlusterStorage, HdfsStorage, Kerberos, SeaweedStorage, TenantStorage,
};
pub use tenant::{Tenant, TenantQuota};
pub use validate::{
    Demand, MAX_REPLICAS, check_volumes_of_tenant, is_env_name, label_problem, validate_job,
    validate_secret, validate_secret_name, validate_service, validate_tenant,
};
pub use volume::{StorageSystem, Volume};

use serde::de::DeserializeOwned;

use crate::error::{Error, FieldError, FieldErrors, rule};

/// Parses a spec from YAML (which includes JSON), naming the path of a
/// value that has the wrong type or an unknown key. Text that is a JSON
/// object (what programs and the Python layer send) is read by the JSON
/// parser, several times faster, with the same errors.
pub fn from_yaml<T: DeserializeOwned>(kind: &'static str, text: &str) -> Result<T, Error> {
    let result = if text.trim_start().starts_with('{') {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| (error.path().to_string(), error.into_inner().to_string()))
            .and_then(|value| {
                // Text after the object is an error, as YAML makes it one.
                deserializer
                    .end()
                    .map(|()| value)
                    .map_err(|error| (String::new(), error.to_string()))
            })
    } else {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer)
            .map_err(|error| (error.path().to_string(), error.into_inner().to_string()))
    };
    result.map_err(|(path, message)| {
        // serde_path_to_error writes `.` for the root and `?` where it lost
        // track (text that is not YAML at all): both mean the whole spec.
        let path = if path == "." || path == "?" {
            String::new()
        } else {
            path
        };
        let message = same_words(strip_context(&path, &message));
        let rule = serde_rule(&message);
        Error::InvalidSpec {
            kind,
            errors: FieldErrors(vec![FieldError::new(path, rule, message)]),
        }
    })
}

/// Parses a spec's struct, which must be written as a mapping.
fn struct_from_yaml<T: DeserializeOwned>(kind: &'static str, text: &str) -> Result<T, Error> {
    from_yaml::<mapping::Mapped<T>>(kind, text).map(|mapping::Mapped(value)| value)
}

/// Parses and validates a job spec.
pub fn job_from_yaml(text: &str) -> Result<Job, Error> {
    let job: Job = struct_from_yaml("job", text)?;
    validate_job(&job)?;
    Ok(job)
}

/// Parses and validates a service spec.
pub fn service_from_yaml(text: &str) -> Result<Service, Error> {
    let service: Service = struct_from_yaml("service", text)?;
    validate_service(&service)?;
    Ok(service)
}

/// Parses and validates a tenant spec.
pub fn tenant_from_yaml(text: &str) -> Result<Tenant, Error> {
    let tenant: Tenant = struct_from_yaml("tenant", text)?;
    validate_tenant(&tenant)?;
    Ok(tenant)
}

/// The JSON and YAML parsers word one mistake two ways: a negative number
/// for an unsigned field is an "invalid value" to serde_json and an
/// "invalid type" to serde_yaml_ng. A spec gets the same message whichever
/// form it was written in: the JSON parser's, which is the more exact.
fn same_words(message: String) -> String {
    match message.strip_prefix("invalid type: integer `-") {
        Some(rest) if rest.contains("`, expected u") => {
            format!("invalid value: integer `-{rest}")
        }
        _ => message,
    }
}

/// The rule behind one of serde's messages, which start with the kind of
/// mismatch (`unknown field`, `missing field`, `invalid type`, `unknown
/// variant`); anything else is text that did not parse.
fn serde_rule(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        rule::UNKNOWN_FIELD
    } else if message.starts_with("missing field") {
        rule::REQUIRED
    } else if message.starts_with("invalid type")
        || message.starts_with("unknown variant")
        || message.starts_with("invalid value")
    {
        rule::TYPE
    } else if message.starts_with("invalid length") {
        rule::RANGE
    } else {
        rule::SYNTAX
    }
}

/// serde_yaml_ng prefixes its own path (that of the enclosing mapping for an
/// unknown or missing field) and appends " at line L column C"; the path
/// reported beside the message already says where, so neither is repeated.
fn strip_context(path: &str, message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.is_empty()
        && let Some(below) = path.strip_prefix(prefix)
        && (below.is_empty() || below.starts_with(['.', '[']))
    {
        return rest.to_string();
    }
    message.to_string()
}
