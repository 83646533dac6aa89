//! A store on a SeaweedFS filer (`seaweedfs://filer:8888/path?master=host:9333`), and the blob
//! API of its master and volume servers.
//!
//! Objects are filer entries below the store's root directory; `a/b` is the filer path
//! `ROOT/a/b`. How the rules of [`Store`] are kept on the filer:
//!
//! - **Atomic writes**: the filer creates an entry only once the upload's body has ended, so a
//!   `PUT` straight to the path is atomic; a failed or dropped upload leaves nothing.
//! - **Objects and prefixes**: the filer is a tree, so `a` and `a/b` cannot both be objects; since
//!   the filer itself would silently turn an object into a directory (or drop a write onto a
//!   directory), a write first checks the path and its parents and fails with
//!   [`Error::PreconditionFailed`]. The check and the write are two requests: a writer racing it
//!   on a parent path can still win.
//! - **Delete** checks that an object is there (the filer answers a missing path with success),
//!   then removes the directories it leaves empty, so they are not listed.
//! - **Metadata**: the etag is the content's MD5, the time the entry's modification time to the
//!   second; `put` returns no time.
//! - **Copy and rename** are the filer's `cp.from` and `mv.from`.
//!
//! [`SeaweedStore::blobs`] gives the blob API (see [`blobs`](crate::seaweedfs::SeaweedBlobs)) on
//! the master named by `?master=`, writing to the store's collection.

mod admin;
mod blobs;
mod fid;
mod filer;
mod http;
mod listing;
mod lookup;
mod spares;
mod times;

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Body, Client, StatusCode};

pub use admin::LocationRule;
pub use blobs::{BlobOptions, SeaweedBlobs};
pub use fid::Fid;
pub use lookup::VolumeLocations;

use self::filer::{Entry, Filer, etag_header};
use self::http::{BACKEND, encode, failure, transport_error, unavailable};
use self::listing::{Item, Walk, full_path, meta};
use self::times::parse_http_date;
use crate::error::{Error, Result};
use crate::path::StorePath;
use crate::server::Server;
use crate::store::{
    ByteStream, Capabilities, GetResult, ListResult, ObjectMeta, Store, clamp_range,
};

/// How a [`SeaweedStore`] is reached and where it writes.
#[derive(Debug, Clone)]
pub struct SeaweedOptions {
    /// The master server, for the blob API ([`SeaweedStore::blobs`]).
    pub master: Option<Server>,
    /// The collection new data is written to; `None` is SeaweedFS's default collection.
    pub collection: Option<String>,
    /// How long to wait for a connection and for each answer (or each piece of a body) before
    /// the server counts as unavailable. Whole transfers of large objects are not limited.
    pub timeout: Duration,
}

impl Default for SeaweedOptions {
    fn default() -> Self {
        SeaweedOptions {
            master: None,
            collection: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A store on a SeaweedFS filer. Clones share one connection pool.
#[derive(Debug, Clone)]
pub struct SeaweedStore {
    filer: Arc<Filer>,
    http: Client,
    server: Server,
    root: String,
    options: SeaweedOptions,
}

impl SeaweedStore {
    /// A store rooted at the filer directory `root` (absolute; `/` is the whole filer) of the
    /// filer at `server`. Nothing is sent until the first operation.
    pub fn new(server: Server, root: &str, options: SeaweedOptions) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: format!("seaweedfs://{server}{root}"),
            reason: reason.to_string(),
        };
        if !root.starts_with('/') {
            return Err(bad("the filer directory must be absolute"));
        }
        let trimmed = root.trim_end_matches('/');
        let root = if trimmed.is_empty() {
            "/".to_string()
        } else {
            if trimmed
                .trim_start_matches('/')
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return Err(bad("the filer directory has an empty, '.' or '..' segment"));
            }
            trimmed.to_string()
        };
        let http = http::client(options.timeout)?;
        let filer = Filer::new(
            http.clone(),
            &server.to_string(),
            options.timeout,
            options.collection.as_deref(),
        );
        Ok(SeaweedStore {
            filer: Arc::new(filer),
            http,
            server,
            root,
            options,
        })
    }

    /// The filer directory the store is rooted at.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The blob API of the master named in the options, writing to the store's collection;
    /// [`Error::InvalidUrl`] when no master was named (`?master=host:port`).
    pub fn blobs(&self) -> Result<SeaweedBlobs> {
        let master = self
            .options
            .master
            .as_ref()
            .ok_or_else(|| Error::InvalidUrl {
                url: self.url(),
                reason: "the blob API needs the master's address: add ?master=host:port"
                    .to_string(),
            })?;
        let defaults = BlobOptions {
            collection: self.options.collection.clone(),
            ..BlobOptions::default()
        };
        Ok(SeaweedBlobs::new(
            self.http.clone(),
            master.to_string(),
            self.options.timeout,
            defaults,
        ))
    }

    fn full(&self, path: &StorePath) -> String {
        full_path(&self.root, Some(path))
    }

    /// The entry of the object at `path`: [`Error::NotFound`] when there is none, or a directory.
    async fn object(&self, path: &StorePath) -> Result<Entry> {
        match self.filer.entry(&self.full(path)).await? {
            Some(entry) if entry.is_object() => Ok(entry),
            _ => Err(Error::NotFound {
                path: path.to_string(),
            }),
        }
    }

    /// Refuses a write to `path` that the filer would turn into a loss: `path` is a directory
    /// (objects below it), or one of its parents is an object.
    async fn check_writable(&self, path: &StorePath) -> Result<()> {
        match self.filer.entry(&self.full(path)).await? {
            Some(entry) if entry.is_dir() => {
                return Err(Error::PreconditionFailed {
                    path: path.to_string(),
                    message: "other objects are stored below this path".to_string(),
                });
            }
            // An object's parents are directories.
            Some(_) => return Ok(()),
            None => {}
        }
        let mut parent = path.parent();
        loop {
            let full = full_path(&self.root, parent.as_ref());
            match self.filer.entry(&full).await? {
                Some(entry) if entry.is_dir() => return Ok(()),
                Some(_) => {
                    let blocker = parent
                        .as_ref()
                        .map_or_else(|| "the store's root".to_string(), |p| format!("'{p}'"));
                    return Err(Error::PreconditionFailed {
                        path: path.to_string(),
                        message: format!(
                            "{blocker} is an object, so it cannot hold objects below it"
                        ),
                    });
                }
                None if parent.is_none() || full == "/" => return Ok(()),
                None => parent = parent.and_then(|p| p.parent()),
            }
        }
    }

    /// Removes the directories that held `path`, deepest first, while they are empty; the
    /// filer refuses to delete a directory that is not.
    async fn remove_empty_parents(&self, path: &StorePath) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            let full = self.full(&d);
            match self.filer.entry(&full).await {
                Ok(Some(entry)) if entry.is_dir() => {}
                _ => break,
            }
            if self.filer.delete(&full).await.is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    async fn upload(&self, path: &StorePath, body: Body, failed: &BodyError) -> Result<ObjectMeta> {
        self.check_writable(path).await?;
        match self.filer.upload(&self.full(path), body).await? {
            Ok(uploaded) => Ok(ObjectMeta {
                path: path.clone(),
                size: uploaded.size,
                etag: uploaded.etag,
                modified: None,
            }),
            // The body's own error, when the stream failed, rather than the connection's.
            Err(e) => Err(failed
                .take()
                .unwrap_or_else(|| transport_error(&e.0, &self.filer.shown))),
        }
    }

    async fn transfer(
        &self,
        operation: &str,
        from: &StorePath,
        to: &StorePath,
    ) -> Result<ObjectMeta> {
        self.object(from).await?;
        self.check_writable(to).await?;
        self.filer
            .transfer(operation, &self.full(from), &self.full(to))
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::NotFound {
                    path: from.to_string(),
                },
                other => other,
            })?;
        let entry = self.object(to).await?;
        Ok(meta(&entry, to.clone()))
    }
}

/// The first error of an upload's body stream, kept so that the caller sees it rather than the
/// connection error it caused.
#[derive(Default, Clone)]
struct BodyError(Arc<Mutex<Option<Error>>>);

impl BodyError {
    fn keep(&self, e: Error) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }

    fn take(&self) -> Option<Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[async_trait]
impl Store for SeaweedStore {
    fn name(&self) -> &str {
        BACKEND
    }

    fn url(&self) -> String {
        let mut url = format!(
            "seaweedfs://{}{}",
            self.server_without_userinfo(),
            encode(&self.root, true)
        );
        let mut query = Vec::new();
        if let Some(master) = &self.options.master {
            query.push(format!("master={master}"));
        }
        if let Some(collection) = &self.options.collection {
            query.push(format!("collection={collection}"));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_copy(true).with_rename(true)
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        self.upload(path, Body::from(bytes), &BodyError::default())
            .await
    }

    async fn put_stream(&self, path: &StorePath, stream: ByteStream) -> Result<ObjectMeta> {
        let failed = BodyError::default();
        let keep = failed.clone();
        let body = stream.map_err(move |e| {
            keep.keep(e.clone());
            e
        });
        self.upload(path, Body::wrap_stream(body), &failed).await
    }

    async fn get(&self, path: &StorePath) -> Result<GetResult> {
        let full = self.full(path);
        let response = self.filer.read(&full, None).await?;
        if !response.status().is_success() {
            return Err(failure(response, path.as_str(), &self.filer.shown).await);
        }
        let headers = response.headers();
        // A directory answers with an HTML page, without the etag every object has.
        let Some(etag) = etag_header(headers) else {
            return Err(Error::NotFound {
                path: path.to_string(),
            });
        };
        let size = response.content_length().ok_or_else(|| {
            unavailable(format!(
                "{} sent '{path}' without its length",
                self.filer.shown
            ))
        })?;
        let modified = headers
            .get("Last-Modified")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let meta = ObjectMeta {
            path: path.clone(),
            size,
            etag: Some(etag),
            modified,
        };
        let shown = self.filer.shown.clone();
        let stream = response
            .bytes_stream()
            .map_err(move |e| transport_error(&e, &shown))
            .boxed();
        Ok(GetResult { meta, stream })
    }

    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            // Nothing to read, but the start must still be checked against the size.
            let size = self.object(path).await?.file_size;
            clamp_range(path, range, size)?;
            return Ok(Bytes::new());
        }
        let full = self.full(path);
        let response = self
            .filer
            .read(&full, Some((range.start, range.end - 1)))
            .await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => filer::body(response, &self.filer.shown).await,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // `Content-Range: bytes */SIZE` names the size.
                let size = response
                    .headers()
                    .get("Content-Range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes */"))
                    .and_then(|v| v.parse::<u64>().ok());
                let size = match size {
                    Some(size) => size,
                    None => self.object(path).await?.file_size,
                };
                clamp_range(path, range, size)?;
                Ok(Bytes::new())
            }
            StatusCode::OK => {
                if etag_header(response.headers()).is_none() {
                    return Err(Error::NotFound {
                        path: path.to_string(),
                    });
                }
                // The whole object: the filer sends it for an empty one.
                let whole = filer::body(response, &self.filer.shown).await?;
                let range = clamp_range(path, range, whole.len() as u64)?;
                Ok(whole.slice(range.start as usize..range.end as usize))
            }
            _ => Err(failure(response, path.as_str(), &self.filer.shown).await),
        }
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let entry = self.object(path).await?;
        Ok(meta(&entry, path.clone()))
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        Walk::new(self.filer.clone(), self.root.clone(), prefix.cloned()).into_stream()
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> Result<ListResult> {
        let full = full_path(&self.root, prefix);
        let mut result = ListResult::default();
        if !listing::is_dir(&self.filer, &full).await? {
            return Ok(result);
        }
        let mut after: Option<String> = None;
        loop {
            let entries = self
                .filer
                .list_page(&full, after.as_deref(), listing::PAGE)
                .await?;
            for entry in &entries {
                match listing::item(entry, prefix) {
                    Some(Item::Object(meta)) => result.objects.push(meta),
                    Some(Item::Dir(dir)) => result.common_prefixes.push(dir),
                    None => {}
                }
            }
            if entries.len() < listing::PAGE {
                break;
            }
            after = entries.last().map(|e| e.name().to_string());
        }
        result.common_prefixes.sort();
        Ok(result)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.object(path).await?;
        self.filer.delete(&self.full(path)).await?;
        self.remove_empty_parents(path).await;
        Ok(())
    }

    async fn copy(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        self.transfer("cp.from", from, to).await
    }

    async fn rename(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        if from == to {
            let entry = self.object(from).await?;
            return Ok(meta(&entry, to.clone()));
        }
        let moved = self.transfer("mv.from", from, to).await?;
        self.remove_empty_parents(from).await;
        Ok(moved)
    }
}

impl SeaweedStore {
    fn server_without_userinfo(&self) -> Server {
        Server {
            userinfo: None,
            ..self.server.clone()
        }
    }
}
