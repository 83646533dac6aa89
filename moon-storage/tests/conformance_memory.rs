//! The conformance suite on the in-memory store.

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use conformance::Profile;
use moon_storage::{MemoryStore, Store};

const PROFILE: Profile = Profile {
    etag: true,
    modified: true,
    object_and_prefix_may_share_a_name: true,
};

/// A store of its own for each test, named so that `open(store.url())` finds it again.
fn fixture() -> (Arc<dyn Store>, ()) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("conformance-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    (Arc::new(MemoryStore::named(&name)), ())
}

conformance_tests!(fixture(), PROFILE);

/// The suite again through a read-through cache: small budgets in both tiers, so that the
/// larger tests evict and read back from disk.
mod cached {
    use super::*;
    use moon_storage::Cached;
    use tempfile::TempDir;

    fn fixture() -> (Arc<dyn Store>, TempDir) {
        let (inner, ()) = super::fixture();
        let pages = tempfile::tempdir().unwrap();
        let cache = Cached::from_arc(inner)
            .page_size(1 << 20)
            .memory_bytes(8 << 20)
            .disk(pages.path(), 32 << 20)
            .unwrap();
        (Arc::new(cache), pages)
    }

    conformance_tests!(fixture(), PROFILE);
}
