//! A store in an HDFS directory (`hdfs://namenode:port/dir`), through the namenode's RPC
//! protocol and the datanodes' transfer protocol (the `hdfs-native` crate: no JVM, no libhdfs).
//!
//! Objects are files below the root directory. A write goes to a temporary file named
//! [`PARTIAL_PREFIX`]`...` in the target's own directory and is renamed over the target once it is
//! complete, so readers see whole objects only; a failed or abandoned upload deletes its temporary
//! file. Listings never show temporary files, and paths with a segment starting with the prefix
//! are refused. Deleting an object removes the directories it leaves empty (never the root).
//!
//! As on a local filesystem, `a` and `a/b` cannot both be objects (the second write is
//! [`Error::PreconditionFailed`]). HDFS refuses `:` in names ([`Error::InvalidPath`]).
//!
//! The etag is the file's modification time (milliseconds) and size: HDFS keeps the inode id to
//! itself in the client library used here. Two writes of the same size within one millisecond
//! would share a time, so a write that would land on the time and size of the object it replaces
//! moves its own time one millisecond on before it is renamed into place.
//!
//! The client's connections run on the Tokio runtime the store is created in (or on a runtime of
//! its own when it is created outside one).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use hdfs_native::client::FileStatus;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

use crate::error::{Error, Result};
use crate::path::StorePath;
use crate::server::Server;
use crate::store::{
    ByteStream, Capabilities, GetResult, ListResult, ObjectMeta, Store, clamp_range,
};

/// Name prefix of the temporary files that writes go through.
pub const PARTIAL_PREFIX: &str = ".moon-partial-";
const BACKEND: &str = "hdfs";
/// Hadoop's key for how clients authenticate (`simple` or `kerberos`).
const AUTHENTICATION: &str = "hadoop.security.authentication";
const FAILOVER_ATTEMPTS: &str = "dfs.client.failover.max.attempts";

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// How to reach and authenticate to the namenode, beyond its address.
///
/// `config` holds Hadoop configuration keys, as in `core-site.xml` and `hdfs-site.xml`; they
/// override the files of `config_dir` (or of `$HADOOP_CONF_DIR`, or `$HADOOP_HOME/etc/hadoop`,
/// when `config_dir` is not set). For a Kerberos cluster set
/// `hadoop.security.authentication=kerberos` (and, where the namenode asks for it,
/// `dfs.namenode.kerberos.principal`) and either a ticket cache (`kinit`, or `kerberos_cache`) or
/// `kerberos_principal` with `kerberos_keytab`. Values are never shown: `Debug` prints the keys.
///
/// Unless `config` sets `dfs.client.failover.max.attempts`, the store sets it to 3 (over any
/// site file), so that an unreachable namenode is [`Error::Unavailable`] after about 7 seconds.
///
/// ```
/// use moon_storage::{HdfsOptions, HdfsStore, Server, Store};
///
/// let options = HdfsOptions::default()
///     .with_config("hadoop.security.authentication", "kerberos")
///     .with_config("dfs.namenode.kerberos.principal", "nn/_HOST@EXAMPLE.COM")
///     .with_kerberos_keytab("ml-team@EXAMPLE.COM", "/run/secrets/ml-team.keytab");
/// let server = Server { host: "namenode.example.com".into(), port: 8020, userinfo: None };
/// // Nothing is contacted (nor the keytab read) until the first operation.
/// let store = HdfsStore::new(server, "/teams/ml", options).unwrap();
/// assert_eq!(store.url(), "hdfs://namenode.example.com:8020/teams/ml");
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct HdfsOptions {
    /// Hadoop configuration keys and their values.
    pub config: BTreeMap<String, String>,
    /// A directory holding `core-site.xml` and `hdfs-site.xml`.
    pub config_dir: Option<PathBuf>,
    /// The user to act as without Kerberos (otherwise `$HADOOP_USER_NAME`, then the login user).
    pub user: Option<String>,
    /// The Kerberos principal to log in as.
    pub kerberos_principal: Option<String>,
    /// The keytab file holding the principal's keys.
    pub kerberos_keytab: Option<PathBuf>,
    /// The Kerberos credential cache to use, e.g. `FILE:/run/krb5/ml.ccache`.
    pub kerberos_cache: Option<String>,
}

impl HdfsOptions {
    /// These options with one Hadoop configuration key set.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// These options acting as `user` (simple authentication).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// These options reading `core-site.xml` and `hdfs-site.xml` from `dir`.
    pub fn with_config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// These options logging in to Kerberos as `principal` with the keys of `keytab` (a path;
    /// the file is read by the Kerberos library, never by moon).
    pub fn with_kerberos_keytab(
        mut self,
        principal: impl Into<String>,
        keytab: impl Into<PathBuf>,
    ) -> Self {
        self.kerberos_principal = Some(principal.into());
        self.kerberos_keytab = Some(keytab.into());
        self
    }

    /// These options using the Kerberos credential cache `cache` (e.g. `FILE:/tmp/krb5cc_1000`,
    /// or `MEMORY:name` to keep the tickets a keytab gets in this process only). With a cache
    /// and no keytab, name the principal with [`with_kerberos_principal`](Self::with_kerberos_principal).
    pub fn with_kerberos_cache(mut self, cache: impl Into<String>) -> Self {
        self.kerberos_cache = Some(cache.into());
        self
    }

    /// These options logging in as `principal`, with the tickets of the credential cache.
    pub fn with_kerberos_principal(mut self, principal: impl Into<String>) -> Self {
        self.kerberos_principal = Some(principal.into());
        self
    }
}

impl fmt::Debug for HdfsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HdfsOptions")
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("config_dir", &self.config_dir)
            .field("user", &self.user)
            .field("kerberos_principal", &self.kerberos_principal)
            .field("kerberos_keytab", &self.kerberos_keytab)
            .field(
                "kerberos_cache",
                &self.kerberos_cache.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// A store rooted at a directory of an HDFS cluster.
#[derive(Clone)]
pub struct HdfsStore {
    client: Client,
    server: Server,
    /// The absolute HDFS directory, without a trailing `/` unless it is `/`.
    root: String,
}

impl fmt::Debug for HdfsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HdfsStore")
            .field("server", &self.server)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl HdfsStore {
    /// A store at the absolute directory `root` of the namenode `server`. Nothing is contacted
    /// yet: the first operation connects, and the root is created by the first write.
    pub fn new(server: Server, root: &str, options: HdfsOptions) -> Result<Self> {
        let shown = format!("hdfs://{server}{root}");
        let bad = |reason: String| Error::InvalidUrl {
            url: shown.clone(),
            reason,
        };
        if server.userinfo.is_some() {
            return Err(bad(
                "HDFS URLs carry no user information; set the user in HdfsOptions or \
                 HADOOP_USER_NAME"
                    .to_string(),
            ));
        }
        if !root.starts_with('/') {
            return Err(bad(
                "an HDFS store's root must be an absolute path".to_string()
            ));
        }
        let root = match root.trim_end_matches('/') {
            "" => "/".to_string(),
            trimmed => trimmed.to_string(),
        };
        let mut config = options.config;
        // The client's default (15 attempts, backing off to 15 s) leaves a caller waiting minutes
        // for a namenode that is down; three give about 7 s.
        config
            .entry(FAILOVER_ATTEMPTS.to_string())
            .or_insert_with(|| "3".to_string());
        // Kerberos credentials mean a Kerberos cluster: without this key the client would not
        // negotiate SASL at all, and the namenode would drop the connection.
        if options.kerberos_principal.is_some()
            || options.kerberos_keytab.is_some()
            || options.kerberos_cache.is_some()
        {
            config
                .entry(AUTHENTICATION.to_string())
                .or_insert_with(|| "kerberos".to_string());
        }
        let mut builder = ClientBuilder::new()
            .with_url(format!("hdfs://{server}"))
            .with_config(config);
        if let Some(dir) = options.config_dir {
            builder = builder.with_config_dir(dir.display().to_string());
        }
        if let Some(user) = options.user {
            builder = builder.with_user(user);
        }
        if let Some(principal) = options.kerberos_principal {
            builder = builder.with_kerberos_principal(principal);
        }
        if let Some(keytab) = options.kerberos_keytab {
            builder = builder.with_kerberos_keytab(keytab.display().to_string());
        }
        if let Some(cache) = options.kerberos_cache {
            builder = builder.with_kerberos_cache(cache);
        }
        let client = builder
            .build()
            .map_err(|e| bad(format!("cannot configure the HDFS client: {e}")))?;
        Ok(HdfsStore {
            client,
            server,
            root,
        })
    }

    /// The HDFS directory objects live in.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn full(&self, path: &StorePath) -> Result<String> {
        check_reserved(path)?;
        Ok(self.full_unchecked(Some(path)))
    }

    fn full_unchecked(&self, path: Option<&StorePath>) -> String {
        match (path, self.root.as_str()) {
            (None, root) => root.to_string(),
            (Some(p), "/") => format!("/{p}"),
            (Some(p), root) => format!("{root}/{p}"),
        }
    }

    /// The status of the file at `path`; a directory, or nothing, is [`Error::NotFound`].
    async fn file_status(&self, path: &StorePath, full: &str) -> Result<FileStatus> {
        let status = self
            .client
            .get_file_info(full)
            .await
            .map_err(|e| hdfs_error(e, path))?;
        if status.isdir {
            return Err(Error::NotFound {
                path: path.to_string(),
            });
        }
        Ok(status)
    }

    /// The status at `full`, `None` when nothing is there.
    async fn status_if_any(&self, path: &StorePath, full: &str) -> Result<Option<FileStatus>> {
        match self.client.get_file_info(full).await {
            Ok(status) => Ok(Some(status)),
            Err(e) => match hdfs_error(e, path) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Removes the directories that held `path`, from the deepest up, while they are empty. A
    /// non-recursive delete of a directory that is not empty fails, which stops the walk; a writer
    /// creates a file and its parents in one call, so no writer's directory is ever seen empty.
    async fn remove_empty_parents(&self, path: &StorePath) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            let full = self.full_unchecked(Some(&d));
            // A failed write of `x/y` finds `x` to be an object: that must stay.
            match self.client.get_file_info(&full).await {
                Ok(status) if status.isdir => {}
                _ => break,
            }
            match self.client.delete(&full, false).await {
                Ok(true) => dir = d.parent(),
                _ => break,
            }
        }
    }

    /// Writes `stream` to a temporary file beside `path` and renames it over `path` (or, with
    /// `replace` false, only where `path` is free: [`Error::AlreadyExists`] otherwise).
    async fn write_via_temp(
        &self,
        path: &StorePath,
        stream: ByteStream,
        replace: bool,
    ) -> Result<ObjectMeta> {
        let target = self.full(path)?;
        let dir = match path.parent() {
            Some(parent) => self.full_unchecked(Some(&parent)),
            None => self.root.clone(),
        };
        let temp = format!("{}/{}", dir.trim_end_matches('/'), temp_name());
        // Armed once the temporary file exists: a create that failed left nothing to remove,
        // and cleaning up after it would only wait on a namenode that may be down.
        let mut partial = Partial {
            store: None,
            temp: temp.clone(),
            path: path.clone(),
        };
        match self
            .upload(path, &mut partial, &target, stream, replace)
            .await
        {
            Ok(meta) => {
                partial.store = None;
                Ok(meta)
            }
            Err(e) => {
                partial.clean_up().await;
                Err(e)
            }
        }
    }

    async fn upload(
        &self,
        path: &StorePath,
        partial: &mut Partial,
        target: &str,
        mut stream: ByteStream,
        replace: bool,
    ) -> Result<ObjectMeta> {
        let temp = partial.temp.clone();
        let temp = temp.as_str();
        let options = WriteOptions::default().overwrite(false).create_parent(true);
        let mut writer = self
            .client
            .create(temp, options)
            .await
            .map_err(|e| hdfs_error(e, path))?;
        partial.store = Some(self.clone());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if !chunk.is_empty() {
                writer
                    .write_bytes(chunk)
                    .await
                    .map_err(|e| hdfs_error(e, path))?;
            }
        }
        writer.close().await.map_err(|e| hdfs_error(e, path))?;

        let mut written = self
            .client
            .get_file_info(temp)
            .await
            .map_err(|e| hdfs_error(e, path))?;
        match self.status_if_any(path, target).await? {
            Some(old) if old.isdir => {
                return Err(Error::PreconditionFailed {
                    path: path.to_string(),
                    message: "other objects are stored below this path".to_string(),
                });
            }
            Some(old)
                if old.modification_time == written.modification_time
                    && old.length == written.length =>
            {
                // Keeps the etag (time and size) different from the version replaced.
                written.modification_time += 1;
                self.client
                    .set_times(temp, written.modification_time, written.access_time)
                    .await
                    .map_err(|e| hdfs_error(e, path))?;
            }
            _ => {}
        }
        self.client
            .rename(temp, target, replace)
            .await
            .map_err(|e| hdfs_error(e, path))?;
        Ok(meta_of(path.clone(), &written))
    }

    /// One directory's objects and subdirectories, in path order. A missing directory, or a
    /// file, holds nothing.
    async fn read_level(&self, dir: Option<&StorePath>) -> Result<Vec<Entry>> {
        if let Some(d) = dir {
            check_reserved(d)?;
        }
        let full = self.full_unchecked(dir);
        let shown = dir.map(StorePath::to_string).unwrap_or_default();
        // The namenode returns a directory in pages (`dfs.ls.limit`, 1000 by default), in its
        // own order (signed bytes), so one directory is read whole and sorted here.
        let mut pages = self.client.list_status_iter(&full, false).into_stream();
        let mut found: Vec<(String, Entry)> = Vec::new();
        while let Some(status) = pages.next().await {
            let status = match status {
                Ok(status) => status,
                Err(e) => match hdfs_error(e, &shown) {
                    Error::NotFound { .. } => return Ok(Vec::new()),
                    other => return Err(other),
                },
            };
            let name = status.path.rsplit('/').next().unwrap_or_default();
            if name.starts_with(PARTIAL_PREFIX) {
                continue;
            }
            let joined = match dir {
                Some(d) => d.join(name),
                None => StorePath::parse(name),
            };
            let Ok(path) = joined else {
                continue;
            };
            if status.isdir {
                found.push((format!("{name}/"), Entry::Dir(path)));
            } else {
                found.push((name.to_string(), Entry::File(meta_of(path, &status))));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().map(|(_, entry)| entry).collect())
    }

    async fn start_listing(&self, prefix: Option<&StorePath>) -> Result<Vec<Entry>> {
        if let Some(p) = prefix {
            check_reserved(p)?;
            // A prefix that names an object lists nothing below it.
            match self.status_if_any(p, &self.full_unchecked(Some(p))).await? {
                Some(status) if status.isdir => {}
                _ => return Ok(Vec::new()),
            }
        }
        self.read_level(prefix).await
    }
}

/// One thing found in a directory, during a walk.
enum Entry {
    File(ObjectMeta),
    Dir(StorePath),
}

/// A temporary file that is deleted unless the upload committed it.
struct Partial {
    store: Option<HdfsStore>,
    temp: String,
    path: StorePath,
}

impl Partial {
    async fn clean_up(&mut self) {
        if let Some(store) = self.store.take() {
            let _ = store.client.delete(&self.temp, false).await;
            store.remove_empty_parents(&self.path).await;
        }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Reached with a store only when the upload's future was dropped midway.
        if self.store.is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let mut rest = Partial {
                    store: self.store.take(),
                    temp: std::mem::take(&mut self.temp),
                    path: self.path.clone(),
                };
                runtime.spawn(async move { rest.clean_up().await });
            }
        }
    }
}

fn temp_name() -> String {
    // Unique across the processes and hosts that may write into one directory.
    let mut random = RandomState::new().build_hasher();
    random.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!(
        "{PARTIAL_PREFIX}{}-{}-{:016x}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed),
        random.finish()
    )
}

fn check_reserved(path: &StorePath) -> Result<()> {
    if path.segments().any(|s| s.starts_with(PARTIAL_PREFIX)) {
        return Err(Error::InvalidPath {
            path: path.to_string(),
            reason: format!(
                "names starting with '{PARTIAL_PREFIX}' are reserved for uploads in progress"
            ),
        });
    }
    Ok(())
}

fn meta_of(path: StorePath, status: &FileStatus) -> ObjectMeta {
    ObjectMeta {
        path,
        size: status.length as u64,
        etag: Some(format!(
            "{:x}-{:x}",
            status.modification_time, status.length
        )),
        modified: Some(UNIX_EPOCH + Duration::from_millis(status.modification_time)),
    }
}

/// The first line of a server message: the namenode sends Java stack traces after it.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default().trim()
}

/// The one place HDFS client errors become store errors.
fn hdfs_error(e: HdfsError, path: &dyn fmt::Display) -> Error {
    let path = path.to_string();
    match e {
        HdfsError::FileNotFound(_) | HdfsError::IsADirectoryError(_) => Error::NotFound { path },
        HdfsError::AlreadyExists(_) => Error::AlreadyExists { path },
        HdfsError::InvalidPath(reason) => Error::InvalidPath { path, reason },
        HdfsError::RPCError(class, message) | HdfsError::FatalRPCError(class, message) => {
            let message = first_line(&message).to_string();
            let short = class.rsplit('.').next().unwrap_or_default();
            match short {
                "FileNotFoundException" => Error::NotFound { path },
                "FileAlreadyExistsException" | "AlreadyBeingCreatedException" => {
                    Error::AlreadyExists { path }
                }
                "AccessControlException" | "AuthorizationException" => {
                    Error::PermissionDenied { path, message }
                }
                "DSQuotaExceededException"
                | "NSQuotaExceededException"
                | "QuotaByStorageTypeExceededException"
                | "QuotaExceededException" => Error::QuotaExceeded {
                    message: format!("writing '{path}': {message}"),
                },
                "ParentNotDirectoryException" => Error::PreconditionFailed {
                    path,
                    message: format!("a parent of this path is an object: {message}"),
                },
                "PathIsNotEmptyDirectoryException" => Error::PreconditionFailed {
                    path,
                    message: format!("other objects are stored below this path: {message}"),
                },
                "InvalidPathException" => Error::InvalidPath {
                    path,
                    reason: format!("HDFS refuses the name: {message}"),
                },
                _ => Error::Unavailable {
                    backend: BACKEND.to_string(),
                    message: format!("'{path}': {short}: {message}"),
                },
            }
        }
        // The KDC or the server refused the login: no credentials, or not the principal's.
        HdfsError::GSSAPIError(..) | HdfsError::SASLError(_) | HdfsError::NoSASLMechanism => {
            Error::PermissionDenied {
                path,
                message: format!("Kerberos login failed: {e}"),
            }
        }
        HdfsError::IOError(io) => Error::Unavailable {
            backend: BACKEND.to_string(),
            message: format!("'{path}': {io}"),
        },
        other => Error::Unavailable {
            backend: BACKEND.to_string(),
            message: format!("'{path}': {other}"),
        },
    }
}

#[async_trait]
impl Store for HdfsStore {
    fn name(&self) -> &str {
        BACKEND
    }

    fn url(&self) -> String {
        let mut url = format!("hdfs://{}", self.server);
        for &b in self.root.as_bytes() {
            if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
                url.push(b as char);
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
        }
        url
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_copy(true)
            .with_rename(true)
            .with_append(true)
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        self.write_via_temp(path, stream::iter([Ok(bytes)]).boxed(), true)
            .await
    }

    async fn put_stream(&self, path: &StorePath, stream: ByteStream) -> Result<ObjectMeta> {
        self.write_via_temp(path, stream, true).await
    }

    async fn get(&self, path: &StorePath) -> Result<GetResult> {
        let full = self.full(path)?;
        // The reader holds the block locations of the version it opened; the status read on both
        // sides of it says which version that is, unless a writer replaced it in between.
        let mut attempts = 0;
        loop {
            let before = self.file_status(path, &full).await?;
            let reader = self
                .client
                .read(&full)
                .await
                .map_err(|e| hdfs_error(e, path))?;
            let after = self.file_status(path, &full).await?;
            let stable = before.modification_time == after.modification_time
                && before.length == after.length
                && reader.file_length() == after.length;
            attempts += 1;
            if stable || attempts == 10 {
                if !stable {
                    return Err(Error::Unavailable {
                        backend: BACKEND.to_string(),
                        message: format!("'{path}' kept being replaced while it was opened"),
                    });
                }
                let owned = path.clone();
                let body = reader
                    .read_range_stream(0, reader.file_length())
                    .map_err(move |e| hdfs_error(e, &owned));
                return Ok(GetResult {
                    meta: meta_of(path.clone(), &after),
                    stream: body.boxed(),
                });
            }
        }
    }

    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        let full = self.full(path)?;
        let reader = self
            .client
            .read(&full)
            .await
            .map_err(|e| hdfs_error(e, path))?;
        let range = clamp_range(path, range, reader.file_length() as u64)?;
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        reader
            .read_range(range.start as usize, (range.end - range.start) as usize)
            .await
            .map_err(|e| hdfs_error(e, path))
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let full = self.full(path)?;
        let status = self.file_status(path, &full).await?;
        Ok(meta_of(path.clone(), &status))
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        struct Walk {
            store: HdfsStore,
            prefix: Option<StorePath>,
            pending: Option<Vec<VecDeque<Entry>>>,
        }
        let walk = Walk {
            store: self.clone(),
            prefix: prefix.cloned(),
            pending: None,
        };
        // Depth first, one directory at a time; each directory sorted with `d` keyed as `d/`,
        // which makes the walk the byte order of the full paths.
        stream::try_unfold(walk, |mut walk| async move {
            let mut pending = match walk.pending.take() {
                Some(pending) => pending,
                None => vec![walk.store.start_listing(walk.prefix.as_ref()).await?.into()],
            };
            loop {
                let Some(level) = pending.last_mut() else {
                    return Ok(None);
                };
                match level.pop_front() {
                    None => {
                        pending.pop();
                    }
                    Some(Entry::File(meta)) => {
                        walk.pending = Some(pending);
                        return Ok(Some((meta, walk)));
                    }
                    Some(Entry::Dir(dir)) => {
                        let entries = walk.store.read_level(Some(&dir)).await?;
                        pending.push(entries.into());
                    }
                }
            }
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> Result<ListResult> {
        let mut result = ListResult::default();
        for entry in self.start_listing(prefix).await? {
            match entry {
                Entry::File(meta) => result.objects.push(meta),
                // A directory is a prefix only while it holds an object (not only uploads in
                // progress, or directories made by others).
                Entry::Dir(dir) => {
                    if let Some(first) = self.list(Some(&dir)).next().await {
                        first?;
                        result.common_prefixes.push(dir);
                    }
                }
            }
        }
        result.common_prefixes.sort();
        Ok(result)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let full = self.full(path)?;
        self.file_status(path, &full).await?;
        let deleted = self
            .client
            .delete(&full, false)
            .await
            .map_err(|e| hdfs_error(e, path))?;
        if !deleted {
            return Err(Error::NotFound {
                path: path.to_string(),
            });
        }
        self.remove_empty_parents(path).await;
        Ok(())
    }

    async fn copy(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        // HDFS has no server-side copy: the bytes pass through this client.
        let source = self.get(from).await?;
        self.write_via_temp(to, source.stream, true).await
    }

    async fn rename(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        let (source, target) = (self.full(from)?, self.full(to)?);
        let status = self.file_status(from, &source).await?;
        if from == to {
            return Ok(meta_of(to.clone(), &status));
        }
        if let Some(old) = self.status_if_any(to, &target).await? {
            if old.isdir {
                return Err(Error::PreconditionFailed {
                    path: to.to_string(),
                    message: "other objects are stored below this path".to_string(),
                });
            }
        }
        // A concurrent delete may remove the fresh, still empty directory before the rename.
        let mut attempts = 0;
        loop {
            if let Some(parent) = to.parent() {
                self.client
                    .mkdirs(&self.full_unchecked(Some(&parent)), 0o755, true)
                    .await
                    .map_err(|e| hdfs_error(e, to))?;
            }
            match self.client.rename(&source, &target, true).await {
                Ok(()) => break,
                Err(e) => match hdfs_error(e, from) {
                    Error::NotFound { .. } if attempts < 3 && self.head(from).await.is_ok() => {
                        attempts += 1;
                    }
                    other => return Err(other),
                },
            }
        }
        self.remove_empty_parents(from).await;
        let moved = self.file_status(to, &target).await?;
        Ok(meta_of(to.clone(), &moved))
    }

    async fn append(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        let full = self.full(path)?;
        loop {
            match self.client.append(&full).await {
                Ok(mut writer) => {
                    writer
                        .write_bytes(bytes.clone())
                        .await
                        .map_err(|e| hdfs_error(e, path))?;
                    writer.close().await.map_err(|e| hdfs_error(e, path))?;
                    return self.head(path).await;
                }
                Err(e) => match hdfs_error(e, path) {
                    // Created whole, without replacing what a concurrent append may have made.
                    Error::NotFound { .. } => {
                        let once = stream::iter([Ok(bytes.clone())]).boxed();
                        match self.write_via_temp(path, once, false).await {
                            Err(Error::AlreadyExists { .. }) => continue,
                            done => return done,
                        }
                    }
                    other => return Err(other),
                },
            }
        }
    }
}

/// The mode of the parents `prepare_root` makes: anyone may traverse them.
const PARENT_MODE: u32 = 0o755;

/// Preparing the store's directory for its owner: what provisioning a tenant's HDFS home does.
impl HdfsStore {
    /// Makes the root directory (and its parents) if missing and gives it `owner`, `group` and
    /// `mode` (`0o770`: the owner and the group, nobody else). Changing the owner takes HDFS's
    /// superuser. Answers whether anything changed, so that applying twice is seen to do
    /// nothing.
    pub async fn prepare_root(&self, owner: &str, group: &str, mode: u32) -> Result<bool> {
        let root = self.root.as_str();
        let mut changed = false;
        let status = match self.client.get_file_info(root).await {
            Ok(status) => status,
            Err(HdfsError::FileNotFound(_)) => {
                // Parents made here are open to traverse (0755): made with `mode`, as one
                // `mkdirs` would make them, they would shut every owner out of their own
                // directories below (`/tenants` 0770 owned by the superuser).
                if let Some((parent, _)) = root.rsplit_once('/')
                    && !parent.is_empty()
                {
                    self.client
                        .mkdirs(parent, PARENT_MODE, true)
                        .await
                        .map_err(|e| hdfs_error(e, &parent))?;
                }
                self.client
                    .mkdirs(root, mode, false)
                    .await
                    .map_err(|e| hdfs_error(e, &root))?;
                changed = true;
                self.client
                    .get_file_info(root)
                    .await
                    .map_err(|e| hdfs_error(e, &root))?
            }
            Err(e) => return Err(hdfs_error(e, &root)),
        };
        if !status.isdir {
            return Err(Error::PreconditionFailed {
                path: root.to_string(),
                message: "a file is where the directory should be".to_string(),
            });
        }
        if status.owner != owner || status.group != group {
            self.client
                .set_owner(root, Some(owner), Some(group))
                .await
                .map_err(|e| hdfs_error(e, &root))?;
            changed = true;
        }
        // The mode asked for, whatever umask mkdirs applied.
        if u32::from(status.permission) != mode {
            self.client
                .set_permission(root, mode)
                .await
                .map_err(|e| hdfs_error(e, &root))?;
            changed = true;
        }
        Ok(changed)
    }

    /// The owner, group and mode of the root directory.
    pub async fn root_owner(&self) -> Result<(String, String, u32)> {
        let root = self.root.as_str();
        let status = self
            .client
            .get_file_info(root)
            .await
            .map_err(|e| hdfs_error(e, &root))?;
        Ok((status.owner, status.group, u32::from(status.permission)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> StorePath {
        StorePath::parse("runs/x").unwrap()
    }

    fn rpc(class: &str, message: &str) -> Error {
        hdfs_error(
            HdfsError::RPCError(class.to_string(), message.to_string()),
            &path(),
        )
    }

    #[test]
    fn server_exceptions_keep_their_meaning() {
        assert!(rpc("java.io.FileNotFoundException", "File does not exist").is_not_found());
        assert!(hdfs_error(HdfsError::FileNotFound("/r/runs/x".into()), &path()).is_not_found());
        assert!(matches!(
            rpc("org.apache.hadoop.fs.FileAlreadyExistsException", "exists"),
            Error::AlreadyExists { .. }
        ));
        match rpc(
            "org.apache.hadoop.security.AccessControlException",
            "Permission denied: user=bob, access=WRITE\n\tat org.apache.hadoop.Foo(Foo.java:1)",
        ) {
            Error::PermissionDenied { path, message } => {
                assert_eq!(path, "runs/x");
                assert_eq!(message, "Permission denied: user=bob, access=WRITE");
            }
            other => panic!("{other:?}"),
        }
        for class in [
            "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException",
            "org.apache.hadoop.hdfs.protocol.NSQuotaExceededException",
        ] {
            assert!(
                matches!(rpc(class, "quota"), Error::QuotaExceeded { .. }),
                "{class}"
            );
        }
        assert!(matches!(
            rpc("org.apache.hadoop.fs.ParentNotDirectoryException", "runs"),
            Error::PreconditionFailed { .. }
        ));
        assert!(matches!(
            rpc("org.apache.hadoop.fs.InvalidPathException", "a:b"),
            Error::InvalidPath { .. }
        ));
        match rpc(
            "org.apache.hadoop.hdfs.server.namenode.SafeModeException",
            "Cannot create file. Name node is in safe mode.\n\tat x",
        ) {
            Error::Unavailable { backend, message } => {
                assert_eq!(backend, "hdfs");
                assert_eq!(
                    message,
                    "'runs/x': SafeModeException: Cannot create file. Name node is in safe mode."
                );
            }
            other => panic!("{other:?}"),
        }
        let refused = hdfs_error(
            HdfsError::IOError(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            &path(),
        );
        assert!(matches!(refused, Error::Unavailable { .. }), "{refused:?}");
    }

    #[test]
    fn options_never_show_their_values() {
        let options = HdfsOptions::default()
            .with_config("hadoop.security.authentication", "kerberos")
            .with_config("dfs.encryption.key.secret", "s3cret-value");
        let shown = format!(
            "{:?}",
            HdfsOptions {
                kerberos_cache: Some("FILE:/tmp/krb5cc_secret".into()),
                ..options
            }
        );
        assert!(shown.contains("hadoop.security.authentication"), "{shown}");
        assert!(
            !shown.contains("s3cret-value") && !shown.contains("krb5cc"),
            "{shown}"
        );
    }

    #[test]
    fn temporary_names_are_unique_and_reserved() {
        let (a, b) = (temp_name(), temp_name());
        assert_ne!(a, b);
        assert!(a.starts_with(PARTIAL_PREFIX));
        let reserved = StorePath::parse(&format!("dir/{a}")).unwrap();
        assert!(matches!(
            check_reserved(&reserved),
            Err(Error::InvalidPath { .. })
        ));
    }
}
