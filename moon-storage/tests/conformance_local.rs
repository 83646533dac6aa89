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
