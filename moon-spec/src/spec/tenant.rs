//! A tenant: one team's share of the platform.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Quantity, TenantKind, TenantNetwork, TenantStorage};

/// A tenant's spec. On Kubernetes it becomes a namespace with a quota and
/// RBAC; on the local backend its quota is enforced by moon's admission.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// `Tenant`; optional in a spec file, always written.
    #[serde(default)]
    pub kind: TenantKind,
    /// DNS label naming the tenant (`vision`).
    pub name: String,
    /// Limits on what the tenant's running jobs may hold at once.
    #[serde(default, deserialize_with = "super::mapping::one")]
    pub quota: TenantQuota,
    /// The storage systems the tenant gets space on.
    #[serde(
        default,
        deserialize_with = "super::mapping::one",
        skip_serializing_if = "TenantStorage::is_empty"
    )]
    pub storage: TenantStorage,
    /// How the tenant's pods are isolated and what they may reach.
    #[serde(
        default,
        deserialize_with = "super::mapping::one",
        skip_serializing_if = "TenantNetwork::is_empty"
    )]
    pub network: TenantNetwork,
    /// Users granted access to the tenant on clusters with access control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Groups granted access to the tenant on clusters with access control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Free-form labels copied onto everything made for the tenant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Limits of a tenant; a limit left out is unlimited.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantQuota {
    /// CPUs, as a number or millicores (`"500m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Quantity>,
    /// Memory (`"8Gi"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Whole GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u64>,
    /// Jobs admitted and not yet finished, counted by moon's own admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u64>,
}
