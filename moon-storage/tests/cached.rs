//! What a user of the read-through cache notices: hits after the first read, fresh content after
//! a replacement behind its back, one fetch for many readers, budgets kept, pages read back from
//! disk, and exact bytes for ranges across page edges. The stores underneath are real (memory
//! and local directory), wrapped only to count what reaches them.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use moon_storage::cached::DISK_MARKER;
use moon_storage::{
    ByteStream, Cached, Capabilities, Error, GetResult, ListResult, LocalStore, MemoryStore,
    ObjectMeta, Store, StorePath,
};

/// A real store that counts the reads reaching it, and can make them slow, so that concurrent
/// readers surely overlap.
#[derive(Debug)]
struct Counting<S> {
    inner: S,
    gets: AtomicUsize,
    ranges: AtomicUsize,
    heads: AtomicUsize,
    delay: Duration,
    /// Whether to hide etags and times, as a backend that reports neither.
    anonymous: bool,
    /// Content that replaces the object at the start of the next ranged read, as a writer
    /// racing that read would.
    replace_on_next_range: std::sync::Mutex<Option<Bytes>>,
}

impl<S: Store> Counting<S> {
    fn new(inner: S) -> Self {
        Counting {
            inner,
            gets: AtomicUsize::new(0),
            ranges: AtomicUsize::new(0),
            heads: AtomicUsize::new(0),
            delay: Duration::ZERO,
            anonymous: false,
            replace_on_next_range: std::sync::Mutex::new(None),
        }
    }

    fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn reads(&self) -> (usize, usize) {
        (
            self.gets.load(Ordering::SeqCst),
            self.ranges.load(Ordering::SeqCst),
        )
    }

    fn shown(&self, mut meta: ObjectMeta) -> ObjectMeta {
        if self.anonymous {
            meta.etag = None;
            meta.modified = None;
        }
        meta
    }

    async fn pause(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

#[async_trait]
impl<S: Store> Store for Counting<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn url(&self) -> String {
        self.inner.url()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> moon_storage::Result<ObjectMeta> {
        self.inner.put(path, bytes).await.map(|m| self.shown(m))
    }

    async fn put_stream(
        &self,
        path: &StorePath,
        stream: ByteStream,
    ) -> moon_storage::Result<ObjectMeta> {
        self.inner
            .put_stream(path, stream)
            .await
            .map(|m| self.shown(m))
    }

    async fn get(&self, path: &StorePath) -> moon_storage::Result<GetResult> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.pause().await;
        let mut result = self.inner.get(path).await?;
        result.meta = self.shown(result.meta);
        Ok(result)
    }

    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> moon_storage::Result<Bytes> {
        self.ranges.fetch_add(1, Ordering::SeqCst);
        self.pause().await;
        let replacement = self.replace_on_next_range.lock().unwrap().take();
        if let Some(content) = replacement {
            self.inner.put(path, content).await?;
        }
        self.inner.get_range(path, range).await
    }

    async fn head(&self, path: &StorePath) -> moon_storage::Result<ObjectMeta> {
        self.heads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(path).await.map(|m| self.shown(m))
    }

    fn list(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, moon_storage::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&StorePath>,
    ) -> moon_storage::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn delete(&self, path: &StorePath) -> moon_storage::Result<()> {
        self.inner.delete(path).await
    }
}

fn p(raw: &str) -> StorePath {
    StorePath::parse(raw).unwrap()
}

/// Deterministic bytes that differ at every offset a test might compare.
fn noise(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(2).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Asserts equal content, saying where it differs rather than printing it.
#[track_caller]
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

async fn read(store: &dyn Store, path: &StorePath) -> Bytes {
    store.get(path).await.unwrap().bytes().await.unwrap()
}

/// Page files in a disk tier's directory (and anything else but the marker).
fn files_in(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name() != DISK_MARKER)
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

const KIB: u64 = 1024;

#[tokio::test]
async fn a_second_read_is_served_from_memory() {
    let inner = Arc::new(Counting::new(MemoryStore::new()));
    let cache = Cached::from_arc(Arc::clone(&inner)).page_size(64 * KIB);
    let path = p("models/weights.bin");
    let content = noise(1, 300 * 1024);
    inner.put(&path, content.clone()).await.unwrap();

    assert_same(&read(&cache, &path).await, &content, "cold");
    assert_eq!(inner.reads(), (1, 0), "a cold get is one streamed read");
    let cold = cache.stats();
    assert_eq!(cold.misses, 5, "300 KiB in 64 KiB pages");
    assert_eq!(cold.hits, 0);
    assert_eq!(cold.inner_bytes, content.len() as u64);
    assert_eq!(cold.memory_bytes, content.len() as u64);

    assert_same(&read(&cache, &path).await, &content, "warm");
    assert_same(
        &cache.get_range(&path, 1000..200_000).await.unwrap(),
        &content[1000..200_000],
        "warm range",
    );
    assert_eq!(inner.reads(), (1, 0), "warm reads reach the inner store");
    let warm = cache.stats();
    assert_eq!(warm.hits, 5 + 4);
    assert_eq!(warm.misses, 5);
    assert_eq!(warm.inner_bytes, content.len() as u64);
    assert_eq!(
        warm.memory_bytes_served,
        content.len() as u64 + 199_000,
        "{warm:?}"
    );
    // Each read still asked whether the object changed: one head per read.
    assert_eq!(inner.heads.load(Ordering::SeqCst), 3);
    assert_eq!(warm.inner_heads, 3);
}

#[tokio::test]
async fn an_object_read_whole_is_read_whole_again_without_a_copy() {
    let inner = MemoryStore::new();
    let cache = Cached::new(inner.clone()).page_size(64 * KIB);
    let path = p("shard");
    let content = noise(11, 1 << 20);
    inner.put(&path, content.clone()).await.unwrap();
    let cold = read(&cache, &path).await;
    assert_same(&cold, &content, "cold");
    let (first, second) = (read(&cache, &path).await, read(&cache, &path).await);
    assert_same(&first, &content, "warm");
    assert_eq!(first.as_ptr(), second.as_ptr(), "the same cached buffer");
    assert_ne!(first.as_ptr(), cold.as_ptr());
    // Its pages are there for ranged reads too.
    assert_same(
        &cache.get_range(&path, 100_000..300_000).await.unwrap(),
        &content[100_000..300_000],
        "a range of it",
    );
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits), (16, 2 * 16 + 4), "{stats:?}");
    assert_eq!(stats.inner_bytes, 1 << 20);

    // Larger than a quarter of the memory tier: held page by page instead, and still whole.
    let small = Cached::new(inner.clone())
        .page_size(64 * KIB)
        .memory_bytes(2 << 20);
    read(&small, &path).await;
    let (first, second) = (read(&small, &path).await, read(&small, &path).await);
    assert_same(&first, &content, "paged");
    assert_ne!(first.as_ptr(), second.as_ptr());
    assert_eq!(small.stats().memory_bytes, 1 << 20);
}

#[tokio::test]
async fn a_reader_that_stops_at_the_last_byte_still_fills_the_cache() {
    let content = noise(12, 200_000);
    // Held whole, and (in a memory tier too small for that) page by page.
    for memory in [256 << 20, 4 * 64 * KIB] {
        let inner = Arc::new(Counting::new(MemoryStore::new()));
        let cache = Cached::from_arc(Arc::clone(&inner))
            .page_size(64 * KIB)
            .memory_bytes(memory);
        let path = p("exact");
        inner.put(&path, content.clone()).await.unwrap();
        for _ in 0..2 {
            let mut got = cache.get(&path).await.unwrap();
            let mut body = Vec::new();
            while body.len() < content.len() {
                body.extend_from_slice(&got.stream.next().await.unwrap().unwrap());
            }
            drop(got);
            assert_same(&body, &content, "read to the last byte");
        }
        assert_eq!(inner.reads(), (1, 0), "memory tier of {memory}");
    }
}

#[tokio::test]
async fn content_replaced_behind_the_cache_is_seen_by_the_next_read() {
    for local in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> = if local {
            Arc::new(LocalStore::new(dir.path().join("store")).unwrap())
        } else {
            Arc::new(MemoryStore::new())
        };
        let cache = Cached::from_arc(Arc::clone(&inner))
            .page_size(4 * KIB)
            .disk(dir.path().join("pages"), 1 << 20)
            .unwrap();
        let path = p("data/shard-0");
        // Same size every time, so only the version tells them apart.
        for version in 0..3u64 {
            let content = noise(version + 10, 10_000);
            inner.put(&path, content.clone()).await.unwrap();
            assert_same(&read(&cache, &path).await, &content, "get");
            assert_same(
                &cache.get_range(&path, 4090..4200).await.unwrap(),
                &content[4090..4200],
                "range",
            );
            cache.settle().await;
        }
        // Gone behind its back: gone for the cache's readers too.
        inner.delete(&path).await.unwrap();
        assert!(cache.get(&path).await.unwrap_err().is_not_found());
        assert!(
            cache
                .get_range(&path, 0..1)
                .await
                .unwrap_err()
                .is_not_found()
        );
        cache.settle().await;
        assert_eq!(cache.stats().memory_bytes, 0);
        assert_eq!(cache.stats().disk_bytes, 0);
    }
}

#[tokio::test]
async fn a_staleness_window_trades_freshness_for_round_trips() {
    let inner = Arc::new(Counting::new(MemoryStore::new()));
    let cache = Cached::from_arc(Arc::clone(&inner)).max_staleness(Duration::from_secs(3600));
    let path = p("config.json");
    inner.put(&path, Bytes::from_static(b"old")).await.unwrap();
    assert_eq!(read(&cache, &path).await, "old");
    inner.put(&path, Bytes::from_static(b"new")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(read(&cache, &path).await, "old", "inside the window");
    }
    assert_eq!(
        inner.heads.load(Ordering::SeqCst),
        1,
        "one head in the window"
    );

    // A write through the cache is seen at once.
    cache
        .put(&path, Bytes::from_static(b"newest"))
        .await
        .unwrap();
    assert_eq!(read(&cache, &path).await, "newest");

    // A short window runs out.
    let cache = Cached::from_arc(Arc::clone(&inner)).max_staleness(Duration::from_millis(50));
    assert_eq!(read(&cache, &path).await, "newest");
    inner
        .put(&path, Bytes::from_static(b"after"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(read(&cache, &path).await, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_of_a_cold_object_cause_one_inner_fetch() {
    let inner = Arc::new(Counting::new(MemoryStore::new()).slow(Duration::from_millis(100)));
    let cache = Cached::from_arc(Arc::clone(&inner)).page_size(256 * KIB);
    let path = p("datasets/cold.bin");
    let content = noise(2, 2 << 20);
    inner.put(&path, content.clone()).await.unwrap();

    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (cache, path) = (cache.clone(), path.clone());
            tokio::spawn(async move { read(&cache, &path).await })
        })
        .collect();
    for reader in readers {
        assert_same(&reader.await.unwrap(), &content, "a concurrent reader");
    }
    assert_eq!(inner.reads(), (1, 0), "sixteen readers, one read");
    assert_eq!(cache.stats().inner_bytes, content.len() as u64);

    // Ranged readers of another cold object: each page once.
    let other = p("datasets/cold-too.bin");
    inner.put(&other, content.clone()).await.unwrap();
    let readers: Vec<_> = (0..16)
        .map(|i| {
            let (cache, path) = (cache.clone(), other.clone());
            // Overlapping ranges over pages 1 to 4.
            let range = (300 * KIB + i * 1000)..(1200 * KIB - i * 1000);
            tokio::spawn(async move { (cache.get_range(&path, range.clone()).await, range) })
        })
        .collect();
    for reader in readers {
        let (got, range) = reader.await.unwrap();
        let want = &content[range.start as usize..range.end as usize];
        assert_same(&got.unwrap(), want, "a concurrent ranged reader");
    }
    assert_eq!(inner.reads(), (1, 4), "pages 1 to 4, once each");
}

#[tokio::test]
async fn a_page_fetched_while_the_object_is_replaced_is_never_mixed_with_older_pages() {
    let inner = Arc::new(Counting::new(MemoryStore::new()));
    let cache = Cached::from_arc(Arc::clone(&inner)).page_size(4 * KIB);
    let path = p("racing");
    let (old, new) = (noise(20, 8192), noise(21, 8192));
    assert_ne!(old[..], new[..]);
    inner.put(&path, old.clone()).await.unwrap();
    assert_same(
        &cache.get_range(&path, 0..100).await.unwrap(),
        &old[..100],
        "page 0 cached",
    );
    // A writer replaces the object between the read's check and its fetch of page 1.
    *inner.replace_on_next_range.lock().unwrap() = Some(new.clone());
    let got = cache.get_range(&path, 0..8192).await.unwrap();
    assert_same(&got, &new, "the whole new version");
    assert_same(&read(&cache, &path).await, &new, "and after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streamed_read_abandoned_midway_does_not_strand_its_waiters() {
    let inner = Arc::new(Counting::new(MemoryStore::new()).slow(Duration::from_millis(50)));
    let cache = Cached::from_arc(Arc::clone(&inner)).page_size(4 * KIB);
    let path = p("a");
    let content = noise(3, 40 * 1024);
    inner.put(&path, content.clone()).await.unwrap();

    // A cold get claims every page; a ranged reader then waits on pages 4 and 5.
    let abandoned = cache.get(&path).await.unwrap();
    let waiter = {
        let (cache, path) = (cache.clone(), path.clone());
        tokio::spawn(async move { cache.get_range(&path, 20_000..24_000).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(abandoned);
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter was stranded")
        .unwrap()
        .unwrap();
    assert_same(&got, &content[20_000..24_000], "the waiter's range");
    assert_eq!(
        inner.reads(),
        (1, 2),
        "the waiter fetched its two pages itself"
    );
}

#[tokio::test]
async fn ranged_reads_across_page_edges_return_exact_bytes() {
    let inner = MemoryStore::new();
    let cache = Cached::new(inner.clone()).page_size(1000);
    let path = p("edges");
    let content = noise(4, 10_000);
    inner.put(&path, content.clone()).await.unwrap();
    let ranges = [
        999..1001,
        0..1000,
        1000..2000,
        1..999,
        500..3500,
        2999..7001,
        9999..10_000,
        0..10_000,
    ];
    // Cold, then warm, then with the first pages evicted.
    for round in 0..2 {
        for range in ranges.clone() {
            let got = cache.get_range(&path, range.clone()).await.unwrap();
            let want = &content[range.start as usize..range.end as usize];
            assert_same(&got, want, &format!("{range:?} in round {round}"));
        }
    }
    assert_same(
        &cache.get_range(&path, 9990..20_000).await.unwrap(),
        &content[9990..],
        "clamped at the end",
    );
    assert!(
        cache
            .get_range(&path, 10_000..10_005)
            .await
            .unwrap()
            .is_empty()
    );
    match cache.get_range(&path, 10_001..10_002).await {
        Err(Error::InvalidRange { size, .. }) => assert_eq!(size, 10_000),
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.stats().inner_bytes, 10_000, "every page fetched once");

    let small = Cached::new(inner.clone())
        .page_size(1000)
        .memory_bytes(3000);
    for range in ranges {
        let got = small.get_range(&path, range.clone()).await.unwrap();
        let want = &content[range.start as usize..range.end as usize];
        assert_same(&got, want, &format!("{range:?} with evictions"));
    }
    assert_same(
        &read(&small, &path).await,
        &content,
        "whole, with evictions",
    );
}

#[tokio::test]
async fn a_ranged_read_of_a_large_object_caches_only_its_pages() {
    let inner = MemoryStore::new();
    let cache = Cached::new(inner.clone());
    let path = p("checkpoints/huge.bin");
    let content = noise(5, 24 << 20);
    inner.put(&path, content.clone()).await.unwrap();
    let start = 20 << 20;
    assert_same(
        &cache.get_range(&path, start..start + 10).await.unwrap(),
        &content[start as usize..start as usize + 10],
        "a range deep inside",
    );
    let stats = cache.stats();
    assert_eq!(stats.inner_bytes, cache.page_bytes());
    assert_eq!(stats.memory_bytes, cache.page_bytes());
}

#[tokio::test]
async fn budgets_hold_while_pages_are_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(Counting::new(MemoryStore::new()));
    let page = 16 * KIB;
    let cache = Cached::from_arc(Arc::clone(&inner))
        .page_size(page)
        .memory_bytes(3 * page)
        .disk(dir.path(), 5 * page + page / 2)
        .unwrap();
    let path = p("big");
    let content = noise(6, 20 * page as usize);
    inner.put(&path, content.clone()).await.unwrap();
    for index in (0..20u64).chain((0..20).rev()) {
        let range = index * page + 100..index * page + 200;
        let got = cache.get_range(&path, range.clone()).await.unwrap();
        assert_same(
            &got,
            &content[range.start as usize..range.end as usize],
            "range",
        );
        cache.settle().await;
        let stats = cache.stats();
        assert!(stats.memory_bytes <= 3 * page, "{stats:?}");
        assert!(stats.disk_bytes <= 5 * page, "{stats:?}");
        let files = files_in(dir.path());
        assert!(files.len() <= 5, "{files:?}");
        assert!(
            files
                .iter()
                .all(|(name, len)| name.ends_with(".page") && *len == page)
        );
    }
    let stats = cache.stats();
    assert_eq!(stats.memory_bytes, 3 * page);
    assert_eq!(stats.disk_bytes, 5 * page);
    // Down: 20 pages in; back up: 3 hits in memory, 2 from disk, 15 fetched again.
    assert_eq!(stats.memory_evictions, 20 + 2 + 15 - 3, "{stats:?}");
    assert_eq!(stats.disk_bytes_served, 2 * 100, "{stats:?}");
    assert_eq!(inner.reads().1, 20 + 20 - 5, "{stats:?}");
    assert_eq!(stats.disk_evictions, (20 + 15) - 5, "{stats:?}");
}

#[tokio::test]
async fn pages_evicted_from_memory_are_read_back_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(Counting::new(MemoryStore::new()));
    let page = 64 * KIB;
    let cache = Cached::from_arc(Arc::clone(&inner))
        .page_size(page)
        .memory_bytes(2 * page)
        .disk(dir.path(), 100 * page)
        .unwrap();
    let path = p("weights");
    let content = noise(7, 6 * page as usize);
    inner.put(&path, content.clone()).await.unwrap();
    assert_same(&read(&cache, &path).await, &content, "cold");
    cache.settle().await;
    assert_eq!(inner.reads(), (1, 0));
    assert_eq!(cache.stats().memory_bytes, 2 * page);
    assert_eq!(cache.stats().disk_bytes, 6 * page);
    assert_eq!(files_in(dir.path()).len(), 6);

    // Only the last two pages are in memory: the rest come from disk, none from the store.
    assert_same(&read(&cache, &path).await, &content, "from disk");
    assert_same(
        &cache.get_range(&path, 10..page + 10).await.unwrap(),
        &content[10..page as usize + 10],
        "a range from disk",
    );
    assert_eq!(inner.reads(), (1, 0));
    let stats = cache.stats();
    assert!(stats.disk_bytes_served >= 4 * page, "{stats:?}");
    assert_eq!(stats.hits, 6 + 2);

    // A page file that vanished is a miss, not an error.
    drop(cache);
    let disk_only = Cached::from_arc(Arc::clone(&inner))
        .page_size(page)
        .memory_bytes(0)
        .disk(dir.path(), 100 * page)
        .unwrap();
    assert_same(&read(&disk_only, &path).await, &content, "disk only, cold");
    disk_only.settle().await;
    assert_eq!(inner.reads(), (2, 0));
    for (name, _) in files_in(dir.path()) {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    assert_same(&read(&disk_only, &path).await, &content, "files gone");
    assert_eq!(inner.reads(), (2, 6), "each vanished page fetched again");
}

#[tokio::test]
async fn writes_and_deletes_through_the_cache_drop_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let inner = MemoryStore::new();
    let cache = Cached::new(inner.clone())
        .page_size(4 * KIB)
        .disk(dir.path(), 1 << 20)
        .unwrap();
    let (a, b) = (p("a"), p("b"));
    cache.put(&a, noise(8, 10_000)).await.unwrap();
    read(&cache, &a).await;
    cache.settle().await;
    assert_eq!(cache.stats().memory_bytes, 10_000);
    assert_eq!(cache.stats().disk_bytes, 10_000);

    cache.put(&a, Bytes::from_static(b"short")).await.unwrap();
    cache.settle().await;
    assert_eq!(cache.stats().memory_bytes, 0);
    assert_eq!(cache.stats().disk_bytes, 0);
    assert!(files_in(dir.path()).is_empty());
    assert_eq!(read(&cache, &a).await, "short");

    cache.rename(&a, &b).await.unwrap();
    assert!(cache.get(&a).await.unwrap_err().is_not_found());
    assert_eq!(read(&cache, &b).await, "short");
    cache
        .append(&b, Bytes::from_static(b"+more"))
        .await
        .unwrap();
    assert_eq!(read(&cache, &b).await, "short+more");
    assert_eq!(cache.get_range(&b, 5..10).await.unwrap(), "+more");
    cache.copy(&b, &a).await.unwrap();
    assert_eq!(read(&cache, &a).await, "short+more");
    cache.delete(&b).await.unwrap();
    assert!(cache.get(&b).await.unwrap_err().is_not_found());
    assert!(inner.get(&b).await.unwrap_err().is_not_found());
    assert!(cache.stats().invalidations >= 3);
}

#[tokio::test]
async fn objects_without_versions_are_read_through_uncached() {
    let mut counting = Counting::new(MemoryStore::new());
    counting.anonymous = true;
    let inner = Arc::new(counting);
    let cache = Cached::from_arc(Arc::clone(&inner));
    let path = p("x");
    inner.put(&path, Bytes::from_static(b"one")).await.unwrap();
    assert_eq!(read(&cache, &path).await, "one");
    inner.put(&path, Bytes::from_static(b"two")).await.unwrap();
    assert_eq!(read(&cache, &path).await, "two");
    assert_eq!(cache.get_range(&path, 1..3).await.unwrap(), "wo");
    assert_eq!(inner.reads(), (2, 1));
    assert_eq!(cache.stats().memory_bytes, 0);
}

#[tokio::test]
async fn the_disk_tier_owns_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A directory with someone's files is refused, and left alone.
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    match Cached::new(MemoryStore::new()).disk(dir.path(), 1 << 20) {
        Err(Error::PreconditionFailed { message, .. }) => {
            assert!(message.contains("not a page cache"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );

    let pages = dir.path().join("pages");
    let inner = MemoryStore::new();
    let first = Cached::new(inner.clone())
        .page_size(KIB)
        .disk(&pages, 1 << 20)
        .unwrap();
    assert!(pages.join(DISK_MARKER).is_file());
    // One open cache per directory.
    match Cached::new(inner.clone()).disk(&pages, 1 << 20) {
        Err(Error::PreconditionFailed { message, .. }) => {
            assert!(message.contains("another open cache"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let path = p("x");
    inner.put(&path, noise(9, 5000)).await.unwrap();
    read(&first, &path).await;
    first.settle().await;
    assert_eq!(files_in(&pages).len(), 5);
    drop(first);

    // The next cache starts empty: pages of an earlier process are never trusted.
    let second = Cached::new(inner.clone())
        .page_size(KIB)
        .disk(&pages, 1 << 20)
        .unwrap();
    assert!(files_in(&pages).is_empty());
    assert_eq!(
        second.disk_dir(),
        Some(pages.canonicalize().unwrap().as_path())
    );
}

#[tokio::test]
async fn names_and_urls_are_the_inner_stores() {
    let dir = tempfile::tempdir().unwrap();
    let inner = LocalStore::new(dir.path()).unwrap();
    let url = inner.url();
    let cache = Cached::new(inner);
    assert_eq!(cache.name(), "local");
    assert_eq!(cache.url(), url);
    let described = format!("{cache:?}");
    assert!(described.contains("page_size: 4194304"), "{described}");
    let streamed = cache
        .put_stream(
            &p("s"),
            futures::stream::iter([Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))])
                .boxed(),
        )
        .await
        .unwrap();
    assert_eq!(streamed.size, 3);
    assert_eq!(read(&cache, &p("s")).await, "abc");
}
