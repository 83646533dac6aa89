//! File ids assigned ahead of the writes that use them.
//!
//! One `dir/assign?count=N` gives N ids at once: the id it names, `3,01637037d6`, and the next
//! ones, `3,01637037d6_1` .. `3,01637037d6_{N-1}` (the same cookie, the key plus the suffix), all
//! on one volume. A blob write takes a spare id when there is one, so the master is asked once
//! per N writes rather than once per write: half the requests of a write, and the master's
//! share of the work, which is what limits small writes when client and servers share a few
//! cores. Spares are kept per assignment query (collection, replication, TTL).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::fid::Fid;

/// How many ids one assignment asks for.
pub(crate) const ASSIGN_BATCH: u32 = 16;

/// An assigned id and the volume server (`host:port`) to write it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assigned {
    pub(crate) fid: Fid,
    pub(crate) url: String,
}

/// The spare ids of one blob API, shared by its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spares(Arc<Mutex<HashMap<String, Vec<Assigned>>>>);

impl Spares {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Assigned>>> {
        // Entries are whole values, so a panic elsewhere cannot leave the map half-written.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A spare id for the assignment `query`, if one is left.
    pub(crate) fn take(&self, query: &str) -> Option<Assigned> {
        self.lock().get_mut(query).and_then(Vec::pop)
    }

    /// Keeps the ids after `first` of an assignment of `count` ids.
    pub(crate) fn keep_rest(&self, query: &str, first: &Assigned, count: u32) {
        if count <= 1 {
            return;
        }
        let mut spares = self.lock();
        let list = spares.entry(query.to_string()).or_default();
        // Popped from the end: the lowest suffix goes first.
        list.extend((1..count).rev().map(|delta| Assigned {
            fid: first.fid.with_delta(delta),
            url: first.url.clone(),
        }));
    }

    /// Drops the spare ids of `query` on the volume of `stale`, after a write with one of them
    /// failed: the volume filled up, turned read-only or moved since they were assigned.
    pub(crate) fn drop_volume(&self, query: &str, stale: &Assigned) {
        if let Some(list) = self.lock().get_mut(query) {
            list.retain(|a| a.fid.volume() != stale.fid.volume() || a.url != stale.url);
        }
    }

    /// How many spare ids are kept, for every query.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(fid: &str, url: &str) -> Assigned {
        Assigned {
            fid: Fid::parse(fid).unwrap(),
            url: url.to_string(),
        }
    }

    #[test]
    fn an_assignment_of_n_ids_leaves_n_minus_one_spares_in_order() {
        let spares = Spares::default();
        let first = assigned("3,01637037d6", "v1:8080");
        spares.keep_rest("collection=a", &first, 4);
        assert_eq!(spares.len(), 3);
        let taken: Vec<String> = std::iter::from_fn(|| spares.take("collection=a"))
            .map(|a| a.fid.to_string())
            .collect();
        assert_eq!(
            taken,
            ["3,01637037d6_1", "3,01637037d6_2", "3,01637037d6_3"]
        );
        assert_eq!(spares.take("collection=a"), None);
        spares.keep_rest("collection=a", &first, 1);
        assert_eq!(spares.len(), 0);
    }

    #[test]
    fn spares_are_kept_per_query_and_dropped_per_volume() {
        let spares = Spares::default();
        spares.keep_rest("collection=a", &assigned("3,01637037d6", "v1:8080"), 3);
        spares.keep_rest("collection=a", &assigned("4,02637037d6", "v1:8080"), 3);
        spares.keep_rest("collection=b", &assigned("3,03637037d6", "v1:8080"), 3);
        assert_eq!(spares.take("collection=c"), None);
        spares.drop_volume("collection=a", &assigned("3,01637037d6_1", "v1:8080"));
        assert_eq!(spares.len(), 4);
        let left = spares.take("collection=a").unwrap();
        assert_eq!(left.fid.volume(), 4);
        assert_eq!(left.url, "v1:8080");
        assert_eq!(spares.take("collection=b").unwrap().fid.volume(), 3);
    }
}
