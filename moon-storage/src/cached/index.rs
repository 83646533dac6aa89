//! The bookkeeping both tiers share: which pages a tier holds, for which version of which
//! object, and which were used least recently. A tier holds runs of consecutive pages (the disk
//! tier one page per run, the memory tier also whole objects read whole), each with its bytes
//! (memory) or the name of its file (disk) in `P`.

use std::collections::{BTreeMap, HashMap};

use crate::path::StorePath;

use super::version::Version;

/// Runs of pages of one tier, kept within `budget` bytes by dropping the least recently used.
///
/// A tier holds pages of one version per object: storing a page of another version drops the
/// pages of the old one, which no validated read can ask for again.
#[derive(Debug)]
pub(crate) struct PageIndex<P> {
    objects: HashMap<StorePath, ObjectPages<P>>,
    /// Use order: the smallest tick is the least recently used run, named by its first page.
    recency: BTreeMap<u64, (StorePath, u64)>,
    next_tick: u64,
    used: u64,
    budget: u64,
}

#[derive(Debug)]
struct ObjectPages<P> {
    version: Version,
    /// Runs by their first page; runs never overlap.
    runs: BTreeMap<u64, Run<P>>,
}

#[derive(Debug)]
struct Run<P> {
    payload: P,
    pages: u64,
    len: u64,
    tick: u64,
}

/// A run found for a page: its payload, and the pages it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held<P> {
    pub payload: P,
    pub first: u64,
    pub pages: u64,
}

/// What an insertion dropped, for the tier to release (delete files, count).
#[derive(Debug)]
pub(crate) struct Dropped<P> {
    /// Whether `payload` is now held: not when it is larger than the whole budget, nor when its
    /// pages were held already (the earlier run stays).
    pub stored: bool,
    /// Runs dropped to stay within the budget.
    pub evicted: Vec<P>,
    /// Runs of an older version of the same object.
    pub invalidated: Vec<P>,
    /// Runs of the same version that the new run covers.
    pub replaced: Vec<P>,
}

impl<P> ObjectPages<P> {
    /// The first page of the run holding page `index`.
    fn run_of(&self, index: u64) -> Option<u64> {
        let (&first, run) = self.runs.range(..=index).next_back()?;
        (index < first + run.pages).then_some(first)
    }
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

    /// The run holding page `index`, marked as just used.
    pub fn get(&mut self, path: &StorePath, version: &Version, index: u64) -> Option<Held<P>> {
        let object = self.objects.get_mut(path)?;
        if object.version != *version {
            return None;
        }
        let first = object.run_of(index)?;
        let run = object.runs.get_mut(&first)?;
        self.next_tick += 1;
        self.recency.remove(&run.tick);
        run.tick = self.next_tick;
        self.recency.insert(run.tick, (path.clone(), first));
        Some(Held {
            payload: run.payload.clone(),
            first,
            pages: run.pages,
        })
    }

    /// Whether page `index` is held, without marking it used.
    pub fn contains(&self, path: &StorePath, version: &Version, index: u64) -> bool {
        self.objects
            .get(path)
            .is_some_and(|o| o.version == *version && o.run_of(index).is_some())
    }

    /// Holds `payload`, `len` bytes, as the `pages` pages from `first` of `version` of `path`,
    /// then drops least recently used runs until the tier is within its budget again. Pages one
    /// run holds already are only marked used; shorter runs the new one covers are dropped.
    pub fn insert(
        &mut self,
        path: &StorePath,
        version: &Version,
        first: u64,
        pages: u64,
        payload: P,
        len: u64,
    ) -> Dropped<P> {
        let mut dropped = Dropped {
            stored: false,
            evicted: Vec::new(),
            invalidated: Vec::new(),
            replaced: Vec::new(),
        };
        if len > self.budget || pages == 0 {
            return dropped;
        }
        if self
            .objects
            .get(path)
            .is_some_and(|o| o.version != *version)
        {
            dropped.invalidated = self.remove_path(path);
        }
        let last = first + pages - 1;
        let covered = self.objects.get(path).is_some_and(|object| {
            let run = object.run_of(first);
            run.is_some() && object.run_of(last) == run
        });
        if covered {
            self.get(path, version, first);
            return dropped;
        }
        let overlapping: Vec<u64> = self.objects.get(path).map_or_else(Vec::new, |object| {
            let before = object.run_of(first).filter(|&start| start < first);
            before
                .into_iter()
                .chain(object.runs.range(first..=last).map(|(&start, _)| start))
                .collect()
        });
        for start in overlapping {
            if let Some(payload) = self.take(path, start) {
                dropped.replaced.push(payload);
            }
        }
        self.next_tick += 1;
        let tick = self.next_tick;
        self.objects
            .entry(path.clone())
            .or_insert_with(|| ObjectPages {
                version: version.clone(),
                runs: BTreeMap::new(),
            })
            .runs
            .insert(
                first,
                Run {
                    payload,
                    pages,
                    len,
                    tick,
                },
            );
        self.recency.insert(tick, (path.clone(), first));
        self.used += len;
        dropped.stored = true;
        while self.used > self.budget {
            let Some((_, (victim, start))) = self.recency.pop_first() else {
                break;
            };
            if let Some(payload) = self.take(&victim, start) {
                dropped.evicted.push(payload);
            }
        }
        dropped
    }

    /// Drops the run starting at page `first`, whatever its version.
    fn take(&mut self, path: &StorePath, first: u64) -> Option<P> {
        let object = self.objects.get_mut(path)?;
        let run = object.runs.remove(&first)?;
        self.recency.remove(&run.tick);
        self.used -= run.len;
        if object.runs.is_empty() {
            self.objects.remove(path);
        }
        Some(run.payload)
    }

    /// Drops the run holding page `index` of `version`, if held.
    pub fn remove_page(&mut self, path: &StorePath, version: &Version, index: u64) -> Option<P> {
        let object = self.objects.get(path)?;
        if object.version != *version {
            return None;
        }
        let first = object.run_of(index)?;
        self.take(path, first)
    }

    /// Drops every run of `path`.
    pub fn remove_path(&mut self, path: &StorePath) -> Vec<P> {
        let Some(object) = self.objects.remove(path) else {
            return Vec::new();
        };
        object
            .runs
            .into_values()
            .map(|run| {
                self.recency.remove(&run.tick);
                self.used -= run.len;
                run.payload
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
            assert!(index.insert(&a, &v, page, 1, page, 10).stored);
        }
        assert_eq!(index.used(), 30);
        // Page 0 is used again, so page 1 is now the oldest.
        assert_eq!(index.get(&a, &v, 0).map(|h| h.payload), Some(0));
        let dropped = index.insert(&path("b"), &v, 0, 1, 100, 10);
        assert_eq!(dropped.evicted, [1]);
        assert_eq!(index.used(), 30);
        assert!(!index.contains(&a, &v, 1));
        assert!(index.contains(&a, &v, 0) && index.contains(&a, &v, 2));

        // A page needing more room drops several; one larger than the budget is refused.
        let dropped = index.insert(&path("c"), &v, 0, 1, 200, 25);
        assert_eq!(dropped.evicted, [2, 0, 100]);
        assert_eq!(index.used(), 25);
        let refused = index.insert(&path("d"), &v, 0, 1, 300, 31);
        assert!(!refused.stored && refused.evicted.is_empty());
        assert_eq!(index.used(), 25);
    }

    #[test]
    fn a_new_version_drops_the_old_ones_pages() {
        let mut index = PageIndex::new(100);
        let a = path("a");
        index.insert(&a, &version("1"), 0, 1, 10, 10);
        index.insert(&a, &version("1"), 1, 1, 11, 10);
        assert_eq!(index.get(&a, &version("2"), 0).map(|h| h.payload), None);
        let dropped = index.insert(&a, &version("2"), 0, 1, 20, 10);
        let mut invalidated = dropped.invalidated;
        invalidated.sort();
        assert_eq!(invalidated, [10, 11]);
        assert_eq!(index.used(), 10);
        assert_eq!(index.get(&a, &version("1"), 1).map(|h| h.payload), None);
        assert_eq!(index.get(&a, &version("2"), 0).map(|h| h.payload), Some(20));
    }

    #[test]
    fn removing_a_path_frees_its_bytes() {
        let mut index = PageIndex::new(100);
        let v = version("1");
        index.insert(&path("a"), &v, 0, 1, 1, 40);
        index.insert(&path("a"), &v, 1, 1, 2, 40);
        index.insert(&path("b"), &v, 0, 1, 3, 10);
        let mut removed = index.remove_path(&path("a"));
        removed.sort();
        assert_eq!(removed, [1, 2]);
        assert_eq!(index.used(), 10);
        assert_eq!(index.remove_page(&path("b"), &version("2"), 0), None);
        assert_eq!(index.remove_page(&path("b"), &v, 0), Some(3));
        assert_eq!(index.used(), 0);
        // Inserting again after all that evicts nothing.
        assert!(
            index
                .insert(&path("a"), &v, 0, 1, 4, 100)
                .evicted
                .is_empty()
        );
    }

    #[test]
    fn a_run_of_pages_answers_for_each_of_them_and_replaces_the_single_pages() {
        let mut index = PageIndex::new(100);
        let (a, v) = (path("a"), version("1"));
        index.insert(&a, &v, 1, 1, 1, 10);
        index.insert(&a, &v, 3, 1, 3, 10);
        index.insert(&a, &v, 5, 1, 5, 10);
        // Pages 0 to 3 in one run: the single pages 1 and 3 go, page 5 stays.
        let dropped = index.insert(&a, &v, 0, 4, 40, 40);
        assert!(dropped.stored);
        assert_eq!(dropped.replaced, [1, 3]);
        assert_eq!(index.used(), 50);
        for page in 0..4 {
            let held = index.get(&a, &v, page).unwrap();
            assert_eq!((held.payload, held.first, held.pages), (40, 0, 4));
        }
        assert!(!index.contains(&a, &v, 4));
        assert_eq!(index.get(&a, &v, 5).unwrap().payload, 5);
        // A page the run holds is not stored again.
        let again = index.insert(&a, &v, 2, 1, 2, 10);
        assert!(!again.stored && again.replaced.is_empty());
        assert_eq!(index.used(), 50);
        // Evicted and removed as one.
        assert_eq!(index.remove_page(&a, &v, 3), Some(40));
        assert_eq!(index.used(), 10);
        assert!(!index.contains(&a, &v, 0));
    }
}
