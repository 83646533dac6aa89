//! What the cache counts, and the snapshot of it a user reads.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a cache's counters, from [`Cached::stats`](super::Cached::stats).
///
/// Counters only grow, except the two resident sizes. A *page request* is one page that a read
/// needed: a read of three pages makes three requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Page requests served from the memory tier or the disk tier.
    pub hits: u64,
    /// Page requests that waited for the inner store: the reader fetched the page itself or
    /// joined a fetch already in flight (see `inner_reads` for what reached the inner store).
    pub misses: u64,
    /// Reads sent to the inner store (`get` or `get_range`): one per page fetched, one per
    /// streamed `get`, one per read passed through uncached.
    pub inner_reads: u64,
    /// Bytes read from the inner store.
    pub inner_bytes: u64,
    /// `head` requests sent to the inner store, to validate a read or to confirm a fetch.
    pub inner_heads: u64,
    /// Bytes handed to readers from the memory tier.
    pub memory_bytes_served: u64,
    /// Bytes handed to readers from the disk tier.
    pub disk_bytes_served: u64,
    /// Pages dropped from the memory tier to keep it within its budget.
    pub memory_evictions: u64,
    /// Pages dropped from the disk tier to keep it within its budget.
    pub disk_evictions: u64,
    /// Pages dropped because their object was written, deleted or replaced.
    pub invalidations: u64,
    /// Pages the disk tier failed to write (the disk is full, the directory is gone): such
    /// pages stay in memory only.
    pub disk_errors: u64,
    /// Bytes held by the memory tier now.
    pub memory_bytes: u64,
    /// Bytes held by the disk tier now.
    pub disk_bytes: u64,
}

/// The live counters behind [`CacheStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub inner_reads: AtomicU64,
    pub inner_bytes: AtomicU64,
    pub inner_heads: AtomicU64,
    pub memory_bytes_served: AtomicU64,
    pub disk_bytes_served: AtomicU64,
    pub memory_evictions: AtomicU64,
    pub disk_evictions: AtomicU64,
    pub invalidations: AtomicU64,
    pub disk_errors: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self, memory_bytes: u64, disk_bytes: u64) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            inner_reads: get(&self.inner_reads),
            inner_bytes: get(&self.inner_bytes),
            inner_heads: get(&self.inner_heads),
            memory_bytes_served: get(&self.memory_bytes_served),
            disk_bytes_served: get(&self.disk_bytes_served),
            memory_evictions: get(&self.memory_evictions),
            disk_evictions: get(&self.disk_evictions),
            invalidations: get(&self.invalidations),
            disk_errors: get(&self.disk_errors),
            memory_bytes,
            disk_bytes,
        }
    }
}
