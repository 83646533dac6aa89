//! A tenant as Kubernetes objects: its namespace and what fences it in.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KubeQuantity;

use super::meta::{TENANT_LABEL, cpu_quantity, labels, memory_quantity, meta};
use super::network::{isolation_label, render_tenant_network};
use super::object::Object;
use crate::error::Result;
use crate::spec::{Role, Tenant, validate_tenant};

/// The Namespace annotation that holds the tenant's spec as applied, so that
/// the cluster alone answers what a tenant is (its `jobs` quota has no
/// Kubernetes object to live in).
pub const TENANT_SPEC_ANNOTATION: &str = "moon.dev/tenant-spec";
/// The tenant's ResourceQuota.
pub const QUOTA: &str = "moon-quota";
/// The tenant's LimitRange.
pub const LIMIT_RANGE: &str = "moon-defaults";
/// The ServiceAccount replicas run as.
pub const WORKLOAD_SERVICE_ACCOUNT: &str = "moon-workload";
/// The Role, and its RoleBinding, of the tenant's users and groups.
pub const USER_ROLE: &str = "moon-tenant-user";

/// Pod Security admission's level for the namespace. `baseline` refuses
/// host networking, host paths and privileged containers, any of which would
/// step around the network policies and the quota; GPUs need none of them.
const POD_SECURITY: (&str, &str) = ("pod-security.kubernetes.io/enforce", "baseline");

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The objects of a tenant, in the order they are applied: the Namespace
/// first, since everything else lives in it. See the [module docs](super).
pub fn render_tenant(tenant: &Tenant) -> Result<Vec<Object>> {
    validate_tenant(tenant)?;
    let name = tenant.name.as_str();
    let labels = labels(&tenant.labels, &[(TENANT_LABEL, name)]);
    let meta = |object: &str| meta(object, Some(name), &labels);

    let mut namespace_labels = labels.clone();
    namespace_labels.insert(POD_SECURITY.0.to_string(), POD_SECURITY.1.to_string());
    let (isolation_key, isolation) = isolation_label(tenant);
    namespace_labels.insert(isolation_key.to_string(), isolation.to_string());
    let mut namespace_meta = super::meta::meta(name, None, &namespace_labels);
    let spec = serde_json::to_string(tenant).expect("a tenant spec serializes");
    namespace_meta.annotations = Some(BTreeMap::from([(TENANT_SPEC_ANNOTATION.to_string(), spec)]));
    let namespace = core::Namespace {
        metadata: namespace_meta,
        ..core::Namespace::default()
    };

    let mut hard = BTreeMap::new();
    if let Some(cpus) = &tenant.quota.cpus {
        let cpus = cpu_quantity(cpus, "tenant", "quota.cpus")?;
        hard.insert("requests.cpu".to_string(), cpus.clone());
        hard.insert("limits.cpu".to_string(), cpus);
    }
    if let Some(memory) = &tenant.quota.memory {
        let memory = memory_quantity(memory, "tenant", "quota.memory")?;
        hard.insert("requests.memory".to_string(), memory.clone());
        hard.insert("limits.memory".to_string(), memory);
    }
    if let Some(gpus) = tenant.quota.gpus {
        // Kubernetes quotas extended resources by their requests only.
        hard.insert(
            "requests.nvidia.com/gpu".to_string(),
            KubeQuantity(gpus.to_string()),
        );
    }
    // Rendered even when unlimited, so that applying a tenant whose limits
    // were removed clears them rather than leaving the old quota behind.
    let quota = core::ResourceQuota {
        metadata: meta(QUOTA),
        spec: Some(core::ResourceQuotaSpec {
            hard: Some(hard),
            ..core::ResourceQuotaSpec::default()
        }),
        ..core::ResourceQuota::default()
    };

    // A quota on CPU and memory refuses pods that do not state theirs; pods
    // made outside moon (a debugging pod, a notebook) get what a moon role
    // gets when its spec names nothing.
    let defaults = Role::new("defaults", 1, &[]);
    let resources = BTreeMap::from([
        (
            "cpu".to_string(),
            cpu_quantity(&defaults.cpus, "tenant", "quota.cpus")?,
        ),
        (
            "memory".to_string(),
            memory_quantity(&defaults.memory, "tenant", "quota.memory")?,
        ),
    ]);
    let limit_range = core::LimitRange {
        metadata: meta(LIMIT_RANGE),
        spec: Some(core::LimitRangeSpec {
            limits: vec![core::LimitRangeItem {
                type_: "Container".to_string(),
                default: Some(resources.clone()),
                default_request: Some(resources),
                ..core::LimitRangeItem::default()
            }],
        }),
    };

    // Training code needs no API access; an account of its own still gives
    // administrators one place to attach pull secrets or a workload identity.
    let service_account = core::ServiceAccount {
        metadata: meta(WORKLOAD_SERVICE_ACCOUNT),
        automount_service_account_token: Some(false),
        ..core::ServiceAccount::default()
    };

    let role = rbac::Role {
        metadata: meta(USER_ROLE),
        rules: Some(vec![
            // Its own Namespace only (a Role grants `get` on the Namespace
            // it lives in): the tenant's spec and `jobs` quota are read there.
            rule("", &["namespaces"], &["get"]),
            rule("batch", &["jobs"], WRITE),
            rule("", &["configmaps", "services"], WRITE),
            // The tenant's own secrets, which its roles name in `envFrom`.
            rule("", &["secrets"], WRITE),
            // A job's objects name its anchor ConfigMap as their owner with
            // blockOwnerDeletion, which clusters enforcing owner-reference
            // permissions allow only to who may update the owner's finalizers.
            rule("", &["configmaps/finalizers"], &["update"]),
            rule("", &["pods"], &["delete", "get", "list", "watch"]),
            rule("", &["pods/log"], &["get"]),
            rule("", &["events"], READ),
            rule("events.k8s.io", &["events"], READ),
            // So that users see why a pod waits.
            rule("", &["limitranges", "resourcequotas"], READ),
            // Inference services: what `render_service` applies, the scale
            // subresource they are scaled through, and the EndpointSlices
            // their status and client-side balancing read.
            rule("apps", &["deployments"], WRITE),
            rule("apps", &["deployments/scale"], &["get", "patch", "update"]),
            rule("autoscaling", &["horizontalpodautoscalers"], WRITE),
            rule("policy", &["poddisruptionbudgets"], WRITE),
            rule("networking.k8s.io", &["ingresses"], WRITE),
            rule("keda.sh", &["scaledobjects"], WRITE),
            rule("discovery.k8s.io", &["endpointslices"], READ),
        ]),
    };

    let subjects = tenant
        .users
        .iter()
        .map(|user| subject("User", user))
        .chain(tenant.groups.iter().map(|group| subject("Group", group)))
        .collect();
    let role_binding = rbac::RoleBinding {
        metadata: meta(USER_ROLE),
        role_ref: rbac::RoleRef {
            // A `String` up to Kubernetes 1.36, an `Option` from 1.37 on;
            // `into` fills either, whichever version the build picked.
            #[allow(clippy::useless_conversion)]
            api_group: RBAC_GROUP.to_string().into(),
            kind: "Role".to_string(),
            name: USER_ROLE.to_string(),
        },
        subjects: Some(subjects),
    };

    let mut objects = vec![
        namespace.into(),
        quota.into(),
        limit_range.into(),
        service_account.into(),
        role.into(),
        role_binding.into(),
    ];
    objects.extend(render_tenant_network(tenant, &labels));
    Ok(objects)
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> rbac::PolicyRule {
    let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
    rbac::PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..rbac::PolicyRule::default()
    }
}

fn subject(kind: &str, name: &str) -> rbac::Subject {
    rbac::Subject {
        api_group: Some(RBAC_GROUP.to_string()),
        kind: kind.to_string(),
        name: name.to_string(),
        namespace: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::{MANAGED_BY_LABEL, MANAGER};
    use crate::spec::TenantQuota;

    #[test]
    fn an_unlimited_tenant_gets_an_empty_quota() {
        let tenant = Tenant {
            name: "vision".into(),
            ..Tenant::default()
        };
        let objects = render_tenant(&tenant).unwrap();
        let Object::ResourceQuota(quota) = &objects[1] else {
            panic!("{:?}", objects[1]);
        };
        assert_eq!(quota.spec.as_ref().unwrap().hard, Some(BTreeMap::new()));
        for object in &objects {
            let labels = object.metadata().labels.as_ref().unwrap();
            assert_eq!(labels[MANAGED_BY_LABEL], MANAGER);
            assert_eq!(labels[TENANT_LABEL], "vision");
        }
    }

    #[test]
    fn an_invalid_tenant_is_refused() {
        let tenant = Tenant {
            name: "Vision".into(),
            quota: TenantQuota {
                cpus: Some("lots".into()),
                ..TenantQuota::default()
            },
            ..Tenant::default()
        };
        let error = render_tenant(&tenant).unwrap_err().to_string();
        assert!(error.starts_with("invalid tenant: name: "), "{error}");
        assert!(error.contains("quota.cpus"), "{error}");
    }
}
