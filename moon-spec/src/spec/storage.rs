//! A tenant's storage: which systems it gets space on, and how much.
//!
//! The spec says *what* a tenant gets; where each system's servers are is the platform's
//! setting, not the tenant's, so the same spec applies on every cluster. Where the tenant's
//! data lives on each system (its directories, collection and volume) follows from its name:
//! see [`crate::storage`].

use serde::{Deserialize, Serialize};

use super::Quantity;

/// The storage systems a tenant has space on; a system left out gives it none.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantStorage {
    /// A SeaweedFS filer directory and collection, for masses of small files.
    #[serde(
        default,
        deserialize_with = "super::mapping::some",
        skip_serializing_if = "Option::is_none"
    )]
    pub seaweedfs: Option<SeaweedStorage>,
    /// An HDFS home directory, for training data.
    #[serde(
        default,
        deserialize_with = "super::mapping::some",
        skip_serializing_if = "Option::is_none"
    )]
    pub hdfs: Option<HdfsStorage>,
    /// A GlusterFS volume of its own, for shared volumes mounted by jobs.
    #[serde(
        default,
        deserialize_with = "super::mapping::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub gluster: Option<GlusterStorage>,
}

impl TenantStorage {
    /// Whether the tenant gets no storage at all.
    pub fn is_empty(&self) -> bool {
        self.seaweedfs.is_none() && self.hdfs.is_none() && self.gluster.is_none()
    }
}

/// The tenant's part of SeaweedFS: a filer directory, and a collection of its own that its
/// blobs are written to (so that its volumes, and their deletion, are its own).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeaweedStorage {
    /// SeaweedFS's replication code `xyz`: copies on other data centres, other racks and
    /// other servers of the same rack (`"000"`, one copy, when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
    /// How long blobs live unless rewritten: a count of 1-255 and a unit, `m`inutes, `h`ours,
    /// `d`ays, `w`eeks, `M`onths or `y`ears (`"30d"`); kept forever when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// The tenant's HDFS home directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HdfsStorage {
    /// Most bytes the home directory may hold, replicas included (HDFS's space quota);
    /// unlimited when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_quota: Option<Quantity>,
    /// The tenant's Kerberos identity, on clusters that require it.
    #[serde(
        default,
        deserialize_with = "super::mapping::some",
        skip_serializing_if = "Option::is_none"
    )]
    pub kerberos: Option<Kerberos>,
    /// A cache in front of the home directory (Alluxio through Fluid on Kubernetes, moon's
    /// own read-through cache on the local backend).
    #[serde(
        default,
        deserialize_with = "super::mapping::some",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache: Option<CacheSize>,
}

/// A Kerberos identity: its principal, and the moon secret that holds its keytab.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kerberos {
    /// `primary[/instance]@REALM`.
    pub principal: String,
    /// The tenant's secret whose `KEYTAB` key holds the keytab, base64-encoded; the keytab
    /// itself never appears in a spec.
    pub keytab_secret: String,
}

/// How much a cache may hold in each tier; at least one is given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheSize {
    /// Bytes held in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Bytes held on local disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<Quantity>,
}

/// The tenant's GlusterFS volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlusterStorage {
    /// The volume's size (`"10Gi"`); raising it expands the volume.
    pub size: Quantity,
}
