//! Making a tenant's storage: what applying a tenant does on each storage system.
//!
//! Every step is idempotent, so applying a tenant again changes nothing that is already as
//! the spec says, and a failed apply is finished by applying again.
//!
//! On HDFS the home belongs to the tenant's user ([`hdfs_user`]): its name, or the short name
//! of its Kerberos principal. moon's own client makes it; on a Kerberos cluster that client
//! logs in as the platform's principal (`MOON_HDFS_PRINCIPAL`), the cluster's superuser.

use moon_spec::spec::Tenant;
use moon_spec::storage::{
    gluster_volume, hdfs_home, hdfs_user, seaweedfs_collection, seaweedfs_dir,
};
use moon_storage::GlusterVolumes;
use moon_storage::seaweedfs::LocationRule;

use super::servers::StorageServers;
use crate::error::{Error, Result};

/// The mode of a tenant's HDFS home: its owner (the tenant's user) and group, nobody else.
pub const HDFS_HOME_MODE: u32 = 0o770;

/// What provisioning changed on each system (`false`: it was already as the spec says).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// The SeaweedFS directory or the filer's rule for it.
    pub seaweedfs: bool,
    /// The HDFS home, its owner or its mode.
    pub hdfs: bool,
    /// The gluster volume or its size.
    pub gluster: bool,
}

impl Provisioned {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.seaweedfs || self.hdfs || self.gluster
    }
}

/// Makes the storage `tenant` asks for on `servers`: on SeaweedFS its directory and the
/// filer's rule that sends everything written below it to the tenant's collection (with its
/// replication and TTL); on HDFS its home directory, owned by the tenant's user and closed to
/// others (its user: [`hdfs_user`]); on GlusterFS a volume of its own, started, whose quota is the spec's size (raising
/// the size expands it; lowering it is refused, as the data may not fit). Refuses, before
/// changing anything, a system the platform has no server for.
pub async fn provision(tenant: &Tenant, servers: &StorageServers) -> Result<Provisioned> {
    check_servers(tenant, servers)?;
    let name = tenant.name.as_str();
    let mut done = Provisioned::default();
    if let (Some(spec), Some(seaweedfs)) = (&tenant.storage.seaweedfs, &servers.seaweedfs) {
        let dir = seaweedfs_dir(name);
        let store = seaweedfs.store(&dir, None)?;
        store.create_root().await?;
        let rule = LocationRule {
            prefix: format!("{dir}/"),
            collection: Some(seaweedfs_collection(name)),
            replication: spec.replication.clone(),
            ttl: spec.ttl.clone(),
        };
        done.seaweedfs = store.set_location_rule(&rule).await?;
    }
    if let (Some(_), Some(hdfs)) = (&tenant.storage.hdfs, &servers.hdfs) {
        let store = hdfs.store(&hdfs_home(name), None)?;
        done.hdfs = store
            .prepare_root(hdfs_user(tenant), name, HDFS_HOME_MODE)
            .await?;
    }
    if let (Some(spec), Some(volumes)) = (
        &tenant.storage.gluster,
        servers.gluster.as_ref().and_then(|g| g.volumes.as_ref()),
    ) {
        let size = spec.size.bytes().map_err(|message| {
            Error::invalid("tenant", "storage.gluster.size", "quantity", message)
        })?;
        done.gluster = provision_gluster(volumes, &gluster_volume(name), size).await?;
    }
    Ok(done)
}

/// Makes or grows volume `volume` to `size` bytes; answers whether anything changed.
async fn provision_gluster(volumes: &GlusterVolumes, volume: &str, size: u64) -> Result<bool> {
    match volumes.info(volume).await {
        Err(moon_storage::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
        Ok(info) if info.started && info.quota_enabled && info.size_limit == Some(size) => {
            return Ok(false);
        }
        // A larger size expands; a smaller one is refused there, with both numbers.
        Ok(info) if info.size_limit.is_some() => {
            volumes.expand(volume, size).await?;
            return Ok(true);
        }
        // Left half made by an interrupted apply: `create` finishes it.
        Ok(_) => {}
    }
    volumes.create(volume, size).await?;
    Ok(true)
}

/// Refuses what cannot be provisioned on `servers`, naming the field and what would make it
/// work; [`provision`] checks this first.
pub fn check_servers(tenant: &Tenant, servers: &StorageServers) -> Result<()> {
    let name = &tenant.name;
    let storage = &tenant.storage;
    if storage.seaweedfs.is_some() && servers.seaweedfs.is_none() {
        return Err(Error::NotSupported(format!(
            "tenant {name:?}: storage.seaweedfs needs the platform's SeaweedFS: set MOON_SEAWEEDFS \
             (seaweedfs://filer:port?master=host:port)"
        )));
    }
    if let Some(hdfs) = &storage.hdfs {
        if servers.hdfs.is_none() {
            return Err(Error::NotSupported(format!(
                "tenant {name:?}: storage.hdfs needs the platform's HDFS: set MOON_HDFS \
                 (hdfs://namenode:port)"
            )));
        }
        if let Some(quota) = &hdfs.space_quota {
            // The namenode's setQuota call is not in the HDFS client moon uses; an unenforced
            // quota would be worse than none, so it is refused rather than ignored.
            return Err(Error::NotSupported(format!(
                "tenant {name:?}: storage.hdfs.spaceQuota cannot be set by moon yet; leave it out \
                 and set it with `hdfs dfsadmin -setSpaceQuota {quota} {}`",
                hdfs_home(name)
            )));
        }
    }
    if storage.gluster.is_some() {
        match &servers.gluster {
            None => {
                return Err(Error::NotSupported(format!(
                    "tenant {name:?}: storage.gluster needs the platform's GlusterFS: set \
                     MOON_GLUSTER (gluster://host) and MOON_GLUSTER_BRICKS (where this machine \
                     keeps bricks)"
                )));
            }
            Some(gluster) if gluster.volumes.is_none() => {
                return Err(Error::NotSupported(format!(
                    "tenant {name:?}: storage.gluster needs a place for the volume's brick on \
                     {}: set MOON_GLUSTER_BRICKS",
                    gluster.server.host
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
