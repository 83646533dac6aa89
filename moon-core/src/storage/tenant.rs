//! A tenant's stores, confined to the tenant's part of each storage system.
//!
//! The confinement holds on two levels. Every store handed out is rooted at the tenant's own
//! directory, and a [`StorePath`](moon_storage::StorePath) cannot climb out of its store's root;
//! [`TenantStorage::open`] refuses a URL outside the tenant's part with
//! [`Error::PermissionDenied`]. And where the server checks access, it is asked to: the tenant's
//! HDFS stores act as the tenant's own user, and its home is closed to every other user, so
//! the namenode itself refuses them another tenant's files. On a Kerberos cluster they log in
//! as the platform's principal acting for the tenant's user (a Hadoop proxy user), so the
//! tenant's keytab stays in its secret, for its pods on Kubernetes. SeaweedFS's filer has no users:
//! there the first level is the fence. A tenant's GlusterFS is a volume of its own, so a
//! store of it cannot reach another tenant's volume at all.

use std::sync::Arc;

use moon_spec::spec::StorageSystem;
use moon_spec::spec::Tenant;
use moon_spec::storage::{
    gluster_volume, hdfs_home, hdfs_user, seaweedfs_collection, seaweedfs_dir,
};
use moon_storage::{Server, Store, StoreUrl, redact};

use super::servers::{GlusterServers, HdfsServer, SeaweedServers, StorageServers};
use crate::error::{Error, Result};

/// The stores of one tenant (from the client's `storage(tenant)`).
#[derive(Debug, Clone)]
pub struct TenantStorage {
    tenant: String,
    seaweedfs: Option<SeaweedServers>,
    hdfs: Option<HdfsServer>,
    /// The HDFS user its stores act as ([`hdfs_user`]).
    hdfs_user: String,
    gluster: Option<GlusterServers>,
}

/// A place in a tenant's part of one of its systems (from [`TenantStorage::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The system.
    pub system: StorageSystem,
    /// The directory below the tenant's own, `""` for its own (`datasets/mnist`).
    pub below: String,
}

impl Located {
    fn new(system: StorageSystem, below: String) -> Located {
        Located { system, below }
    }

    /// The absolute directory, below `dir`.
    fn root(&self, dir: &str) -> String {
        match self.below.as_str() {
            "" if dir.is_empty() => "/".to_string(),
            "" => dir.to_string(),
            below => format!("{dir}/{below}"),
        }
    }
}

impl TenantStorage {
    /// The stores `tenant`'s spec gives it on `servers`.
    pub fn new(tenant: &Tenant, servers: &StorageServers) -> TenantStorage {
        let storage = &tenant.storage;
        TenantStorage {
            tenant: tenant.name.clone(),
            seaweedfs: storage.seaweedfs.as_ref().and(servers.seaweedfs.clone()),
            hdfs: storage.hdfs.as_ref().and(servers.hdfs.clone()),
            hdfs_user: hdfs_user(tenant).to_string(),
            gluster: storage.gluster.as_ref().and(servers.gluster.clone()),
        }
    }

    /// The tenant's name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The tenant's SeaweedFS directory, writing to its collection.
    pub fn seaweedfs(&self) -> Result<Arc<dyn Store>> {
        let servers = self
            .seaweedfs
            .as_ref()
            .ok_or_else(|| self.none("seaweedfs"))?;
        self.seaweedfs_at(servers, &seaweedfs_dir(&self.tenant))
    }

    /// The tenant's HDFS home, acting as the tenant's user.
    pub fn hdfs(&self) -> Result<Arc<dyn Store>> {
        let server = self.hdfs.as_ref().ok_or_else(|| self.none("hdfs"))?;
        self.hdfs_at(server, &hdfs_home(&self.tenant))
    }

    /// The tenant's GlusterFS volume, mounted (with FUSE) when first used.
    pub fn gluster(&self) -> Result<Arc<dyn Store>> {
        let gluster = self.gluster.as_ref().ok_or_else(|| self.none("gluster"))?;
        Ok(Arc::new(gluster.store(&gluster_volume(&self.tenant), "/")?))
    }

    /// The URLs of the tenant's stores, one per system it has space on.
    pub fn urls(&self) -> Vec<String> {
        [
            StorageSystem::Seaweedfs,
            StorageSystem::Hdfs,
            StorageSystem::Gluster,
        ]
        .into_iter()
        .filter_map(|system| self.url_of(system, "").ok())
        .collect()
    }

    /// The store `url` names, which must lie in the tenant's part of one of its systems (its
    /// directory or below, on the platform's server); anything else is
    /// [`Error::PermissionDenied`].
    pub fn open(&self, url: &str) -> Result<Arc<dyn Store>> {
        let located = self.locate(url)?;
        match located.system {
            StorageSystem::Seaweedfs => {
                let servers = self
                    .seaweedfs
                    .as_ref()
                    .ok_or_else(|| self.none("seaweedfs"))?;
                self.seaweedfs_at(servers, &located.root(&seaweedfs_dir(&self.tenant)))
            }
            StorageSystem::Hdfs => {
                let server = self.hdfs.as_ref().ok_or_else(|| self.none("hdfs"))?;
                self.hdfs_at(server, &located.root(&hdfs_home(&self.tenant)))
            }
            StorageSystem::Gluster => {
                let gluster = self.gluster.as_ref().ok_or_else(|| self.none("gluster"))?;
                Ok(Arc::new(
                    gluster.store(&gluster_volume(&self.tenant), &located.root(""))?,
                ))
            }
        }
    }

    /// Where `url` lies in the tenant's part of one of its systems, checked as
    /// [`open`](Self::open) checks it, without opening anything.
    pub fn locate(&self, url: &str) -> Result<Located> {
        let parsed = StoreUrl::parse(url)?;
        let refuse = |why: String| {
            Error::PermissionDenied(format!(
                "tenant {:?} may not reach {}: {why}",
                self.tenant,
                redact(url)
            ))
        };
        match parsed {
            StoreUrl::SeaweedFs {
                server,
                root,
                collection,
                ..
            } => {
                let servers = self
                    .seaweedfs
                    .as_ref()
                    .ok_or_else(|| self.none("seaweedfs"))?;
                if !same_server(&server, &servers.filer) {
                    return Err(refuse(format!(
                        "the platform's filer is {}",
                        shown(&servers.filer)
                    )));
                }
                let dir = seaweedfs_dir(&self.tenant);
                let Some(below) = below(&root, &dir) else {
                    return Err(refuse(format!("outside its directory {dir}")));
                };
                let own = seaweedfs_collection(&self.tenant);
                if collection.as_ref().is_some_and(|c| *c != own) {
                    return Err(refuse(format!("its collection is {own}")));
                }
                Ok(Located::new(StorageSystem::Seaweedfs, below))
            }
            StoreUrl::Hdfs { server, root } => {
                let hdfs = self.hdfs.as_ref().ok_or_else(|| self.none("hdfs"))?;
                if !same_server(&server, &hdfs.namenode) {
                    return Err(refuse(format!(
                        "the platform's namenode is {}",
                        shown(&hdfs.namenode)
                    )));
                }
                let home = hdfs_home(&self.tenant);
                let Some(below) = below(&root, &home) else {
                    return Err(refuse(format!("outside its home {home}")));
                };
                Ok(Located::new(StorageSystem::Hdfs, below))
            }
            StoreUrl::Gluster {
                server,
                volume,
                root,
            } => {
                let gluster = self.gluster.as_ref().ok_or_else(|| self.none("gluster"))?;
                if !same_server(&server, &gluster.server) {
                    return Err(refuse(format!(
                        "the platform's gluster server is {}",
                        shown(&gluster.server)
                    )));
                }
                let own = gluster_volume(&self.tenant);
                if volume != own {
                    return Err(refuse(format!("its volume is {own}")));
                }
                let below = below(&root, "").unwrap_or_default();
                Ok(Located::new(StorageSystem::Gluster, below))
            }
            _ => Err(refuse(format!(
                "not one of its stores ({})",
                self.urls().join(", ")
            ))),
        }
    }

    /// The URL of the directory `below` (`""` for its own) in the tenant's part of `system`.
    pub fn url_of(&self, system: StorageSystem, below: &str) -> Result<String> {
        let tail = if below.is_empty() {
            String::new()
        } else {
            format!("/{}", encoded(below))
        };
        match system {
            StorageSystem::Seaweedfs => {
                let servers = self
                    .seaweedfs
                    .as_ref()
                    .ok_or_else(|| self.none("seaweedfs"))?;
                let mut url = format!(
                    "seaweedfs://{}{}{tail}?collection={}",
                    shown(&servers.filer),
                    seaweedfs_dir(&self.tenant),
                    seaweedfs_collection(&self.tenant)
                );
                if let Some(master) = &servers.master {
                    url.push_str(&format!("&master={}", shown(master)));
                }
                Ok(url)
            }
            StorageSystem::Hdfs => {
                let server = self.hdfs.as_ref().ok_or_else(|| self.none("hdfs"))?;
                Ok(format!(
                    "hdfs://{}{}{tail}",
                    shown(&server.namenode),
                    hdfs_home(&self.tenant)
                ))
            }
            StorageSystem::Gluster => {
                let gluster = self.gluster.as_ref().ok_or_else(|| self.none("gluster"))?;
                let volume = gluster_volume(&self.tenant);
                Ok(format!(
                    "gluster://{}/{volume}{tail}",
                    shown(&gluster.server)
                ))
            }
        }
    }

    fn seaweedfs_at(&self, servers: &SeaweedServers, root: &str) -> Result<Arc<dyn Store>> {
        let collection = Some(seaweedfs_collection(&self.tenant));
        Ok(Arc::new(servers.store(root, collection)?))
    }

    fn hdfs_at(&self, server: &HdfsServer, root: &str) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(server.store(root, Some(&self.hdfs_user))?))
    }

    fn none(&self, system: &str) -> Error {
        Error::NotFound {
            kind: "storage",
            name: format!("{system} of tenant {}", self.tenant),
        }
    }
}

/// The part of `root` below `dir` (`""` for `dir` itself) when `root` is `dir` or a directory
/// below it, segment by segment (`/tenants/vision2` is not below `/tenants/vision`). Both are
/// absolute paths the URL parser has checked for `..`; `dir` is `""` for the root.
fn below(root: &str, dir: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    if root == dir {
        return Some(String::new());
    }
    root.strip_prefix(dir)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(str::to_string)
}

/// A path as a URL's path: every byte but letters, digits, `-._~` and `/` percent-encoded,
/// so that a space, `%`, `?` or `#` in a directory's name reads back as itself.
fn encoded(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn same_server(a: &Server, b: &Server) -> bool {
    a.host.eq_ignore_ascii_case(&b.host) && a.port == b.port
}

/// A server as URLs show it, without user information.
fn shown(server: &Server) -> String {
    Server {
        userinfo: None,
        ..server.clone()
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_odd_characters_reads_back_from_its_url() {
        let tenant =
            moon_spec::spec::tenant_from_yaml("name: vision\nstorage: {seaweedfs: {}}").unwrap();
        let servers = StorageServers::default()
            .with_seaweedfs("seaweedfs://filer:8888")
            .unwrap();
        let storage = TenantStorage::new(&tenant, &servers);
        let below = "runs/a b%c?d#e/é";
        let url = storage.url_of(StorageSystem::Seaweedfs, below).unwrap();
        assert_eq!(storage.locate(&url).unwrap().below, below, "{url}");
    }

    #[test]
    fn below_goes_by_whole_segments() {
        let below = |root, dir| below(root, dir);
        assert_eq!(
            below("/tenants/vision", "/tenants/vision"),
            Some(String::new())
        );
        assert_eq!(
            below("/tenants/vision/", "/tenants/vision"),
            Some(String::new())
        );
        assert_eq!(
            below("/tenants/vision/raw/2026", "/tenants/vision"),
            Some("raw/2026".to_string())
        );
        assert_eq!(below("/tenants/vision2", "/tenants/vision"), None);
        assert_eq!(below("/tenants", "/tenants/vision"), None);
        assert_eq!(below("/", "/tenants/vision"), None);
        assert_eq!(below("/", ""), Some(String::new()));
        assert_eq!(below("/shared/a", ""), Some("shared/a".to_string()));
    }
}
