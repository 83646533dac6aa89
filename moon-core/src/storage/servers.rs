//! Where the platform's storage servers are.

use moon_storage::seaweedfs::SeaweedOptions;
use moon_storage::{HdfsOptions, HdfsStore, SeaweedStore, Server, StoreUrl};

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

/// The storage servers tenants get space on; a system left out is one no tenant can ask for.
#[derive(Debug, Clone, Default)]
pub struct StorageServers {
    /// SeaweedFS.
    pub seaweedfs: Option<SeaweedServers>,
    /// HDFS.
    pub hdfs: Option<HdfsServer>,
}

impl StorageServers {
    /// The servers named by `MOON_SEAWEEDFS` (`seaweedfs://filer:8888?master=host:9333`) and
    /// `MOON_HDFS` (`hdfs://namenode:8020`, with Hadoop's configuration from
    /// `HADOOP_CONF_DIR`); unset or empty variables name none.
    pub fn from_env() -> Result<StorageServers> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut servers = StorageServers::default();
        if let Some(url) = var("MOON_SEAWEEDFS") {
            servers = servers.with_seaweedfs(&url)?;
        }
        if let Some(url) = var("MOON_HDFS") {
            servers = servers.with_hdfs(&url, HdfsOptions::default())?;
        }
        Ok(servers)
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
