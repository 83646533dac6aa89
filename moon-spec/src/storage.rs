//! Where a tenant's data lives on each storage system, derived from its name alone.
//!
//! Both backends use these names: the local backend provisions them, the Kubernetes backend
//! renders volumes that point at them, and a tenant's store is confined to them. Names in a
//! namespace that other software shares on the server (SeaweedFS collections, Gluster
//! volumes) carry moon's prefix; directories live under [`TENANTS_DIR`].
//!
//! ```
//! use moon_spec::storage;
//!
//! assert_eq!(storage::seaweedfs_dir("vision"), "/tenants/vision");
//! assert_eq!(storage::seaweedfs_collection("vision"), "moon-vision");
//! assert_eq!(storage::hdfs_home("vision"), "/tenants/vision");
//! assert_eq!(storage::gluster_volume("vision"), "moon-vision");
//! ```

use crate::spec::Tenant;

/// The directory that holds every tenant's directory, on the SeaweedFS filer and on HDFS.
pub const TENANTS_DIR: &str = "/tenants";

/// The prefix of names moon gives in namespaces shared with other software.
const PREFIX: &str = "moon-";

/// The tenant's directory on the SeaweedFS filer.
pub fn seaweedfs_dir(tenant: &str) -> String {
    format!("{TENANTS_DIR}/{tenant}")
}

/// The SeaweedFS collection the tenant's data is written to.
pub fn seaweedfs_collection(tenant: &str) -> String {
    format!("{PREFIX}{tenant}")
}

/// The tenant's home directory on HDFS.
pub fn hdfs_home(tenant: &str) -> String {
    format!("{TENANTS_DIR}/{tenant}")
}

/// The HDFS user a tenant acts as and whose its home is: the short name of its Kerberos
/// principal where it has one (`vision/etl@EXAMPLE.COM` is `vision`, as Hadoop's default
/// `auth_to_local` rule maps a principal of the cluster's realm), otherwise its name.
///
/// ```
/// use moon_spec::spec::{HdfsStorage, Kerberos, Tenant};
/// use moon_spec::storage::hdfs_user;
///
/// let mut tenant = Tenant { name: "vision".into(), ..Tenant::default() };
/// assert_eq!(hdfs_user(&tenant), "vision");
/// tenant.storage.hdfs = Some(HdfsStorage {
///     kerberos: Some(Kerberos {
///         principal: "cv-team/etl@EXAMPLE.COM".into(),
///         keytab_secret: "cv-keytab".into(),
///     }),
///     ..HdfsStorage::default()
/// });
/// assert_eq!(hdfs_user(&tenant), "cv-team");
/// ```
pub fn hdfs_user(tenant: &Tenant) -> &str {
    match tenant
        .storage
        .hdfs
        .as_ref()
        .and_then(|h| h.kerberos.as_ref())
    {
        Some(kerberos) => kerberos
            .principal
            .split(['/', '@'])
            .next()
            .unwrap_or(&kerberos.principal),
        None => &tenant.name,
    }
}

/// The tenant's GlusterFS volume.
pub fn gluster_volume(tenant: &str) -> String {
    format!("{PREFIX}{tenant}")
}
