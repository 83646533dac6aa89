//! Reading through the cache: validating the version, finding pages in the tiers, fetching the
//! missing ones once, and streaming a cold object from the inner store while caching it.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use futures::future::{self, BoxFuture};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::path::StorePath;
use crate::store::{ByteStream, GetResult, ObjectMeta, Store, clamp_range};

use super::Core;
use super::flight::{Claim, Joined, Miss, Outcome, PageKey};
use super::stats::Counters;
use super::version::Version;

/// Reads of one object that start over because it was replaced meanwhile, before the cache
/// gives up on it and passes the read straight to the inner store.
const ATTEMPTS: usize = 3;
/// Missing pages of one ranged read fetched at once.
const FETCH_AHEAD: usize = 8;
/// Pages a streamed read from the cache prepares ahead of its reader.
const READ_AHEAD: usize = 4;
/// The largest object held in memory as one buffer when it is read whole (64 MiB, Alluxio's
/// default block size): see [`Cached`](super::Cached).
pub const WHOLE_OBJECT_MAX: u64 = 64 << 20;

/// Where a page came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Memory,
    Disk,
    Inner,
}

impl<S: Store + ?Sized + 'static> Core<S> {
    fn key(&self, path: &StorePath, version: &Version, index: u64) -> PageKey {
        PageKey {
            path: path.clone(),
            version: version.clone(),
            index,
        }
    }

    fn page_count(&self, size: u64) -> u64 {
        size.div_ceil(self.page_size)
    }

    /// The bytes page `index` covers in an object of `size` bytes.
    fn page_range(&self, size: u64, index: u64) -> Range<u64> {
        let start = index * self.page_size;
        start..(start + self.page_size).min(size)
    }

    /// The metadata of `path`: asked of the inner store, or remembered within the window.
    pub(super) async fn current(&self, path: &StorePath) -> Result<ObjectMeta> {
        if let Some(meta) = self.freshness.recent(path) {
            return Ok(meta);
        }
        let (mark, asked_at) = (self.freshness.mark(), Instant::now());
        Counters::add(&self.stats.inner_heads, 1);
        match self.inner.head(path).await {
            Ok(meta) => {
                self.freshness.remember(&meta, mark, asked_at);
                Ok(meta)
            }
            Err(e) => {
                if e.is_not_found() {
                    self.drop_pages(path);
                }
                Err(e)
            }
        }
    }

    fn store_page(&self, key: &PageKey, page: &Bytes) {
        self.memory.insert(
            &key.path,
            &key.version,
            key.index,
            page.clone(),
            &self.stats,
        );
        if let Some(disk) = &self.disk {
            disk.store(
                &key.path,
                &key.version,
                key.index,
                page.clone(),
                &self.stats,
            );
        }
    }

    /// One page: from memory, from disk, or from the inner store through its flight.
    async fn page(self: Arc<Self>, key: PageKey, size: u64) -> Result<(Bytes, Source), Miss> {
        let mut missed = false;
        loop {
            if let Some(page) = self.memory.get(&key.path, &key.version, key.index) {
                Counters::add(&self.stats.hits, 1);
                return Ok((page, Source::Memory));
            }
            if let Some(disk) = &self.disk {
                let len = self.page_range(size, key.index);
                if let Some(page) = disk
                    .read(&key.path, &key.version, key.index, len.end - len.start)
                    .await
                {
                    self.memory.insert(
                        &key.path,
                        &key.version,
                        key.index,
                        page.clone(),
                        &self.stats,
                    );
                    Counters::add(&self.stats.hits, 1);
                    return Ok((page, Source::Disk));
                }
            }
            let joined = self.flights.join(
                &key,
                || self.memory.get(&key.path, &key.version, key.index),
                || Arc::clone(&self).fetch(key.clone(), size).boxed(),
            );
            let flight = match joined {
                Joined::Cached(page) => {
                    Counters::add(&self.stats.hits, 1);
                    return Ok((page, Source::Memory));
                }
                Joined::Flying(flight) => flight,
            };
            if !missed {
                missed = true;
                Counters::add(&self.stats.misses, 1);
            }
            match flight.await {
                Ok(page) => return Ok((page, Source::Inner)),
                // The reader that claimed it went away: look again, and fetch it if need be.
                Err(Miss::Abandoned) => continue,
                Err(other) => return Err(other),
            }
        }
    }

    /// Fetches one page with a ranged read, and keeps it only if the object is still at the
    /// version asked for once the bytes are in: a ranged read does not say which version it
    /// read, and a page of a newer version must never be filed under an older one.
    async fn fetch(self: Arc<Self>, key: PageKey, size: u64) -> Outcome {
        let range = self.page_range(size, key.index);
        let expected = range.end - range.start;
        Counters::add(&self.stats.inner_reads, 1);
        let page = match self.inner.get_range(&key.path, range).await {
            Ok(page) => page,
            Err(Error::NotFound { .. } | Error::InvalidRange { .. }) => {
                return Err(Miss::Replaced);
            }
            Err(e) => return Err(Miss::Failed(e)),
        };
        Counters::add(&self.stats.inner_bytes, page.len() as u64);
        if page.len() as u64 != expected {
            return Err(Miss::Replaced);
        }
        Counters::add(&self.stats.inner_heads, 1);
        match self.inner.head(&key.path).await {
            Ok(meta) if Version::of(&meta).as_ref() == Some(&key.version) => {}
            Ok(_) | Err(Error::NotFound { .. }) => return Err(Miss::Replaced),
            Err(e) => return Err(Miss::Failed(e)),
        }
        self.store_page(&key, &page);
        Ok(page)
    }

    fn count_served(&self, source: Source, bytes: usize) {
        let counter = match source {
            Source::Memory => &self.stats.memory_bytes_served,
            Source::Disk => &self.stats.disk_bytes_served,
            Source::Inner => return,
        };
        Counters::add(counter, bytes as u64);
    }

    pub(super) async fn get_range(
        self: &Arc<Self>,
        path: &StorePath,
        asked: Range<u64>,
    ) -> Result<Bytes> {
        for _ in 0..ATTEMPTS {
            let meta = self.current(path).await?;
            let range = clamp_range(path, asked.clone(), meta.size)?;
            if range.is_empty() {
                return Ok(Bytes::new());
            }
            let Some(version) = Version::of(&meta) else {
                break;
            };
            let first = range.start / self.page_size;
            let last = (range.end - 1) / self.page_size;
            let pages: Result<Vec<_>, Miss> = stream::iter(first..=last)
                .map(|index| Arc::clone(self).page(self.key(path, &version, index), meta.size))
                .buffered(FETCH_AHEAD)
                .try_collect()
                .await;
            match pages {
                Ok(pages) => return Ok(self.assemble(pages, first, range)),
                Err(Miss::Replaced | Miss::Abandoned) => self.freshness.expire(path),
                Err(Miss::Failed(e)) => return Err(e),
            }
        }
        // No version to key pages by, or an object replaced faster than it can be read: the
        // inner store's own ranged read is whole on its own.
        Counters::add(&self.stats.inner_reads, 1);
        let bytes = self.inner.get_range(path, asked).await?;
        Counters::add(&self.stats.inner_bytes, bytes.len() as u64);
        Ok(bytes)
    }

    /// The bytes of `range` out of consecutive pages, the first of them page `first`.
    fn assemble(&self, pages: Vec<(Bytes, Source)>, first: u64, range: Range<u64>) -> Bytes {
        let base = first * self.page_size;
        let (start, end) = ((range.start - base) as usize, (range.end - base) as usize);
        let page_size = self.page_size as usize;
        if let [(page, source)] = pages.as_slice() {
            self.count_served(*source, end - start);
            return page.slice(start..end);
        }
        let mut out = BytesMut::with_capacity(end - start);
        for (i, (page, source)) in pages.iter().enumerate() {
            let page_start = i * page_size;
            let from = start.saturating_sub(page_start).min(page.len());
            let to = (end - page_start).min(page.len());
            self.count_served(*source, to - from);
            out.extend_from_slice(&page[from..to]);
        }
        out.freeze()
    }

    pub(super) async fn get(self: &Arc<Self>, path: &StorePath) -> Result<GetResult> {
        for _ in 0..ATTEMPTS {
            let meta = self.current(path).await?;
            let Some(version) = Version::of(&meta) else {
                break;
            };
            if meta.size == 0 {
                return Ok(GetResult {
                    meta,
                    stream: stream::empty().boxed(),
                });
            }
            let count = self.page_count(meta.size);
            let cached = |index| {
                self.memory.contains(path, &version, index)
                    || self
                        .disk
                        .as_ref()
                        .is_some_and(|disk| disk.contains(path, &version, index))
            };
            if !(0..count).any(&cached) {
                let keys = (0..count).map(|index| self.key(path, &version, index));
                let claims = self.flights.claim(keys, |key| cached(key.index));
                if !claims.is_empty() {
                    return self
                        .stream_from_inner(path, meta, version, claims.into())
                        .await;
                }
            }
            match self.stream_from_cache(path, meta, version).await {
                Ok(result) => return Ok(result),
                Err(Miss::Replaced | Miss::Abandoned) => self.freshness.expire(path),
                Err(Miss::Failed(e)) => return Err(e),
            }
        }
        Counters::add(&self.stats.inner_reads, 1);
        let result = self.inner.get(path).await?;
        Ok(self.counted(result))
    }

    /// The inner store's read, with its bytes counted.
    fn counted(&self, result: GetResult) -> GetResult {
        let stats = Arc::clone(&self.stats);
        let stream = result
            .stream
            .inspect_ok(move |chunk| Counters::add(&stats.inner_bytes, chunk.len() as u64))
            .boxed();
        GetResult {
            meta: result.meta,
            stream,
        }
    }

    /// A cold object: one read of the inner store, whose bytes are filed in the cache as they
    /// pass and handed to the readers waiting on the pages this read claimed.
    async fn stream_from_inner(
        self: &Arc<Self>,
        path: &StorePath,
        meta: ObjectMeta,
        version: Version,
        claims: VecDeque<Claim>,
    ) -> Result<GetResult> {
        Counters::add(&self.stats.inner_reads, 1);
        let result = self.inner.get(path).await?;
        if Version::of(&result.meta).as_ref() != Some(&version) {
            // Replaced since it was validated: the newer version, whole, as the inner store
            // streams it (the waiters on the claims look again when these are dropped).
            drop(claims);
            return Ok(self.counted(result));
        }
        Counters::add(&self.stats.misses, self.page_count(meta.size));
        let whole_limit = WHOLE_OBJECT_MAX.min(self.memory.budget() / 4);
        let mode = if meta.size <= whole_limit {
            let capacity = usize::try_from(meta.size).expect("at most WHOLE_OBJECT_MAX");
            Mode::Whole(BytesMut::with_capacity(capacity))
        } else {
            Mode::Pages {
                next: 0,
                leftover: Bytes::new(),
            }
        };
        let filling = Filling {
            core: Arc::clone(self),
            path: path.clone(),
            version,
            size: meta.size,
            received: 0,
            inner: result.stream,
            mode,
            claims,
        };
        let stream = stream::try_unfold(filling, |mut filling| async move {
            let chunk = filling.next_chunk().await?;
            Ok(chunk.map(|chunk| (chunk, filling)))
        })
        .boxed();
        Ok(GetResult {
            meta: result.meta,
            stream,
        })
    }

    /// An object the cache holds at least in part: page by page, missing pages fetched (or
    /// waited for) as the reader gets to them. What memory holds is taken at once, so that
    /// evictions during the read cannot take it away.
    async fn stream_from_cache(
        self: &Arc<Self>,
        path: &StorePath,
        meta: ObjectMeta,
        version: Version,
    ) -> Result<GetResult, Miss> {
        let count = self.page_count(meta.size);
        if let Some(whole) = self.memory.whole(path, &version, count) {
            Counters::add(&self.stats.hits, count);
            self.count_served(Source::Memory, whole.len());
            return Ok(GetResult {
                meta,
                stream: stream::once(future::ready(Ok(whole))).boxed(),
            });
        }
        let mut held: Vec<Option<Bytes>> = (0..count)
            .map(|index| self.memory.get(path, &version, index))
            .collect();
        let core = Arc::clone(self);
        let (owned_path, size) = (path.clone(), meta.size);
        let mut page_at = move |index: u64| -> BoxFuture<'static, Result<(Bytes, Source), Miss>> {
            match held[index as usize].take() {
                Some(page) => {
                    Counters::add(&core.stats.hits, 1);
                    future::ready(Ok((page, Source::Memory))).boxed()
                }
                None => Arc::clone(&core)
                    .page(core.key(&owned_path, &version, index), size)
                    .boxed(),
            }
        };
        // The first page before answering, so that a replacement found now starts the read
        // over instead of failing it.
        let first = page_at(0).await?;
        let core = Arc::clone(self);
        let replaced_path = path.clone();
        let rest = stream::iter(1..count).map(page_at).buffered(READ_AHEAD);
        let stream =
            stream::once(future::ready(Ok(first)))
                .chain(rest)
                .map(move |page| match page {
                    Ok((page, source)) => {
                        core.count_served(source, page.len());
                        Ok(page)
                    }
                    Err(Miss::Failed(e)) => Err(e),
                    Err(Miss::Replaced | Miss::Abandoned) => Err(Error::Unavailable {
                        backend: core.inner.name().to_string(),
                        message: format!(
                            "'{replaced_path}' was replaced while it was read, and the cache no \
                         longer held the rest of the version being read; read it again"
                        ),
                    }),
                });
        Ok(GetResult {
            meta,
            stream: stream.boxed() as ByteStream,
        })
    }
}

/// A streamed read of a cold object, filing the inner store's bytes in the cache as they pass.
struct Filling<S: Store + ?Sized + 'static> {
    core: Arc<Core<S>>,
    path: StorePath,
    version: Version,
    size: u64,
    received: u64,
    inner: ByteStream,
    mode: Mode,
    /// The pages this read fills for the cache and its waiters, in page order.
    claims: VecDeque<Claim>,
}

/// How a cold object is filed.
enum Mode {
    /// In one buffer, filed once complete: the reader gets the inner store's chunks as they
    /// come, and waiters their pages at the end.
    Whole(BytesMut),
    /// Page by page, each filed (and handed to its waiters) as soon as it is complete; the
    /// reader gets the pages.
    Pages { next: u64, leftover: Bytes },
}

impl<S: Store + ?Sized + 'static> Filling<S> {
    fn ended_early(&self) -> Error {
        Error::Unavailable {
            backend: self.core.inner.name().to_string(),
            message: format!(
                "'{}' ended after {} of its {} bytes",
                self.path, self.received, self.size
            ),
        }
    }

    /// The next chunk from the inner store, counted.
    async fn pull(&mut self) -> Result<Option<Bytes>> {
        let Some(chunk) = self.inner.try_next().await? else {
            return Ok(None);
        };
        Counters::add(&self.core.stats.inner_bytes, chunk.len() as u64);
        self.received += chunk.len() as u64;
        if self.received > self.size {
            return Err(Error::Unavailable {
                backend: self.core.inner.name().to_string(),
                message: format!("'{}' is longer than its {} bytes", self.path, self.size),
            });
        }
        Ok(Some(chunk))
    }

    /// Files page `index` (and hands it to its waiters, if this read claimed it).
    fn file_page(&mut self, index: u64, page: &Bytes) {
        let claimed = self
            .claims
            .front()
            .is_some_and(|claim| claim.key().index == index);
        if claimed {
            let claim = self.claims.pop_front().expect("the front claim");
            self.core.store_page(claim.key(), page);
            claim.fill(page.clone());
        }
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        if matches!(self.mode, Mode::Whole(_)) {
            return self.next_whole_chunk().await;
        }
        self.next_page().await
    }

    async fn next_whole_chunk(&mut self) -> Result<Option<Bytes>> {
        let Some(chunk) = self.pull().await? else {
            if self.received < self.size {
                return Err(self.ended_early());
            }
            return Ok(None);
        };
        if let Mode::Whole(buffer) = &mut self.mode {
            buffer.extend_from_slice(&chunk);
        }
        // Filed with the last byte, not at the end of the stream: a reader that stops once it
        // has every byte never asks for the end.
        if self.received == self.size {
            self.file_whole();
        }
        Ok(Some(chunk))
    }

    /// Files the complete object, and hands its waiters their pages.
    fn file_whole(&mut self) {
        let Mode::Whole(buffer) = std::mem::replace(&mut self.mode, Mode::Whole(BytesMut::new()))
        else {
            return;
        };
        let whole = buffer.freeze();
        let core = Arc::clone(&self.core);
        let pages = core.page_count(self.size);
        core.memory.insert_run(
            &self.path,
            &self.version,
            0,
            pages,
            whole.clone(),
            &core.stats,
        );
        for index in 0..pages {
            let range = core.page_range(self.size, index);
            let page = whole.slice(range.start as usize..range.end as usize);
            if let Some(disk) = &core.disk {
                disk.store(&self.path, &self.version, index, page.clone(), &core.stats);
            }
            let claimed = self
                .claims
                .front()
                .is_some_and(|claim| claim.key().index == index);
            if claimed {
                self.claims.pop_front().expect("the front claim").fill(page);
            }
        }
    }

    async fn next_page(&mut self) -> Result<Option<Bytes>> {
        let Mode::Pages { next, .. } = self.mode else {
            return Ok(None);
        };
        let range = self.core.page_range(self.size, next);
        if range.is_empty() {
            return Ok(None);
        }
        let want = (range.end - range.start) as usize;
        // Always a buffer of its own, so that a cached page never keeps a larger buffer of the
        // inner store's alive behind the memory tier's accounting.
        let mut page = BytesMut::with_capacity(want);
        while page.len() < want {
            let Mode::Pages { leftover, .. } = &mut self.mode else {
                return Ok(None);
            };
            if leftover.is_empty() {
                match self.pull().await? {
                    Some(chunk) => {
                        if let Mode::Pages { leftover, .. } = &mut self.mode {
                            *leftover = chunk;
                        }
                        continue;
                    }
                    None => return Err(self.ended_early()),
                }
            }
            let take = (want - page.len()).min(leftover.len());
            page.extend_from_slice(&leftover.split_to(take));
        }
        let page = page.freeze();
        self.file_page(next, &page);
        if let Mode::Pages { next, .. } = &mut self.mode {
            *next += 1;
        }
        Ok(Some(page))
    }
}
