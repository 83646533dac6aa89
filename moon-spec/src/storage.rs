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

/// The tenant's GlusterFS volume.
pub fn gluster_volume(tenant: &str) -> String {
    format!("{PREFIX}{tenant}")
}
