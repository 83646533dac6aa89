//! Storage: the stores of `moon-storage`, and what moon adds over them for tenants.
//!
//! Where the platform's storage servers are is [`StorageServers`] (from `MOON_SEAWEEDFS`,
//! `MOON_HDFS` and `MOON_GLUSTER`, see [`StorageServers::from_env`]). Applying a tenant through the client
//! provisions the storage its spec asks for ([`provision`]); the client's `storage(tenant)`
//! then gives the tenant's stores, confined to the tenant's part of each system
//! ([`TenantStorage`]).

mod provision;
mod servers;
mod tenant;
mod volumes;

pub use moon_storage::*;
pub use provision::{HDFS_HOME_MODE, Provisioned, check_servers, provision};
pub use servers::{GlusterServers, HdfsServer, SeaweedServers, StorageServers};
pub use tenant::{Located, TenantStorage};
pub use volumes::resolve as resolve_volumes;
