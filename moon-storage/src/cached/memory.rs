//! The memory tier: pages as shared byte buffers, within a byte budget.

use std::sync::Mutex;

use bytes::Bytes;

use crate::path::StorePath;

use super::index::PageIndex;
use super::stats::Counters;
use super::version::Version;

/// Pages held in process memory. A reader gets a cheap handle on the page's buffer, so a page
/// evicted while someone still reads it stays alive until that reader is done with it.
///
/// An object read whole is held as one buffer, so that reading it whole again hands out that
/// buffer without a copy; its pages are evicted together.
#[derive(Debug)]
pub(crate) struct MemoryTier {
    index: Mutex<PageIndex<Bytes>>,
    page_size: u64,
}

impl MemoryTier {
    pub fn new(budget: u64, page_size: u64) -> Self {
        MemoryTier {
            index: Mutex::new(PageIndex::new(budget)),
            page_size,
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

    /// Page `index`, cut from the buffer that holds it.
    pub fn get(&self, path: &StorePath, version: &Version, index: u64) -> Option<Bytes> {
        let held = self.index().get(path, version, index)?;
        let start = ((index - held.first) * self.page_size) as usize;
        let end = (start + self.page_size as usize).min(held.payload.len());
        Some(held.payload.slice(start..end))
    }

    /// The whole object of `pages` pages, when one buffer holds it.
    pub fn whole(&self, path: &StorePath, version: &Version, pages: u64) -> Option<Bytes> {
        let held = self.index().get(path, version, 0)?;
        (held.pages == pages).then_some(held.payload)
    }

    pub fn contains(&self, path: &StorePath, version: &Version, index: u64) -> bool {
        self.index().contains(path, version, index)
    }

    /// Holds one page.
    pub fn insert(
        &self,
        path: &StorePath,
        version: &Version,
        index: u64,
        page: Bytes,
        counters: &Counters,
    ) {
        self.insert_run(path, version, index, 1, page, counters);
    }

    /// Holds `pages` consecutive pages from `first` in one buffer.
    pub fn insert_run(
        &self,
        path: &StorePath,
        version: &Version,
        first: u64,
        pages: u64,
        bytes: Bytes,
        counters: &Counters,
    ) {
        let len = bytes.len() as u64;
        let dropped = self.index().insert(path, version, first, pages, bytes, len);
        // The dropped buffers are freed here, outside the lock.
        Counters::add(&counters.memory_evictions, dropped.evicted.len() as u64);
        Counters::add(&counters.invalidations, dropped.invalidated.len() as u64);
    }

    /// Drops every page of `path`; returns how many buffers there were.
    pub fn remove_path(&self, path: &StorePath) -> usize {
        let removed = self.index().remove_path(path);
        removed.len()
    }
}
