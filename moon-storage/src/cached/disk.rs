//! The disk tier: pages as files in a directory the cache owns, within a byte budget.
//!
//! A page file is written under a temporary name and renamed into place, and the tier lists a
//! page only after the rename, so no reader ever opens a partial page. File names are numbers
//! the tier hands out (`0000000000000007.page`), never derived from object paths, so nothing a
//! store holds can make the tier write outside its directory.
//!
//! The tier's index lives in memory only: the directory is emptied when a cache opens it, since
//! pages written by an earlier process cannot be tied to versions of objects the inner store
//! holds now. A marker file in the directory, locked while the cache is open, keeps a second
//! cache (in this process or another) out, and keeps the cache from emptying a directory that
//! holds anything but its own pages.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tokio::sync::{Notify, Semaphore};

use crate::error::{Error, Result};
use crate::path::StorePath;

use super::index::PageIndex;
use super::stats::Counters;
use super::version::Version;

/// The file that marks a directory as a page cache's, and that the open cache holds locked.
pub const MARKER: &str = ".moon-page-cache";
/// Page writes queued at most; beyond them a page stays in memory only, so that a slow disk
/// never slows a read down.
const QUEUED_WRITES: usize = 32;

/// Pages in files below one directory.
#[derive(Debug)]
pub(crate) struct DiskTier {
    dir: PathBuf,
    index: Mutex<PageIndex<u64>>,
    next_file: AtomicU64,
    queue: Arc<Semaphore>,
    pending: Arc<Pending>,
    _lock: Flock<File>,
}

/// Counts background file work, so that [`DiskTier::settle`] can wait for it.
#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Pending {
    fn start(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn finish(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

fn unavailable(dir: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        backend: "page cache".to_string(),
        message: format!("{what} {}: {e}", dir.display()),
    }
}

impl DiskTier {
    /// Opens `dir` (made when missing) as the tier's own, emptied, directory.
    pub fn open(dir: &Path, budget: u64) -> Result<DiskTier> {
        fs::create_dir_all(dir).map_err(|e| unavailable(dir, "cannot create", e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| unavailable(dir, "cannot resolve", e))?;
        let marker = dir.join(MARKER);
        match fs::symlink_metadata(&marker) {
            Ok(md) if md.file_type().is_file() => {}
            Ok(_) => {
                return Err(refused(&dir, &format!("{MARKER} is not a plain file")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut entries =
                    fs::read_dir(&dir).map_err(|e| unavailable(&dir, "cannot list", e))?;
                if entries.next().is_some() {
                    return Err(refused(
                        &dir,
                        "it holds files that are not a page cache's, and the cache empties its \
                         directory: give it an empty directory, or one a cache used before",
                    ));
                }
            }
            Err(e) => return Err(unavailable(&marker, "cannot read", e)),
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&marker)
            .map_err(|e| unavailable(&marker, "cannot open", e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            if errno == Errno::EWOULDBLOCK {
                refused(&dir, "another open cache uses this directory")
            } else {
                unavailable(&marker, "cannot lock", errno)
            }
        })?;
        for entry in fs::read_dir(&dir).map_err(|e| unavailable(&dir, "cannot list", e))? {
            let entry = entry.map_err(|e| unavailable(&dir, "cannot list", e))?;
            if entry.file_name() == MARKER {
                continue;
            }
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let removed = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| unavailable(&path, "cannot remove", e))?;
        }
        Ok(DiskTier {
            dir,
            index: Mutex::new(PageIndex::new(budget)),
            next_file: AtomicU64::new(0),
            queue: Arc::new(Semaphore::new(QUEUED_WRITES)),
            pending: Arc::default(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index(&self) -> std::sync::MutexGuard<'_, PageIndex<u64>> {
        self.index.lock().expect("disk tier lock")
    }

    pub fn budget(&self) -> u64 {
        self.index().budget()
    }

    pub fn used(&self) -> u64 {
        self.index().used()
    }

    fn file(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{number:016x}.page"))
    }

    pub fn contains(&self, path: &StorePath, version: &Version, index: u64) -> bool {
        self.index().contains(path, version, index)
    }

    /// Reads a page of `len` bytes, if the tier holds it.
    pub async fn read(
        self: &Arc<Self>,
        path: &StorePath,
        version: &Version,
        index: u64,
        len: u64,
    ) -> Option<Bytes> {
        let number = self.index().get(path, version, index)?.payload;
        let file = self.file(number);
        let read = tokio::task::spawn_blocking(move || fs::read(file)).await;
        match read {
            Ok(Ok(bytes)) if bytes.len() as u64 == len => Some(Bytes::from(bytes)),
            // Evicted since the lookup (or damaged by someone else): a miss, and forgotten.
            _ => {
                let tier = Arc::clone(self);
                if let Some(number) = self.index().remove_page(path, version, index) {
                    tier.delete_later(vec![number]);
                }
                None
            }
        }
    }

    /// Writes a page in the background, unless it is held already or the queue is full.
    pub fn store(
        self: &Arc<Self>,
        path: &StorePath,
        version: &Version,
        index: u64,
        page: Bytes,
        counters: &Arc<Counters>,
    ) {
        if page.len() as u64 > self.budget() || self.contains(path, version, index) {
            return;
        }
        let Ok(permit) = Arc::clone(&self.queue).try_acquire_owned() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (tier, counters) = (Arc::clone(self), Arc::clone(counters));
        let (path, version) = (path.clone(), version.clone());
        let pending = Arc::clone(&self.pending);
        pending.start();
        runtime.spawn_blocking(move || {
            let number = tier.next_file.fetch_add(1, Ordering::Relaxed);
            match tier.write(number, &page) {
                Ok(()) => {
                    let len = page.len() as u64;
                    let dropped = tier.index().insert(&path, &version, index, 1, number, len);
                    Counters::add(&counters.disk_evictions, dropped.evicted.len() as u64);
                    Counters::add(&counters.invalidations, dropped.invalidated.len() as u64);
                    let mut gone = dropped.evicted;
                    gone.extend(dropped.invalidated);
                    gone.extend(dropped.replaced);
                    if !dropped.stored {
                        gone.push(number);
                    }
                    for number in gone {
                        let _ = fs::remove_file(tier.file(number));
                    }
                }
                Err(_) => Counters::add(&counters.disk_errors, 1),
            }
            drop(permit);
            // The tier (and the lock on its directory) is let go before the work counts as
            // done, so that a cache settled and dropped can be opened again at once.
            drop(tier);
            pending.finish();
        });
    }

    /// Writes the page under a temporary name, then renames it into place.
    fn write(&self, number: u64, page: &[u8]) -> io::Result<()> {
        let partial = self.dir.join(format!("{number:016x}.partial"));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .and_then(|mut file| file.write_all(page))
            .and_then(|()| fs::rename(&partial, self.file(number)));
        if written.is_err() {
            let _ = fs::remove_file(&partial);
        }
        written
    }

    /// Drops every page of `path`; returns how many there were.
    pub fn remove_path(self: &Arc<Self>, path: &StorePath) -> usize {
        let numbers = self.index().remove_path(path);
        let count = numbers.len();
        self.delete_later(numbers);
        count
    }

    fn delete_later(self: &Arc<Self>, numbers: Vec<u64>) {
        if numbers.is_empty() {
            return;
        }
        let tier = Arc::clone(self);
        let delete = move || {
            for number in numbers {
                let _ = fs::remove_file(tier.file(number));
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let pending = Arc::clone(&self.pending);
                pending.start();
                runtime.spawn_blocking(move || {
                    delete();
                    pending.finish();
                });
            }
            Err(_) => delete(),
        }
    }

    /// Waits until the page writes and deletions started so far are done.
    pub async fn settle(&self) {
        loop {
            let idle = self.pending.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.pending.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

fn refused(dir: &Path, why: &str) -> Error {
    Error::PreconditionFailed {
        path: dir.display().to_string(),
        message: format!("not usable as a page cache directory: {why}"),
    }
}
