//! Where the platform's storage servers are.

use std::path::PathBuf;

use moon_storage::seaweedfs::SeaweedOptions;
use moon_storage::{
    GlusterOptions, GlusterStore, GlusterVolumes, HdfsOptions, HdfsStore, SeaweedStore, Server,
    StoreUrl, VolumesOptions,
};

use crate::error::{Error, Result};

/// The SeaweedFS of the platform: its filer, and the master its blob API needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeaweedServers {
    /// The filer.
    pub filer: Server,
    /// The master, when known.
    pub master: Option<Server>,
}

/// The HDFS of the platform.
#[derive(Debug, Clone)]
pub struct HdfsServer {
    /// The namenode.
    pub namenode: Server,
    /// How moon's own client (which provisions tenants' homes, so HDFS's superuser) connects;
    /// a tenant's stores act as the tenant's own user instead.
    pub options: HdfsOptions,
}

/// The GlusterFS of the platform: a server of its trusted pool, which clients mount volumes
/// from, and where moon makes tenants' volumes.
#[derive(Debug, Clone)]
pub struct GlusterServers {
    /// The server volumes are mounted from.
    pub server: Server,
    /// How moon mounts volumes (others of the pool become `backup-volfile-servers`).
    pub mount: GlusterOptions,
    /// The provisioner of volumes, with bricks on this machine; `None` where moon only mounts
    /// volumes made by others.
    pub volumes: Option<GlusterVolumes>,
}

/// The storage servers tenants get space on; a system left out is one no tenant can ask for.
#[derive(Debug, Clone, Default)]
pub struct StorageServers {
    /// SeaweedFS.
    pub seaweedfs: Option<SeaweedServers>,
    /// HDFS.
    pub hdfs: Option<HdfsServer>,
    /// GlusterFS.
    pub gluster: Option<GlusterServers>,
}

impl StorageServers {
    /// The servers named by `MOON_SEAWEEDFS` (`seaweedfs://filer:8888?master=host:9333`),
    /// `MOON_HDFS` (`hdfs://namenode:8020`, with Hadoop's configuration from
    /// `HADOOP_CONF_DIR`; on a Kerberos cluster moon logs in as `MOON_HDFS_PRINCIPAL` with the
    /// keytab file `MOON_HDFS_KEYTAB`, both or neither, and MIT Kerberos reads `KRB5_CONFIG`) and `MOON_GLUSTER` (`gluster://host[,host...]`), whose volumes moon
    /// makes with bricks in `MOON_GLUSTER_BRICKS` (a directory of this machine; glusterd's CLI
    /// socket in `MOON_GLUSTER_SOCKET` where it is not the default); unset or empty variables
    /// name none.
    pub fn from_env() -> Result<StorageServers> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut servers = StorageServers::default();
        if let Some(url) = var("MOON_SEAWEEDFS") {
            servers = servers.with_seaweedfs(&url)?;
        }
        if let Some(url) = var("MOON_HDFS") {
            let options = match (var("MOON_HDFS_PRINCIPAL"), var("MOON_HDFS_KEYTAB")) {
                (Some(principal), Some(keytab)) => {
                    HdfsOptions::default().with_kerberos_keytab(principal, keytab)
                }
                (None, None) => HdfsOptions::default(),
                (Some(_), None) | (None, Some(_)) => {
                    return Err(Error::NotSupported(
                        "MOON_HDFS_PRINCIPAL and MOON_HDFS_KEYTAB go together: set both for a \
                         Kerberos cluster, or neither"
                            .into(),
                    ));
                }
            };
            servers = servers.with_hdfs(&url, options)?;
        }
        if let Some(url) = var("MOON_GLUSTER") {
            servers = servers.with_gluster(&url, GlusterOptions::default())?;
            if let Some(bricks) = var("MOON_GLUSTER_BRICKS") {
                let mut options = VolumesOptions::default();
                if let Some(socket) = var("MOON_GLUSTER_SOCKET") {
                    options = options.with_glusterd_socket(socket);
                }
                servers = servers.with_gluster_volumes(PathBuf::from(bricks), options)?;
            }
        }
        Ok(servers)
    }

    /// GlusterFS at the servers of `url` (`gluster://host[:port][,host...]`, without a
    /// volume), mounted with `mount`.
    pub fn with_gluster(mut self, url: &str, mut mount: GlusterOptions) -> Result<StorageServers> {
        let form = "gluster://host[:port][,host...], without a volume";
        let authority = url
            .strip_prefix("gluster://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| platform_url("MOON_GLUSTER", url, form))?;
        let mut pool = Vec::new();
        for one in authority.split(',') {
            pool.push(
                Server::parse(one, 24007).map_err(|_| platform_url("MOON_GLUSTER", url, form))?,
            );
        }
        let server = pool.remove(0);
        if !pool.is_empty() {
            let backups: Vec<String> = pool.iter().map(|s| s.host.clone()).collect();
            mount =
                mount.with_mount_option(format!("backup-volfile-servers={}", backups.join(":")));
        }
        self.gluster = Some(GlusterServers {
            server,
            mount,
            volumes: None,
        });
        Ok(self)
    }

    /// Lets moon make tenants' gluster volumes, with bricks in `brick_root` on the first
    /// server of the pool (this machine), through the gluster CLI configured by `options`.
    pub fn with_gluster_volumes(
        mut self,
        brick_root: PathBuf,
        options: VolumesOptions,
    ) -> Result<StorageServers> {
        let gluster = self.gluster.as_mut().ok_or_else(|| {
            Error::NotSupported(
                "gluster volumes need the platform's GlusterFS first: set MOON_GLUSTER".into(),
            )
        })?;
        gluster.volumes = Some(GlusterVolumes::new(
            gluster.server.host.clone(),
            brick_root,
            options,
        )?);
        Ok(self)
    }

    /// SeaweedFS at the filer of `url` (`seaweedfs://filer:8888?master=host:9333`).
    pub fn with_seaweedfs(mut self, url: &str) -> Result<StorageServers> {
        match StoreUrl::parse(url)? {
            StoreUrl::SeaweedFs {
                server,
                root,
                master,
                ..
            } if root == "/" => {
                self.seaweedfs = Some(SeaweedServers {
                    filer: server,
                    master,
                });
                Ok(self)
            }
            _ => Err(platform_url(
                "MOON_SEAWEEDFS",
                url,
                "seaweedfs://filer:port[?master=host:port], without a path",
            )),
        }
    }

    /// HDFS at the namenode of `url` (`hdfs://namenode:8020`), moon's own client configured
    /// by `options`.
    pub fn with_hdfs(mut self, url: &str, options: HdfsOptions) -> Result<StorageServers> {
        match StoreUrl::parse(url)? {
            StoreUrl::Hdfs { server, root } if root == "/" => {
                self.hdfs = Some(HdfsServer {
                    namenode: server,
                    options,
                });
                Ok(self)
            }
            _ => Err(platform_url(
                "MOON_HDFS",
                url,
                "hdfs://namenode:port, without a path",
            )),
        }
    }
}

impl SeaweedServers {
    /// A store at the filer directory `root`, writing to `collection`.
    pub(crate) fn store(&self, root: &str, collection: Option<String>) -> Result<SeaweedStore> {
        let options = SeaweedOptions {
            master: self.master.clone(),
            collection,
            ..SeaweedOptions::default()
        };
        Ok(SeaweedStore::new(self.filer.clone(), root, options)?)
    }
}

impl GlusterServers {
    /// A store at the directory `root` of `volume`, mounted when first used.
    pub(crate) fn store(&self, volume: &str, root: &str) -> Result<GlusterStore> {
        Ok(GlusterStore::new(
            self.server.clone(),
            volume,
            root,
            self.mount.clone(),
        )?)
    }
}

impl HdfsServer {
    /// A store at the directory `root`, acting as `user` (moon's own identity for `None`).
    pub(crate) fn store(&self, root: &str, user: Option<&str>) -> Result<HdfsStore> {
        let mut options = self.options.clone();
        if let Some(user) = user {
            options = options.with_user(user);
        }
        Ok(HdfsStore::new(self.namenode.clone(), root, options)?)
    }
}

fn platform_url(variable: &str, url: &str, form: &str) -> Error {
    Error::Storage(moon_storage::Error::InvalidUrl {
        url: moon_storage::redact(url),
        reason: format!("{variable} must be {form}"),
    })
}
