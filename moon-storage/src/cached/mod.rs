//! [`Cached`]: a read-through cache in front of any [`Store`], with a memory tier and a disk
//! tier, in fixed-size pages.
//!
//! ```
//! use bytes::Bytes;
//! use moon_storage::{Cached, MemoryStore, Store, StorePath};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> moon_storage::Result<()> {
//! let pages = tempfile::tempdir().expect("a temporary directory");
//! let inner = MemoryStore::new();
//! let cache = Cached::new(inner.clone())
//!     .memory_bytes(64 << 20)
//!     .disk(pages.path(), 1 << 30)?;
//!
//! let path = StorePath::parse("models/7/weights.bin")?;
//! cache.put(&path, Bytes::from(vec![7u8; 10 << 20])).await?;
//!
//! // The first read fetches the page that holds the range; the second finds it in memory.
//! assert_eq!(cache.get_range(&path, 0..4).await?, [7u8; 4].as_slice());
//! assert_eq!(cache.get_range(&path, 4..8).await?, [7u8; 4].as_slice());
//! let stats = cache.stats();
//! assert_eq!((stats.misses, stats.hits), (1, 1));
//! assert_eq!(stats.inner_bytes, 4 << 20, "one page of 4 MiB, not the whole 10 MiB");
//!
//! // Replaced behind the cache's back: the next read sees the new content.
//! inner.put(&path, Bytes::from_static(b"retrained")).await?;
//! assert_eq!(cache.get(&path).await?.bytes().await?, "retrained");
//! # Ok(())
//! # }
//! ```

mod disk;
mod flight;
mod index;
mod memory;
mod read;
mod stats;
mod version;

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::Result;
use crate::path::StorePath;
use crate::store::{ByteStream, Capabilities, GetResult, ListResult, ObjectMeta, Store};

use self::disk::DiskTier;
use self::flight::Flights;
use self::memory::MemoryTier;
use self::stats::Counters;
use self::version::Freshness;

pub use self::disk::MARKER as DISK_MARKER;
pub use self::read::WHOLE_OBJECT_MAX;
pub use self::stats::CacheStats;

/// The page size unless [`Cached::page_size`] says otherwise: 4 MiB.
///
/// A page is the unit the cache fetches, stores and evicts. Each fetch costs a round trip to
/// the inner store and a version check, and each page an index entry and (on disk) a file, so
/// small pages make large reads slow; a ranged read fetches whole pages, so large pages make
/// small random reads read far more than they asked for. At 4 MiB a fetch is long enough for
/// the transfer to outweigh the round trips (HDFS streams it from one block: blocks are 128 MiB),
/// a 256 MiB working set is 64 pages, and a stray 4 KiB read costs at most 4 MiB.
pub const DEFAULT_PAGE_SIZE: u64 = 4 << 20;
/// The memory tier's budget unless [`Cached::memory_bytes`] says otherwise: 256 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

/// A read-through cache in front of the store `S`: the role Alluxio plays in front of HDFS or
/// an object store, inside the process.
///
/// - **Pages.** Objects are cached in pages of [`DEFAULT_PAGE_SIZE`] bytes (or
///   [`page_size`](Self::page_size)), so a ranged read of a huge object caches only the pages it
///   touched.
/// - **Tiers.** A memory tier ([`memory_bytes`](Self::memory_bytes)) and, optionally, a disk
///   tier ([`disk`](Self::disk)), each kept within its byte budget by dropping its least
///   recently used pages. Every page fetched goes to both; a page found on disk is brought back
///   into memory. Disk writes happen in the background ([`settle`](Self::settle) waits for
///   them) and never hold a read up: when 32 are queued a page stays in memory only.
/// - **Whole objects.** An object read whole with `get`, up to [`WHOLE_OBJECT_MAX`] and a
///   quarter of the memory tier, is held in memory as one buffer (its pages evicted together),
///   so that reading it whole again hands out that buffer: `get(..).bytes()` then costs no
///   copy.
/// - **Freshness.** Every `get` and `get_range` first asks the inner store for the object's
///   metadata (one `head`), and pages are filed under the object's version (etag, modification
///   time and size), so a read never returns bytes of a version older than the one the inner
///   store holds when the read starts, even when the object was replaced behind the cache's back.
///   [`max_staleness`](Self::max_staleness) lets a reader trade that for fewer round trips.
///   Objects whose store reports neither etag nor time are not cached.
/// - **One fetch per miss.** Concurrent readers missing the same page wait for a single fetch
///   of it; concurrent `get`s of a cold object make one read of the inner store.
/// - **Writes** (`put`, `put_stream`, `delete`, `copy`, `rename`, `append`) go to the inner
///   store, and drop what the cache holds for the paths they touch.
/// - **Everything else** (`head`, listings, [`name`](Store::name), [`url`](Store::url),
///   capabilities) is the inner store's own: the cache is invisible but for speed.
///
/// A `get` of a cold object streams it from the inner store once, filing its pages as they pass,
/// and keeps the inner store's promise that content and metadata belong to one version. A `get`
/// of an object the cache holds streams the cached pages, fetching missing ones as it goes; the
/// pages memory held when the read began stay readable even if evicted meanwhile. Should a page
/// have to be fetched after the object was replaced, the read ends with
/// [`Error::Unavailable`](crate::Error::Unavailable) rather than mix two versions.
///
/// Builder methods start a fresh, empty cache with the new setting: configure before use.
/// Clones share one cache.
pub struct Cached<S: Store + ?Sized + 'static> {
    settings: Settings,
    core: Arc<Core<S>>,
}

#[derive(Debug, Clone)]
struct Settings {
    page_size: u64,
    memory_bytes: u64,
    disk: Option<Arc<DiskTier>>,
    max_staleness: Option<Duration>,
}

/// The cache's state, shared by the cache's clones and by its fetches in flight.
pub(crate) struct Core<S: Store + ?Sized + 'static> {
    inner: Arc<S>,
    page_size: u64,
    memory: MemoryTier,
    disk: Option<Arc<DiskTier>>,
    flights: Arc<Flights>,
    freshness: Freshness,
    stats: Arc<Counters>,
}

impl<S: Store + 'static> Cached<S> {
    /// A cache in front of `inner`, with a memory tier of [`DEFAULT_MEMORY_BYTES`], no disk
    /// tier and pages of [`DEFAULT_PAGE_SIZE`].
    pub fn new(inner: S) -> Self {
        Self::from_arc(Arc::new(inner))
    }
}

impl<S: Store + ?Sized + 'static> Cached<S> {
    /// Like [`new`](Self::new), for a store already shared, such as what [`crate::open`]
    /// returns.
    pub fn from_arc(inner: Arc<S>) -> Self {
        let settings = Settings {
            page_size: DEFAULT_PAGE_SIZE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            disk: None,
            max_staleness: None,
        };
        let core = Arc::new(Core::new(inner, &settings));
        Cached { settings, core }
    }

    fn rebuilt(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self.core = Arc::new(Core::new(Arc::clone(&self.core.inner), &self.settings));
        self
    }

    /// Sets the memory tier's budget in bytes (0: no memory tier).
    pub fn memory_bytes(self, bytes: u64) -> Self {
        self.rebuilt(|s| s.memory_bytes = bytes)
    }

    /// Adds a disk tier of `bytes` in the directory `dir`, made when missing.
    ///
    /// The cache owns the directory: it empties it now (its pages cannot be trusted across
    /// processes, since nothing ties them to versions the inner store holds now), marks it with
    /// a [`DISK_MARKER`] file and locks that file while the cache lives. It refuses a directory
    /// that holds anything but a cache's own files, and one another open cache uses
    /// ([`Error::PreconditionFailed`](crate::Error::PreconditionFailed)). The lock is let go
    /// when the cache and its background page writes are gone: to open the directory again in
    /// the same process, [`settle`](Self::settle) the old cache before dropping it.
    pub fn disk(self, dir: impl AsRef<Path>, bytes: u64) -> Result<Self> {
        // The old tier (and its lock) goes first, so the same directory can be opened again.
        let mut this = self.rebuilt(|s| s.disk = None);
        let tier = Arc::new(DiskTier::open(dir.as_ref(), bytes)?);
        this = this.rebuilt(|s| s.disk = Some(tier));
        Ok(this)
    }

    /// Sets the page size in bytes (at least 1).
    pub fn page_size(self, bytes: u64) -> Self {
        self.rebuilt(|s| s.page_size = bytes.max(1))
    }

    /// Lets reads trust the metadata the inner store reported up to `window` ago instead of
    /// asking again on every read (zero: ask every time, the default).
    ///
    /// Within the window, a read may return content the inner store has since replaced, if the
    /// replacement did not go through this cache; writes through the cache are seen at once.
    pub fn max_staleness(self, window: Duration) -> Self {
        self.rebuilt(|s| s.max_staleness = Some(window))
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<S> {
        &self.core.inner
    }

    /// The page size in bytes.
    pub fn page_bytes(&self) -> u64 {
        self.core.page_size
    }

    /// The disk tier's directory, when there is one.
    pub fn disk_dir(&self) -> Option<&Path> {
        self.core.disk.as_deref().map(DiskTier::dir)
    }

    /// What the cache has counted so far.
    pub fn stats(&self) -> CacheStats {
        let disk = self.core.disk.as_deref().map_or(0, DiskTier::used);
        self.core.stats.snapshot(self.core.memory.used(), disk)
    }

    /// Waits until the disk tier has written (or dropped) every page handed to it so far.
    pub async fn settle(&self) {
        if let Some(disk) = &self.core.disk {
            disk.settle().await;
        }
    }
}

impl<S: Store + ?Sized + 'static> Core<S> {
    fn new(inner: Arc<S>, settings: &Settings) -> Self {
        Core {
            inner,
            page_size: settings.page_size,
            memory: MemoryTier::new(settings.memory_bytes, settings.page_size),
            disk: settings.disk.clone(),
            flights: Arc::new(Flights::default()),
            freshness: Freshness::new(settings.max_staleness),
            stats: Arc::new(Counters::default()),
        }
    }

    /// Drops every page of `path` from both tiers.
    fn drop_pages(&self, path: &StorePath) {
        let mut dropped = self.memory.remove_path(path);
        if let Some(disk) = &self.disk {
            dropped += disk.remove_path(path);
        }
        Counters::add(&self.stats.invalidations, dropped as u64);
    }

    /// Forgets all the cache knows of `path`, before and after a write to it: before, so no
    /// answer asked for during the write is remembered; after, in case one was anyway.
    fn forget(&self, path: &StorePath) {
        self.freshness.forget(path);
        self.drop_pages(path);
    }
}

impl<S: Store + ?Sized + 'static> Clone for Cached<S> {
    fn clone(&self) -> Self {
        Cached {
            settings: self.settings.clone(),
            core: Arc::clone(&self.core),
        }
    }
}

impl<S: Store + ?Sized + 'static> fmt::Debug for Cached<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &self.core.inner)
            .field("page_size", &self.core.page_size)
            .field("memory_bytes", &self.core.memory.budget())
            .field("disk", &self.core.disk.as_deref().map(DiskTier::dir))
            .field(
                "disk_bytes",
                &self.core.disk.as_deref().map(DiskTier::budget),
            )
            .field("max_staleness", &self.core.freshness.window())
            .finish()
    }
}

impl<S: Store + ?Sized + 'static> Cached<S> {
    /// Runs a write to `paths` with the cache's knowledge of them dropped on both sides of it.
    async fn writing<T>(
        &self,
        paths: &[&StorePath],
        write: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        paths.iter().for_each(|path| self.core.forget(path));
        let result = write.await;
        paths.iter().for_each(|path| self.core.forget(path));
        result
    }
}

#[async_trait]
impl<S: Store + ?Sized + 'static> Store for Cached<S> {
    fn name(&self) -> &str {
        self.core.inner.name()
    }

    fn url(&self) -> String {
        self.core.inner.url()
    }

    fn capabilities(&self) -> Capabilities {
        self.core.inner.capabilities()
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        self.writing(&[path], self.core.inner.put(path, bytes))
            .await
    }

    async fn put_stream(&self, path: &StorePath, stream: ByteStream) -> Result<ObjectMeta> {
        self.writing(&[path], self.core.inner.put_stream(path, stream))
            .await
    }

    async fn get(&self, path: &StorePath) -> Result<GetResult> {
        self.core.get(path).await
    }

    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        self.core.get_range(path, range).await
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.core.inner.head(path).await
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.core.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> Result<ListResult> {
        self.core.inner.list_with_delimiter(prefix).await
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.writing(&[path], self.core.inner.delete(path)).await
    }

    async fn copy(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        self.writing(&[to], self.core.inner.copy(from, to)).await
    }

    async fn rename(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        self.writing(&[from, to], self.core.inner.rename(from, to))
            .await
    }

    async fn append(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        self.writing(&[path], self.core.inner.append(path, bytes))
            .await
    }
}
