//! Which version of an object a cached page belongs to, and how recently the inner store
//! confirmed the version of a path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::path::StorePath;
use crate::store::ObjectMeta;

/// What tells one version of an object from another. Cached pages are keyed by it, so a page of
/// one version can never be served for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Version {
    etag: Option<String>,
    modified: Option<SystemTime>,
    size: u64,
}

impl Version {
    /// The version `meta` describes, or `None` when the backend reports neither an etag nor a
    /// modification time: nothing then tells two versions of one size apart, and such objects
    /// are read straight from the inner store.
    pub fn of(meta: &ObjectMeta) -> Option<Version> {
        if meta.etag.is_none() && meta.modified.is_none() {
            return None;
        }
        Some(Version {
            etag: meta.etag.clone(),
            modified: meta.modified,
            size: meta.size,
        })
    }
}

/// Beyond this many remembered paths, those outside the window are forgotten.
const REMEMBERED_PATHS: usize = 65_536;

/// The metadata the inner store last reported per path, for readers that accept answers up to
/// `window` old (see [`Cached::max_staleness`](super::Cached::max_staleness)).
#[derive(Debug)]
pub(crate) struct Freshness {
    window: Option<Duration>,
    seen: Mutex<HashMap<StorePath, (ObjectMeta, Instant)>>,
    /// Counts writes through the cache. An answer is remembered only if no write began while it
    /// was asked for, so a slow `head` can never bring back a version a write replaced.
    writes: AtomicU64,
}

impl Freshness {
    pub fn new(window: Option<Duration>) -> Self {
        Freshness {
            window: window.filter(|w| !w.is_zero()),
            seen: Mutex::new(HashMap::new()),
            writes: AtomicU64::new(0),
        }
    }

    pub fn window(&self) -> Option<Duration> {
        self.window
    }

    /// The metadata of `path` confirmed within the window, if any.
    pub fn recent(&self, path: &StorePath) -> Option<ObjectMeta> {
        let window = self.window?;
        let seen = self.seen.lock().expect("freshness lock");
        let (meta, at) = seen.get(path)?;
        (at.elapsed() < window).then(|| meta.clone())
    }

    /// A mark to pass to [`remember`](Self::remember) with the answer to a request sent after it.
    pub fn mark(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Remembers what the inner store answered for `meta.path`, asked at `mark`.
    pub fn remember(&self, meta: &ObjectMeta, mark: u64, asked_at: Instant) {
        if self.window.is_none() {
            return;
        }
        let mut seen = self.seen.lock().expect("freshness lock");
        if self.writes.load(Ordering::SeqCst) != mark {
            return;
        }
        if seen.len() >= REMEMBERED_PATHS {
            let window = self.window.unwrap_or_default();
            seen.retain(|_, (_, at)| at.elapsed() < window);
            if seen.len() >= REMEMBERED_PATHS {
                seen.clear();
            }
        }
        seen.insert(meta.path.clone(), (meta.clone(), asked_at));
    }

    /// Forgets what was remembered of `path`.
    pub fn expire(&self, path: &StorePath) {
        if self.window.is_some() {
            self.seen.lock().expect("freshness lock").remove(path);
        }
    }

    /// Forgets `path`, and keeps answers to requests already in flight from being remembered.
    pub fn forget(&self, path: &StorePath) {
        let mut seen = self.seen.lock().expect("freshness lock");
        self.writes.fetch_add(1, Ordering::SeqCst);
        seen.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(etag: Option<&str>, modified: Option<SystemTime>, size: u64) -> ObjectMeta {
        ObjectMeta {
            path: StorePath::parse("a").unwrap(),
            size,
            etag: etag.map(str::to_string),
            modified,
        }
    }

    #[test]
    fn versions_differ_by_etag_time_or_size_and_need_one_of_the_first_two() {
        let now = SystemTime::now();
        let v = Version::of(&meta(Some("1"), Some(now), 5)).unwrap();
        assert_eq!(v, Version::of(&meta(Some("1"), Some(now), 5)).unwrap());
        assert_ne!(v, Version::of(&meta(Some("2"), Some(now), 5)).unwrap());
        assert_ne!(v, Version::of(&meta(Some("1"), Some(now), 6)).unwrap());
        assert_ne!(
            v,
            Version::of(&meta(Some("1"), Some(now + Duration::from_secs(1)), 5)).unwrap()
        );
        assert!(Version::of(&meta(None, Some(now), 5)).is_some());
        assert!(Version::of(&meta(None, None, 5)).is_none());
    }

    #[test]
    fn answers_are_remembered_within_the_window_unless_a_write_intervened() {
        let fresh = Freshness::new(Some(Duration::from_secs(60)));
        let m = meta(Some("1"), None, 1);
        let mark = fresh.mark();
        fresh.remember(&m, mark, Instant::now());
        assert_eq!(fresh.recent(&m.path), Some(m.clone()));

        // A write between the request and its answer: the answer may be older than the write.
        let mark = fresh.mark();
        fresh.forget(&m.path);
        fresh.remember(&m, mark, Instant::now());
        assert_eq!(fresh.recent(&m.path), None);

        // Outside the window.
        if let Some(long_ago) = Instant::now().checked_sub(Duration::from_secs(61)) {
            let mark = fresh.mark();
            fresh.remember(&m, mark, long_ago);
            assert_eq!(fresh.recent(&m.path), None);
        }
        let mark = fresh.mark();
        fresh.remember(&m, mark, Instant::now());
        fresh.expire(&m.path);
        assert_eq!(fresh.recent(&m.path), None);

        // Without a window nothing is remembered.
        let never = Freshness::new(None);
        never.remember(&m, never.mark(), Instant::now());
        assert_eq!(never.recent(&m.path), None);
    }
}
