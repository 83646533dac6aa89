//! The memory tier: pages as shared byte buffers, within a byte budget.

use std::sync::Mutex;

use bytes::Bytes;

use crate::path::StorePath;

use super::index::PageIndex;
use super::stats::Counters;
use super::version::Version;

/// Pages held in process memory. A reader gets a cheap handle on the page's buffer, so a page
/// evicted while someone still reads it stays alive until that reader is done with it.
#[derive(Debug)]
pub(crate) struct MemoryTier {
    index: Mutex<PageIndex<Bytes>>,
}

impl MemoryTier {
    pub fn new(budget: u64) -> Self {
        MemoryTier {
            index: Mutex::new(PageIndex::new(budget)),
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, PageIndex<Bytes>> {
        self.index.lock().expect("memory tier lock")
    }

    pub fn budget(&self) -> u64 {
        self.index().budget()
    }

    pub fn used(&self) -> u64 {
        self.index().used()
    }

    pub fn get(&self, path: &StorePath, version: &Version, index: u64) -> Option<Bytes> {
        self.index().get(path, version, index)
    }

    pub fn contains(&self, path: &StorePath, version: &Version, index: u64) -> bool {
        self.index().contains(path, version, index)
    }

    pub fn insert(
        &self,
        path: &StorePath,
        version: &Version,
        index: u64,
        page: Bytes,
        counters: &Counters,
    ) {
        let len = page.len() as u64;
        let dropped = self.index().insert(path, version, index, page, len);
        // The dropped buffers are freed here, outside the lock.
        Counters::add(&counters.memory_evictions, dropped.evicted.len() as u64);
        Counters::add(&counters.invalidations, dropped.invalidated.len() as u64);
    }

    /// Drops every page of `path`; returns how many there were.
    pub fn remove_path(&self, path: &StorePath) -> usize {
        let removed = self.index().remove_path(path);
        removed.len()
    }
}
