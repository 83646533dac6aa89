//! The conformance suite on the local-directory store.

#[macro_use]
mod conformance;

use std::sync::Arc;

use conformance::Profile;
use moon_storage::{LocalStore, Store};
use tempfile::TempDir;

const PROFILE: Profile = Profile {
    etag: true,
    modified: true,
    object_and_prefix_may_share_a_name: false,
};

fn fixture() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store")).unwrap();
    (Arc::new(store), dir)
}

conformance_tests!(fixture(), PROFILE);

/// The suite again through a read-through cache: small budgets in both tiers, so that the
/// larger tests evict and read back from disk.
mod cached {
    use super::*;
    use moon_storage::Cached;

    fn fixture() -> (Arc<dyn Store>, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStore::new(dir.path().join("store")).unwrap();
        let cache = Cached::new(inner)
            .page_size(1 << 20)
            .memory_bytes(8 << 20)
            .disk(dir.path().join("pages"), 32 << 20)
            .unwrap();
        (Arc::new(cache), dir)
    }

    conformance_tests!(fixture(), PROFILE);
}
