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
