//! A store in a directory of a GlusterFS volume (`gluster://host/volume/path`), through the
//! volume's FUSE mount, and [`GlusterVolumes`], which makes volumes with the gluster CLI.
//!
//! The store is a [`LocalStore`] over the mounted directory, with its rules (atomic writes by a
//! temporary file renamed into place, `a` and `a/b` not both objects, copy and rename, no
//! append); what differs is the name, the URL, and that every operation first checks that the
//! volume is still mounted, so that nothing is ever written into the empty directory an unmount
//! leaves. Gluster's quota errors ("Disk quota exceeded") are [`Error::QuotaExceeded`].
//!
//! # The mount's lifecycle
//!
//! [`GlusterStore::new`] (and [`crate::open`]) look for a FUSE mount of the whole volume in
//! `/proc/self/mountinfo` and use it where there is one, wherever it is (an administrator's, or
//! one an earlier store made). Otherwise they mount the volume themselves with
//! `mount -t glusterfs HOST:/VOLUME MOUNT_ROOT/HOST/VOLUME` (root and `/dev/fuse` needed), which
//! blocks for up to [`GlusterOptions::timeout`]; the client's log goes to
//! `MOUNT_ROOT/HOST/VOLUME.log` unless [`GlusterOptions::log_file`] says otherwise, and a failed
//! mount reports the log's error lines.
//!
//! A mount outlives the stores that use it: dropping a store never unmounts, since other stores
//! (in this process or another) may share the mount. [`GlusterStore::unmount`] ends it
//! explicitly, for every store on it, and only when it lies in the store's mount root: a mount
//! that moon did not make is never touched. A store whose mount is gone fails every operation
//! with [`Error::Unavailable`]; open it again to mount again.
//!
//! The mount root is [`GlusterOptions::mount_root`]: `$MOON_GLUSTER_MOUNT_ROOT`, or
//! [`DEFAULT_MOUNT_ROOT`] (on a tmpfs on most systems, so that mount points do not outlive a
//! reboot).

mod cli;
mod mount;
mod volumes;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::local::LocalStore;
use crate::path::StorePath;
use crate::server::Server;
use crate::store::{ByteStream, Capabilities, GetResult, ListResult, ObjectMeta, Store};

use mount::{BACKEND, Mount};
pub use volumes::{GlusterVolumes, VolumeInfo, VolumesOptions};

/// Where moon mounts volumes when neither the options nor `$MOON_GLUSTER_MOUNT_ROOT` say.
pub const DEFAULT_MOUNT_ROOT: &str = "/run/moon/gluster";
/// glusterd's management port.
pub const DEFAULT_PORT: u16 = 24007;
const MOUNT_ROOT_VAR: &str = "MOON_GLUSTER_MOUNT_ROOT";

/// How moon mounts gluster volumes.
///
/// ```
/// use std::time::Duration;
/// use moon_storage::GlusterOptions;
///
/// let options = GlusterOptions::default()
///     .with_mount_root("/srv/moon/mounts")
///     .with_mount_option("log-level=WARNING")
///     .with_timeout(Duration::from_secs(20));
/// assert_eq!(options.mount_options, ["log-level=WARNING"]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GlusterOptions {
    /// The directory moon mounts volumes in (as `HOST/VOLUME`), and the only place it unmounts
    /// from.
    pub mount_root: PathBuf,
    /// Options for `mount -o`, as `mount.glusterfs` takes them (`log-level=WARNING`,
    /// `backup-volfile-servers=h2:h3`, `ro`, ...).
    pub mount_options: Vec<String>,
    /// The client's log; `MOUNT_ROOT/HOST/VOLUME.log` when unset.
    pub log_file: Option<PathBuf>,
    /// How long a mount or an unmount may take.
    pub timeout: Duration,
}

impl Default for GlusterOptions {
    fn default() -> Self {
        let mount_root = std::env::var_os(MOUNT_ROOT_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MOUNT_ROOT));
        GlusterOptions {
            mount_root,
            mount_options: Vec::new(),
            log_file: None,
            timeout: Duration::from_secs(60),
        }
    }
}

impl GlusterOptions {
    /// These options mounting in `dir`.
    pub fn with_mount_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.mount_root = dir.into();
        self
    }

    /// These options with one more `mount -o` option.
    pub fn with_mount_option(mut self, option: impl Into<String>) -> Self {
        self.mount_options.push(option.into());
        self
    }

    /// These options logging the client to `file`.
    pub fn with_log_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.log_file = Some(file.into());
        self
    }

    /// These options allowing `timeout` for a mount or an unmount.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A store rooted at a directory of a mounted gluster volume.
#[derive(Clone)]
pub struct GlusterStore {
    local: LocalStore,
    mount: Arc<Mount>,
    server: Server,
    volume: String,
    /// The directory inside the volume, `/` or `/a/b`.
    root: String,
    timeout: Duration,
}

impl fmt::Debug for GlusterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlusterStore")
            .field("server", &self.server)
            .field("volume", &self.volume)
            .field("root", &self.root)
            .field("mount", &self.mount.dir)
            .finish_non_exhaustive()
    }
}

impl GlusterStore {
    /// A store at the directory `root` (absolute, `/` for the whole volume) of `volume`, served
    /// by `server`; mounts the volume unless it is mounted already (see the module docs), and
    /// makes `root` when missing.
    pub fn new(server: Server, volume: &str, root: &str, options: GlusterOptions) -> Result<Self> {
        let shown = format!("gluster://{server}/{volume}{root}");
        let bad = |reason: &str| Error::InvalidUrl {
            url: shown.clone(),
            reason: reason.to_string(),
        };
        if server.userinfo.is_some() {
            return Err(bad("gluster URLs carry no user information"));
        }
        check_host(&server.host).map_err(|r| bad(&r))?;
        check_volume_name(volume).map_err(|r| bad(&r))?;
        let inside = match root.strip_prefix('/') {
            None => return Err(bad("the directory in the volume must be absolute")),
            Some(rest) => match rest.trim_end_matches('/') {
                "" => None,
                rest => Some(StorePath::parse(rest).map_err(|e| bad(&e.to_string()))?),
            },
        };
        let mount = Mount::find_or_make(&server.host, volume, server.port, &options)?;
        mount.check()?;
        let dir = match &inside {
            Some(path) => mount.dir.join(path.as_str()),
            None => mount.dir.clone(),
        };
        let local = LocalStore::new(&dir).map_err(rename_backend)?;
        Ok(GlusterStore {
            local,
            mount: Arc::new(mount),
            server,
            volume: volume.to_string(),
            root: inside.map_or_else(|| "/".to_string(), |p| format!("/{p}")),
            timeout: options.timeout,
        })
    }

    /// Where the volume is mounted.
    pub fn mount_dir(&self) -> &Path {
        &self.mount.dir
    }

    /// The directory objects live in (below [`mount_dir`](Self::mount_dir)).
    pub fn dir(&self) -> &Path {
        self.local.root()
    }

    /// Whether the mount lies in the mount root, so that [`unmount`](Self::unmount) may end it.
    pub fn is_mount_managed(&self) -> bool {
        self.mount.managed
    }

    /// Unmounts the volume, for every store that uses the mount, when moon made the mount (it
    /// lies in the mount root); a mount made elsewhere is left alone. `Ok(true)` when this call
    /// unmounted it. Fails with [`Error::Unavailable`] when files are still open in it.
    pub async fn unmount(&self) -> Result<bool> {
        let (mount, timeout) = (self.mount.clone(), self.timeout);
        tokio::task::spawn_blocking(move || mount.unmount(timeout))
            .await
            .map_err(|e| mount::unavailable(format!("worker thread failed: {e}")))?
    }

    /// Fails unless the volume is still mounted where the store found it.
    async fn live(&self) -> Result<()> {
        let mount = self.mount.clone();
        tokio::task::spawn_blocking(move || mount.check())
            .await
            .map_err(|e| mount::unavailable(format!("worker thread failed: {e}")))?
    }
}

/// Mounts the directory `root` (absolute, `/` for the whole volume) of `volume` at `dir`, an
/// existing empty directory, read-only when asked: a mount of its own for one user (a job's
/// volume), not shared with stores and not in the mount root, which that user unmounts
/// (`umount dir`). The directory must exist in the volume. Root and `/dev/fuse` are needed, as
/// for every gluster mount; the client logs to `dir` with `.log` appended unless
/// [`GlusterOptions::log_file`] names a log.
pub fn mount_directory(
    server: &Server,
    volume: &str,
    root: &str,
    dir: &Path,
    read_only: bool,
    options: &GlusterOptions,
) -> Result<()> {
    let shown = format!("gluster://{server}/{volume}{root}");
    let bad = |reason: &str| Error::InvalidUrl {
        url: shown.clone(),
        reason: reason.to_string(),
    };
    check_host(&server.host).map_err(|r| bad(&r))?;
    check_volume_name(volume).map_err(|r| bad(&r))?;
    let subdir = match root.strip_prefix('/') {
        None => return Err(bad("the directory in the volume must be absolute")),
        Some(rest) => match rest.trim_end_matches('/') {
            "" => None,
            rest => Some(StorePath::parse(rest).map_err(|e| bad(&e.to_string()))?),
        },
    };
    mount::mount_at(
        &server.host,
        server.port,
        volume,
        subdir.as_ref().map(StorePath::as_str),
        dir,
        read_only,
        options,
    )
}

/// The URL of a volume (`gluster://host/volume`, with the port where it is not glusterd's).
pub(crate) fn volume_url(host: &str, port: u16, volume: &str) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match port {
        DEFAULT_PORT => format!("gluster://{host}/{volume}"),
        port => format!("gluster://{host}:{port}/{volume}"),
    }
}

/// Host names become directory names of the mount root: nothing that could leave it.
fn check_host(host: &str) -> std::result::Result<(), String> {
    let fine = !host.is_empty()
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c));
    if fine {
        Ok(())
    } else {
        Err(format!("'{host}' is not a host name or IP address"))
    }
}

/// Gluster's own rule for volume names.
pub(crate) fn check_volume_name(volume: &str) -> std::result::Result<(), String> {
    let fine = !volume.is_empty()
        && !volume.starts_with('-')
        && volume
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "'{volume}' is not a gluster volume name (letters, digits, '-' and '_', not \
             starting with '-')"
        ))
    }
}

/// The local store's errors, told as this backend's.
fn rename_backend(e: Error) -> Error {
    match e {
        Error::Unavailable { message, .. } => mount::unavailable(message),
        Error::NotSupported { operation, .. } => Error::not_supported(BACKEND, &operation),
        other => other,
    }
}

#[async_trait]
impl Store for GlusterStore {
    fn name(&self) -> &str {
        BACKEND
    }

    fn url(&self) -> String {
        let mut url = volume_url(&self.server.host, self.server.port, &self.volume);
        if self.root != "/" {
            for &b in self.root.as_bytes() {
                if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
                    url.push(b as char);
                } else {
                    url.push_str(&format!("%{b:02X}"));
                }
            }
        }
        url
    }

    fn capabilities(&self) -> Capabilities {
        self.local.capabilities()
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        self.live().await?;
        self.local.put(path, bytes).await.map_err(rename_backend)
    }

    async fn put_stream(&self, path: &StorePath, stream: ByteStream) -> Result<ObjectMeta> {
        self.live().await?;
        self.local
            .put_stream(path, stream)
            .await
            .map_err(rename_backend)
    }

    async fn get(&self, path: &StorePath) -> Result<GetResult> {
        self.live().await?;
        let got = self.local.get(path).await.map_err(rename_backend)?;
        Ok(GetResult {
            meta: got.meta,
            stream: got.stream.map_err(rename_backend).boxed(),
        })
    }

    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        self.live().await?;
        self.local
            .get_range(path, range)
            .await
            .map_err(rename_backend)
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.live().await?;
        self.local.head(path).await.map_err(rename_backend)
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let store = self.clone();
        let listing = self.local.list(prefix).map_err(rename_backend);
        // The check runs when the listing is first polled, as the listing itself does.
        futures::stream::once(async move { store.live().await })
            .try_filter_map(|()| async { Ok(None) })
            .chain(listing)
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> Result<ListResult> {
        self.live().await?;
        self.local
            .list_with_delimiter(prefix)
            .await
            .map_err(rename_backend)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.live().await?;
        self.local.delete(path).await.map_err(rename_backend)
    }

    async fn copy(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        self.live().await?;
        self.local.copy(from, to).await.map_err(rename_backend)
    }

    async fn rename(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        self.live().await?;
        self.local.rename(from, to).await.map_err(rename_backend)
    }

    async fn append(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        self.local.append(path, bytes).await.map_err(rename_backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str) -> Server {
        Server {
            host: host.to_string(),
            port: DEFAULT_PORT,
            userinfo: None,
        }
    }

    #[test]
    fn names_that_could_leave_the_mount_root_are_refused_before_mounting() {
        let options = GlusterOptions::default().with_mount_root("/nonexistent/moon-test");
        for (host, volume, root, why) in [
            ("..", "vol", "/", "host"),
            (".hidden", "vol", "/", "host"),
            ("h/x", "vol", "/", "host"),
            ("h", "..", "/", "volume name"),
            ("h", "a/b", "/", "volume name"),
            ("h", "-v", "/", "volume name"),
            ("h", "vol", "relative", "absolute"),
            ("h", "vol", "/a/../b", ".."),
        ] {
            match GlusterStore::new(server(host), volume, root, options.clone()) {
                Err(Error::InvalidUrl { reason, .. }) => {
                    assert!(reason.contains(why), "{host} {volume} {root}: {reason}")
                }
                other => panic!("{host} {volume} {root}: {other:?}"),
            }
        }
        let mut with_user = server("h");
        with_user.userinfo = Some("alice:s3cret".to_string());
        match GlusterStore::new(with_user, "vol", "/", options) {
            Err(Error::InvalidUrl { url, reason }) => {
                assert!(reason.contains("user information"), "{reason}");
                assert!(!url.contains("s3cret"), "{url}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn volume_urls_show_the_port_only_when_it_is_not_glusterds() {
        assert_eq!(volume_url("g1", 24007, "vol"), "gluster://g1/vol");
        assert_eq!(volume_url("g1", 24008, "vol"), "gluster://g1:24008/vol");
        assert_eq!(volume_url("::1", 24008, "vol"), "gluster://[::1]:24008/vol");
    }

    #[test]
    fn the_mount_root_comes_from_the_environment_or_the_default() {
        // Whatever the environment of this test says, an explicit root wins.
        let options = GlusterOptions::default().with_mount_root("/srv/mounts");
        assert_eq!(options.mount_root, Path::new("/srv/mounts"));
        let default = GlusterOptions::default();
        match std::env::var_os(MOUNT_ROOT_VAR).filter(|v| !v.is_empty()) {
            Some(root) => assert_eq!(default.mount_root, Path::new(&root)),
            None => assert_eq!(default.mount_root, Path::new(DEFAULT_MOUNT_ROOT)),
        }
    }
}
