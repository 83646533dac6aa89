//! `moon._native.Store` and `moon._native.Upload`: moon-storage's stores for Python.
//!
//! Objects' metadata crosses as `(path, size, etag, modified)` tuples, `modified` in seconds
//! since the epoch; `moon.storage` makes `ObjectMeta` dataclasses with datetimes of them. Every
//! call runs through [`run`]: the GIL is released while the store works. Batch calls run their
//! operations concurrently on the Rust side, at most `concurrency` at a time.

use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use moon_core::storage::seaweedfs::{BlobOptions, Fid, SeaweedBlobs, SeaweedOptions};
use moon_core::storage::{
    ObjectMeta, SeaweedStore, Store as StoreTrait, StorePath, StoreUrl, TenantStorage,
};
use moon_core::{Error, object_url};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::errors::to_py_err;
use crate::runtime::{run, spawn};

/// An object's metadata as Python receives it: `(path, size, etag, modified seconds)`.
type Meta = (String, u64, Option<String>, Option<f64>);

/// How many operations a batch call runs at once unless told otherwise.
const DEFAULT_CONCURRENCY: usize = 16;

/// Chunks an upload may hold in flight before `write` waits for the store.
const UPLOAD_QUEUE: usize = 4;

fn meta(meta: ObjectMeta) -> Meta {
    let modified = meta
        .modified
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs_f64());
    (meta.path.to_string(), meta.size, meta.etag, modified)
}

fn store_path(raw: &str) -> moon_core::Result<StorePath> {
    Ok(StorePath::parse(raw)?)
}

fn batch_limit(value: Option<usize>) -> PyResult<usize> {
    match value {
        Some(0) => Err(PyValueError::new_err("concurrency must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(DEFAULT_CONCURRENCY),
    }
}

/// The opened store and the process that opened it: connections pooled by the parent must not
/// be used by a child after `os.fork()`, so a child opens the store again.
struct Opened {
    pid: u32,
    store: Arc<dyn StoreTrait>,
    /// The blob API, for `seaweedfs://` URLs that name a master.
    blobs: Option<SeaweedBlobs>,
}

/// Where a store comes from, so that a child process can open it again.
enum Source {
    /// A URL, opened as it is.
    Url,
    /// A tenant's storage, which confines the URL to the tenant's part and, on HDFS, acts as
    /// the tenant's user.
    Tenant(Box<TenantStorage>),
}

/// A store opened from a URL (`memory://`, `file://`, `seaweedfs://`, `hdfs://`, ...), or one
/// of a tenant's stores (`Client.storage(tenant)`).
#[pyclass(module = "moon._native", frozen)]
pub(crate) struct Store {
    url: String,
    source: Source,
    opened: Mutex<Opened>,
}

impl Store {
    /// `url` opened through `tenant`'s storage: anything outside it is `PermissionDenied`.
    pub(crate) fn of_tenant(py: Python<'_>, tenant: TenantStorage, url: &str) -> PyResult<Self> {
        let source = Source::Tenant(Box::new(tenant));
        let opened = Store::open_in(py, &source, url)?;
        Ok(Store {
            url: url.to_string(),
            source,
            opened: Mutex::new(opened),
        })
    }

    fn open_in(py: Python<'_>, source: &Source, url: &str) -> PyResult<Opened> {
        match source {
            Source::Url => Store::open(py, url),
            Source::Tenant(tenant) => {
                let (tenant, url) = (tenant.as_ref().clone(), url.to_string());
                run(py, async move {
                    Ok(Opened {
                        pid: std::process::id(),
                        store: tenant.open(&url)?,
                        blobs: None,
                    })
                })
            }
        }
    }

    /// Opens `url` inside moon's runtime, whose connections the store then uses.
    fn open(py: Python<'_>, url: &str) -> PyResult<Opened> {
        let url = url.to_string();
        run(py, async move {
            let parsed = StoreUrl::parse(&url)?;
            if let StoreUrl::SeaweedFs {
                server,
                root,
                master,
                collection,
            } = parsed
            {
                let has_master = master.is_some();
                let options = SeaweedOptions {
                    master,
                    collection,
                    ..SeaweedOptions::default()
                };
                let store = SeaweedStore::new(server, &root, options)?;
                let blobs = if has_master {
                    Some(store.blobs()?)
                } else {
                    None
                };
                return Ok(Opened {
                    pid: std::process::id(),
                    store: Arc::new(store),
                    blobs,
                });
            }
            Ok(Opened {
                pid: std::process::id(),
                store: moon_core::storage::open(&url)?,
                blobs: None,
            })
        })
    }

    /// The store, opened again if this is a child of the process that opened it.
    fn store(&self, py: Python<'_>) -> PyResult<Arc<dyn StoreTrait>> {
        Ok(self.opened(py)?.0)
    }

    fn opened(&self, py: Python<'_>) -> PyResult<(Arc<dyn StoreTrait>, Option<SeaweedBlobs>)> {
        {
            let guard = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
            if guard.pid == std::process::id() {
                return Ok((guard.store.clone(), guard.blobs.clone()));
            }
        }
        let fresh = Store::open_in(py, &self.source, &self.url)?;
        let mut guard = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        let inherited = std::mem::replace(&mut *guard, fresh);
        // Dropping the parent's clients could close sockets the parent still uses.
        std::mem::forget(inherited);
        Ok((guard.store.clone(), guard.blobs.clone()))
    }

    fn blobs(&self, py: Python<'_>) -> PyResult<SeaweedBlobs> {
        let (store, blobs) = self.opened(py)?;
        blobs.ok_or_else(|| {
            let error = moon_core::storage::Error::NotSupported {
                backend: store.name().to_string(),
                operation: "blobs (they need a seaweedfs:// URL with ?master=host:port)".into(),
            };
            to_py_err(py, error)
        })
    }
}

#[pymethods]
impl Store {
    #[new]
    fn new(py: Python<'_>, url: &str) -> PyResult<Self> {
        let opened = Store::open(py, url)?;
        let url = opened.store.url();
        Ok(Store {
            url,
            source: Source::Url,
            opened: Mutex::new(opened),
        })
    }

    /// The store's URL, without credentials.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// The backend: `memory`, `local`, `seaweedfs`, `hdfs`.
    #[getter]
    fn backend(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.store(py)?.name().to_string())
    }

    /// `(copy, rename, append)`: the optional operations the backend offers.
    #[getter]
    fn capabilities(&self, py: Python<'_>) -> PyResult<(bool, bool, bool)> {
        let capabilities = self.store(py)?.capabilities();
        Ok((capabilities.copy, capabilities.rename, capabilities.append))
    }

    /// Whether the blob API is there (`seaweedfs://` with `?master=`).
    #[getter]
    fn has_blobs(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.opened(py)?.1.is_some())
    }

    fn put(&self, py: Python<'_>, path: &str, data: PyBackedBytes) -> PyResult<Meta> {
        let store = self.store(py)?;
        let path = path.to_string();
        run(py, async move {
            let path = store_path(&path)?;
            Ok(meta(store.put(&path, Bytes::from_owner(data)).await?))
        })
    }

    fn get<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyBytes>> {
        let store = self.store(py)?;
        let path = path.to_string();
        let bytes = run(py, async move {
            let path = store_path(&path)?;
            Ok(store.get(&path).await?.bytes().await?)
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn get_range<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        start: u64,
        end: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let store = self.store(py)?;
        let path = path.to_string();
        let bytes = run(py, async move {
            let path = store_path(&path)?;
            Ok(store.get_range(&path, start..end).await?)
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn head(&self, py: Python<'_>, path: &str) -> PyResult<Meta> {
        let store = self.store(py)?;
        let path = path.to_string();
        run(py, async move {
            let path = store_path(&path)?;
            Ok(meta(store.head(&path).await?))
        })
    }

    #[pyo3(signature = (prefix=None))]
    fn list(&self, py: Python<'_>, prefix: Option<&str>) -> PyResult<Vec<Meta>> {
        let store = self.store(py)?;
        let prefix = prefix.map(str::to_string);
        run(py, async move {
            let prefix = prefix.as_deref().map(store_path).transpose()?;
            let listed: Vec<ObjectMeta> = store.list(prefix.as_ref()).try_collect().await?;
            Ok(listed.into_iter().map(meta).collect())
        })
    }

    #[pyo3(signature = (prefix=None))]
    fn list_dir(&self, py: Python<'_>, prefix: Option<&str>) -> PyResult<(Vec<Meta>, Vec<String>)> {
        let store = self.store(py)?;
        let prefix = prefix.map(str::to_string);
        run(py, async move {
            let prefix = prefix.as_deref().map(store_path).transpose()?;
            let level = store.list_with_delimiter(prefix.as_ref()).await?;
            Ok((
                level.objects.into_iter().map(meta).collect(),
                level
                    .common_prefixes
                    .into_iter()
                    .map(|p| p.to_string())
                    .collect(),
            ))
        })
    }

    fn delete(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        let store = self.store(py)?;
        let path = path.to_string();
        run(
            py,
            async move { Ok(store.delete(&store_path(&path)?).await?) },
        )
    }

    fn copy(&self, py: Python<'_>, src: &str, dst: &str) -> PyResult<Meta> {
        let store = self.store(py)?;
        let (src, dst) = (src.to_string(), dst.to_string());
        run(py, async move {
            Ok(meta(
                store.copy(&store_path(&src)?, &store_path(&dst)?).await?,
            ))
        })
    }

    fn rename(&self, py: Python<'_>, src: &str, dst: &str) -> PyResult<Meta> {
        let store = self.store(py)?;
        let (src, dst) = (src.to_string(), dst.to_string());
        run(py, async move {
            Ok(meta(
                store.rename(&store_path(&src)?, &store_path(&dst)?).await?,
            ))
        })
    }

    fn append(&self, py: Python<'_>, path: &str, data: PyBackedBytes) -> PyResult<Meta> {
        let store = self.store(py)?;
        let path = path.to_string();
        run(py, async move {
            let path = store_path(&path)?;
            Ok(meta(store.append(&path, Bytes::from_owner(data)).await?))
        })
    }

    /// Writes every `(path, data)`; at most `concurrency` at once. Stops at the first error.
    #[pyo3(signature = (items, concurrency=None))]
    fn put_many(
        &self,
        py: Python<'_>,
        items: Vec<(String, PyBackedBytes)>,
        concurrency: Option<usize>,
    ) -> PyResult<Vec<Meta>> {
        let store = self.store(py)?;
        let limit = batch_limit(concurrency)?;
        run(py, async move {
            let items = items
                .into_iter()
                .map(|(raw, data)| Ok((store_path(&raw)?, Bytes::from_owner(data))))
                .collect::<moon_core::Result<Vec<_>>>()?;
            stream::iter(items)
                .map(|(path, data)| {
                    let store = store.clone();
                    async move { Ok::<_, Error>(meta(store.put(&path, data).await?)) }
                })
                .buffered(limit)
                .try_collect()
                .await
        })
    }

    /// Reads every path, in order; at most `concurrency` at once. Stops at the first error.
    #[pyo3(signature = (paths, concurrency=None))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        paths: Vec<String>,
        concurrency: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let store = self.store(py)?;
        let limit = batch_limit(concurrency)?;
        let contents: Vec<Bytes> = run(py, async move {
            let paths = paths
                .iter()
                .map(|raw| store_path(raw))
                .collect::<moon_core::Result<Vec<_>>>()?;
            stream::iter(paths)
                .map(|path| {
                    let store = store.clone();
                    async move { Ok::<_, Error>(store.get(&path).await?.bytes().await?) }
                })
                .buffered(limit)
                .try_collect()
                .await
        })?;
        Ok(contents
            .iter()
            .map(|bytes| PyBytes::new(py, bytes))
            .collect())
    }

    /// The metadata of every path, in order; at most `concurrency` at once.
    #[pyo3(signature = (paths, concurrency=None))]
    fn head_many(
        &self,
        py: Python<'_>,
        paths: Vec<String>,
        concurrency: Option<usize>,
    ) -> PyResult<Vec<Meta>> {
        let store = self.store(py)?;
        let limit = batch_limit(concurrency)?;
        run(py, async move {
            let paths = paths
                .iter()
                .map(|raw| store_path(raw))
                .collect::<moon_core::Result<Vec<_>>>()?;
            stream::iter(paths)
                .map(|path| {
                    let store = store.clone();
                    async move { Ok::<_, Error>(meta(store.head(&path).await?)) }
                })
                .buffered(limit)
                .try_collect()
                .await
        })
    }

    /// Deletes every path; at most `concurrency` at once. Stops at the first error.
    #[pyo3(signature = (paths, concurrency=None))]
    fn delete_many(
        &self,
        py: Python<'_>,
        paths: Vec<String>,
        concurrency: Option<usize>,
    ) -> PyResult<()> {
        let store = self.store(py)?;
        let limit = batch_limit(concurrency)?;
        run(py, async move {
            let paths = paths
                .iter()
                .map(|raw| store_path(raw))
                .collect::<moon_core::Result<Vec<_>>>()?;
            stream::iter(paths)
                .map(|path| {
                    let store = store.clone();
                    async move { Ok::<_, Error>(store.delete(&path).await?) }
                })
                .buffer_unordered(limit)
                .try_collect::<Vec<()>>()
                .await?;
            Ok(())
        })
    }

    /// Stores each content as a SeaweedFS blob; returns their file ids, in order.
    #[pyo3(signature = (contents, concurrency=None))]
    fn put_blobs(
        &self,
        py: Python<'_>,
        contents: Vec<PyBackedBytes>,
        concurrency: Option<usize>,
    ) -> PyResult<Vec<String>> {
        let blobs = self.blobs(py)?;
        let limit = batch_limit(concurrency)?;
        run(py, async move {
            let options = BlobOptions::default();
            stream::iter(contents)
                .map(|data| {
                    let (blobs, options) = (&blobs, &options);
                    async move {
                        let fid = blobs.put_blob(Bytes::from_owner(data), options).await?;
                        Ok::<_, Error>(fid.as_str().to_string())
                    }
                })
                .buffered(limit)
                .try_collect()
                .await
        })
    }

    /// Reads SeaweedFS blobs by file id, in order.
    #[pyo3(signature = (fids, concurrency=None))]
    fn get_blobs<'py>(
        &self,
        py: Python<'py>,
        fids: Vec<String>,
        concurrency: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let blobs = self.blobs(py)?;
        let limit = batch_limit(concurrency)?;
        let contents: Vec<Bytes> = run(py, async move {
            let fids = fids
                .iter()
                .map(|raw| Ok(Fid::parse(raw)?))
                .collect::<moon_core::Result<Vec<_>>>()?;
            stream::iter(fids)
                .map(|fid| {
                    let blobs = &blobs;
                    async move { Ok::<_, Error>(blobs.get_blob(&fid).await?) }
                })
                .buffered(limit)
                .try_collect()
                .await
        })?;
        Ok(contents
            .iter()
            .map(|bytes| PyBytes::new(py, bytes))
            .collect())
    }

    /// Deletes SeaweedFS blobs by file id.
    #[pyo3(signature = (fids, concurrency=None))]
    fn delete_blobs(
        &self,
        py: Python<'_>,
        fids: Vec<String>,
        concurrency: Option<usize>,
    ) -> PyResult<()> {
        let blobs = self.blobs(py)?;
        let limit = batch_limit(concurrency)?;
        run(py, async move {
            let fids = fids
                .iter()
                .map(|raw| Ok(Fid::parse(raw)?))
                .collect::<moon_core::Result<Vec<_>>>()?;
            stream::iter(fids)
                .map(|fid| {
                    let blobs = &blobs;
                    async move { Ok::<_, Error>(blobs.delete_blob(&fid).await?) }
                })
                .buffer_unordered(limit)
                .try_collect::<Vec<()>>()
                .await?;
            Ok(())
        })
    }

    /// Starts a streamed upload to `path`; nothing is visible there before `finish`.
    fn upload(&self, py: Python<'_>, path: &str) -> PyResult<Upload> {
        let store = self.store(py)?;
        let path = store_path(path).map_err(|error| to_py_err(py, error))?;
        let (chunks, receiver) =
            mpsc::channel::<Result<Bytes, moon_core::storage::Error>>(UPLOAD_QUEUE);
        let body = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        })
        .boxed();
        let task = spawn(async move { store.put_stream(&path, body).await })
            .map_err(|error| to_py_err(py, Error::io("starting an upload", "", error)))?;
        Ok(Upload {
            state: Mutex::new(Some(UploadState { chunks, task })),
        })
    }

    fn __repr__(&self) -> String {
        format!("Store({:?})", self.url)
    }
}

/// An upload in progress: chunks go to the store's `put_stream` as they are written.
struct UploadState {
    chunks: mpsc::Sender<Result<Bytes, moon_core::storage::Error>>,
    task: JoinHandle<moon_core::storage::Result<ObjectMeta>>,
}

/// A streamed upload (`Store.upload`): `write` chunks, then `finish` (the object appears whole)
/// or `abort` (nothing appears, a previous object stays).
#[pyclass(module = "moon._native", frozen)]
pub(crate) struct Upload {
    state: Mutex<Option<UploadState>>,
}

impl Upload {
    /// The upload's state, taken out when `take` (it ends), borrowed otherwise.
    fn with_state<T>(
        &self,
        take: bool,
        body: impl FnOnce(Option<UploadState>) -> (Option<UploadState>, T),
    ) -> PyResult<T> {
        // Never wait for the lock: its holder may be waiting for the GIL this thread holds.
        let mut guard = match self.state.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "this upload is being used by another thread",
                ));
            }
        };
        let state = guard.take();
        let (kept, value) = body(state);
        if !take {
            *guard = kept;
        }
        Ok(value)
    }
}

#[pymethods]
impl Upload {
    /// Sends one chunk; waits (GIL released) while the store is behind.
    fn write(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<usize> {
        let size = data.len();
        let sender = self.with_state(false, |state| {
            let sender = state.as_ref().map(|s| s.chunks.clone());
            (state, sender)
        })?;
        let Some(sender) = sender else {
            return Err(PyValueError::new_err("write to a finished upload"));
        };
        let sent = run(py, async move {
            Ok::<_, Error>(sender.send(Ok(Bytes::from_owner(data))).await.is_ok())
        })?;
        if !sent {
            // The store stopped reading: its error comes out of finish.
            return self.finish(py).map(|_| size);
        }
        Ok(size)
    }

    /// Ends the upload: the object appears whole. Returns its metadata.
    fn finish(&self, py: Python<'_>) -> PyResult<Meta> {
        let state = self.with_state(true, |state| (None, state))?;
        let Some(UploadState { chunks, task }) = state else {
            return Err(PyValueError::new_err("the upload has already ended"));
        };
        drop(chunks);
        run(py, async move { joined(task.await) })
    }

    /// Abandons the upload: nothing appears, and an object already there stays as it was.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let state = self.with_state(true, |state| (None, state))?;
        let Some(UploadState { chunks, task }) = state else {
            return Ok(());
        };
        // A dropped put_stream leaves the previous state (the Store trait's rule). The sender
        // lives until the task is gone: dropped first, it would end the stream, and the store
        // would take what it received as the whole object. Waiting lets the backend clean up
        // before the caller goes on.
        task.abort();
        run(py, async move {
            let _ = task.await;
            drop(chunks);
            Ok(())
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Never finished: abandoned, so nothing of it may appear (see `abort`).
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(UploadState { chunks, task }) = state.take() {
            task.abort();
            let _ = spawn(async move {
                let _ = task.await;
                drop(chunks);
            });
        }
    }
}

fn joined(
    result: Result<moon_core::storage::Result<ObjectMeta>, tokio::task::JoinError>,
) -> moon_core::Result<Meta> {
    match result {
        Ok(done) => Ok(meta(done?)),
        Err(error) => Err(Error::Agent(format!("the upload task failed: {error}"))),
    }
}

/// Splits an object URL into its store's URL and the object's path (see
/// `moon_core::object_url`).
#[pyfunction]
pub(crate) fn split_object_url(py: Python<'_>, url: &str) -> PyResult<(String, String)> {
    let object = object_url::split(url).map_err(|error| to_py_err(py, error))?;
    Ok((object.store, object.path.to_string()))
}
