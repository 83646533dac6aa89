//! The bookkeeping both tiers share: which pages a tier holds, for which version of which
//! object, and which page was used least recently. A tier keeps its pages' bytes (memory) or
//! names their files (disk) in `P`.

use std::collections::{BTreeMap, HashMap};

use crate::path::StorePath;

use super::version::Version;

/// Pages of one tier, kept within `budget` bytes by dropping the least recently used.
///
/// A tier holds pages of one version per object: storing a page of another version drops the
/// pages of the old one, which no validated read can ask for again.
#[derive(Debug)]
pub(crate) struct PageIndex<P> {
    objects: HashMap<StorePath, ObjectPages<P>>,
    /// Use order: the smallest tick is the least recently used page.
    recency: BTreeMap<u64, (StorePath, u64)>,
    next_tick: u64,
    used: u64,
    budget: u64,
}

#[derive(Debug)]
struct ObjectPages<P> {
    version: Version,
    pages: HashMap<u64, Slot<P>>,
}

#[derive(Debug)]
struct Slot<P> {
    payload: P,
    len: u64,
    tick: u64,
}

/// What an insertion dropped, for the tier to release (delete files, count).
#[derive(Debug)]
pub(crate) struct Dropped<P> {
    /// Whether `payload` is now held: not when it is larger than the whole budget, nor when the
    /// page was held already (the earlier payload stays).
    pub stored: bool,
    /// Pages dropped to stay within the budget.
    pub evicted: Vec<P>,
    /// Pages of an older version of the same object.
    pub invalidated: Vec<P>,
}

impl<P: Clone> PageIndex<P> {
    pub fn new(budget: u64) -> Self {
        PageIndex {
            objects: HashMap::new(),
            recency: BTreeMap::new(),
            next_tick: 0,
            used: 0,
            budget,
        }
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    /// The page, marked as just used.
    pub fn get(&mut self, path: &StorePath, version: &Version, index: u64) -> Option<P> {
        let tick = self.next_tick + 1;
        let object = self.objects.get_mut(path)?;
        if object.version != *version {
            return None;
        }
        let slot = object.pages.get_mut(&index)?;
        self.recency.remove(&slot.tick);
        slot.tick = tick;
        let payload = slot.payload.clone();
        self.next_tick = tick;
        self.recency.insert(tick, (path.clone(), index));
        Some(payload)
    }

    /// Whether the page is held, without marking it used.
    pub fn contains(&self, path: &StorePath, version: &Version, index: u64) -> bool {
        self.objects
            .get(path)
            .is_some_and(|o| o.version == *version && o.pages.contains_key(&index))
    }

    /// Holds `payload` as page `index` of `version` of `path`, then drops least recently used
    /// pages until the tier is within its budget again. A page already held is only marked used.
    pub fn insert(
        &mut self,
        path: &StorePath,
        version: &Version,
        index: u64,
        payload: P,
        len: u64,
    ) -> Dropped<P> {
        let mut dropped = Dropped {
            stored: false,
            evicted: Vec::new(),
            invalidated: Vec::new(),
        };
        if len > self.budget {
            return dropped;
        }
        if self
            .objects
            .get(path)
            .is_some_and(|o| o.version != *version)
        {
            dropped.invalidated = self.remove_path(path);
        }
        let tick = self.tick();
        let object = self
            .objects
            .entry(path.clone())
            .or_insert_with(|| ObjectPages {
                version: version.clone(),
                pages: HashMap::new(),
            });
        if let Some(slot) = object.pages.get_mut(&index) {
            self.recency.remove(&slot.tick);
            slot.tick = tick;
            self.recency.insert(tick, (path.clone(), index));
            return dropped;
        }
        object.pages.insert(index, Slot { payload, len, tick });
        self.recency.insert(tick, (path.clone(), index));
        self.used += len;
        dropped.stored = true;
        while self.used > self.budget {
            let Some((_, (victim, page))) = self.recency.pop_first() else {
                break;
            };
            if let Some(payload) = self.take(&victim, page) {
                dropped.evicted.push(payload);
            }
        }
        dropped
    }

    /// Drops one page, if held, whatever its version.
    fn take(&mut self, path: &StorePath, index: u64) -> Option<P> {
        let object = self.objects.get_mut(path)?;
        let slot = object.pages.remove(&index)?;
        self.recency.remove(&slot.tick);
        self.used -= slot.len;
        if object.pages.is_empty() {
            self.objects.remove(path);
        }
        Some(slot.payload)
    }

    /// Drops one page of `version`, if held.
    pub fn remove_page(&mut self, path: &StorePath, version: &Version, index: u64) -> Option<P> {
        if !self.contains(path, version, index) {
            return None;
        }
        self.take(path, index)
    }

    /// Drops every page of `path`.
    pub fn remove_path(&mut self, path: &StorePath) -> Vec<P> {
        let Some(object) = self.objects.remove(path) else {
            return Vec::new();
        };
        object
            .pages
            .into_values()
            .map(|slot| {
                self.recency.remove(&slot.tick);
                self.used -= slot.len;
                slot.payload
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectMeta;

    fn path(raw: &str) -> StorePath {
        StorePath::parse(raw).unwrap()
    }

    fn version(etag: &str) -> Version {
        Version::of(&ObjectMeta {
            path: path("x"),
            size: 100,
            etag: Some(etag.to_string()),
            modified: None,
        })
        .unwrap()
    }

    #[test]
    fn evicts_the_least_recently_used_pages_to_stay_within_budget() {
        let mut index = PageIndex::new(30);
        let (a, v) = (path("a"), version("1"));
        for page in 0..3 {
            assert!(index.insert(&a, &v, page, page, 10).stored);
        }
        assert_eq!(index.used(), 30);
        // Page 0 is used again, so page 1 is now the oldest.
        assert_eq!(index.get(&a, &v, 0), Some(0));
        let dropped = index.insert(&path("b"), &v, 0, 100, 10);
        assert_eq!(dropped.evicted, [1]);
        assert_eq!(index.used(), 30);
        assert!(!index.contains(&a, &v, 1));
        assert!(index.contains(&a, &v, 0) && index.contains(&a, &v, 2));

        // A page needing more room drops several; one larger than the budget is refused.
        let dropped = index.insert(&path("c"), &v, 0, 200, 25);
        assert_eq!(dropped.evicted, [2, 0, 100]);
        assert_eq!(index.used(), 25);
        let refused = index.insert(&path("d"), &v, 0, 300, 31);
        assert!(!refused.stored && refused.evicted.is_empty());
        assert_eq!(index.used(), 25);
    }

    #[test]
    fn a_new_version_drops_the_old_ones_pages() {
        let mut index = PageIndex::new(100);
        let a = path("a");
        index.insert(&a, &version("1"), 0, 10, 10);
        index.insert(&a, &version("1"), 1, 11, 10);
        assert_eq!(index.get(&a, &version("2"), 0), None);
        let dropped = index.insert(&a, &version("2"), 0, 20, 10);
        let mut invalidated = dropped.invalidated;
        invalidated.sort();
        assert_eq!(invalidated, [10, 11]);
        assert_eq!(index.used(), 10);
        assert_eq!(index.get(&a, &version("1"), 1), None);
        assert_eq!(index.get(&a, &version("2"), 0), Some(20));
    }

    #[test]
    fn removing_a_path_frees_its_bytes() {
        let mut index = PageIndex::new(100);
        let v = version("1");
        index.insert(&path("a"), &v, 0, 1, 40);
        index.insert(&path("a"), &v, 1, 2, 40);
        index.insert(&path("b"), &v, 0, 3, 10);
        let mut removed = index.remove_path(&path("a"));
        removed.sort();
        assert_eq!(removed, [1, 2]);
        assert_eq!(index.used(), 10);
        assert_eq!(index.remove_page(&path("b"), &version("2"), 0), None);
        assert_eq!(index.remove_page(&path("b"), &v, 0), Some(3));
        assert_eq!(index.used(), 0);
        // Inserting again after all that evicts nothing.
        assert!(index.insert(&path("a"), &v, 0, 4, 100).evicted.is_empty());
    }
}
