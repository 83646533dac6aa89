//! The conformance suite, and HDFS-only behaviour, against the real HDFS of the storage test bed
//! (`scripts/storage/up.sh --only hdfs`, whose `env.sh` sets `MOON_TEST_HDFS_URL`):
//! `scripts/test.sh --only storage` runs it. Without that server every test fails, saying how to
//! start one. Each test works in a directory of its own, removed at its end.

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conformance::Profile;
use moon_storage::{Error, HdfsOptions, HdfsStore, Store, StorePath, StoreUrl, open};

const PROFILE: Profile = Profile {
    etag: true,
    modified: true,
    object_and_prefix_may_share_a_name: false,
};

/// The test bed's namenode, `hdfs://127.0.0.1:PORT`.
fn namenode() -> String {
    std::env::var("MOON_TEST_HDFS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "MOON_TEST_HDFS_URL is not set: start the storage test bed \
                 (scripts/storage/up.sh --only hdfs [--dir DIR], then `source DIR/env.sh`) \
                 or run ./scripts/test.sh --only storage"
            )
        })
}

/// A directory no other test or run uses.
fn fresh_root(purpose: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "/moon-tests/{purpose}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a test's directory (and everything in it) when the test ends, pass or fail.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (url, dir) = (namenode(), self.0.clone());
        // Dropped inside the test's runtime, which cannot be blocked on: a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let client = hdfs_native::ClientBuilder::new()
                    .with_url(url)
                    .build()
                    .expect("an HDFS client");
                let _ = client.delete(&dir, true).await;
            });
        })
        .join();
    }
}

fn fixture() -> (Arc<dyn Store>, Cleanup) {
    let root = fresh_root("conformance");
    let store = open(&format!("{}{root}", namenode())).expect("the test bed's HDFS");
    (store, Cleanup(root))
}

fn p(raw: &str) -> StorePath {
    StorePath::parse(raw).unwrap()
}

fn server() -> moon_storage::Server {
    match StoreUrl::parse(&namenode()).expect("MOON_TEST_HDFS_URL is an hdfs:// URL") {
        StoreUrl::Hdfs { server, .. } => server,
        other => panic!("MOON_TEST_HDFS_URL is not an hdfs:// URL: {other:?}"),
    }
}

/// The tests that need the test bed, apart: the rust tier of scripts/test.sh skips this module
/// by its name.
mod on_the_storage_bed {
    use super::*;

    conformance_tests!(fixture(), PROFILE);

    /// The suite again through the read-through cache (both tiers small enough to evict), and
    /// what the cache promises in front of HDFS.
    mod cached {
        use super::*;
        use moon_storage::Cached;
        use tempfile::TempDir;

        fn cache_over(root: &str) -> (Cached<HdfsStore>, TempDir) {
            let inner = HdfsStore::new(server(), root, HdfsOptions::default())
                .expect("the test bed's HDFS");
            let pages = tempfile::tempdir().unwrap();
            let cache = Cached::new(inner)
                .page_size(1 << 20)
                .memory_bytes(8 << 20)
                .disk(pages.path(), 32 << 20)
                .unwrap();
            (cache, pages)
        }

        fn fixture() -> (Arc<dyn Store>, (Cleanup, TempDir)) {
            let root = fresh_root("cached");
            let (cache, pages) = cache_over(&root);
            (Arc::new(cache), (Cleanup(root), pages))
        }

        conformance_tests!(fixture(), PROFILE);

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_file_rewritten_by_another_hdfs_client_is_read_fresh() {
            let root = fresh_root("cached-rewritten");
            let _cleanup = Cleanup(root.clone());
            let (cache, _pages) = cache_over(&root);
            let client = hdfs_native::ClientBuilder::new()
                .with_url(namenode())
                .build()
                .unwrap();
            let file = format!("{root}/shards/0");
            let path = p("shards/0");
            // Same size each time, 3 pages: only the version tells the contents apart.
            for round in 0..3u8 {
                let content = bytes::Bytes::from(vec![round; 3 << 20]);
                let mut writer = client
                    .create(&file, hdfs_native::WriteOptions::default().overwrite(true))
                    .await
                    .unwrap();
                writer.write_bytes(content.clone()).await.unwrap();
                writer.close().await.unwrap();
                let whole = cache.get(&path).await.unwrap().bytes().await.unwrap();
                assert!(whole == content, "round {round}: stale or mixed content");
                let range = cache.get_range(&path, (1 << 20) - 5..(1 << 20) + 5).await;
                assert_eq!(range.unwrap(), vec![round; 10], "round {round}");
            }
            let stats = cache.stats();
            assert_eq!(stats.inner_bytes, 3 * (3 << 20), "{stats:?}");
            assert_eq!(stats.hits, 3 * 2, "{stats:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_is_a_directory_of_the_namenode_and_hides_uploads_in_progress() {
        let root = fresh_root("layout");
        let _cleanup = Cleanup(root.clone());
        let store = open(&format!("{}{root}", namenode())).unwrap();
        store
            .put(
                &p("runs/7/model.bin"),
                bytes::Bytes::from_static(b"weights"),
            )
            .await
            .unwrap();

        let client = hdfs_native::ClientBuilder::new()
            .with_url(namenode())
            .build()
            .unwrap();
        let file = client
            .get_file_info(&format!("{root}/runs/7/model.bin"))
            .await
            .unwrap();
        assert_eq!(file.length, 7);
        assert!(!file.isdir);

        // A file someone else is still writing under the reserved name is not an object.
        let mut writer = client
            .create(
                &format!("{root}/runs/7/.moon-partial-elsewhere"),
                hdfs_native::WriteOptions::default(),
            )
            .await
            .unwrap();
        writer
            .write_bytes(bytes::Bytes::from_static(b"half"))
            .await
            .unwrap();
        let listed: Vec<String> = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.path.to_string())
            .collect();
        assert_eq!(listed, ["runs/7/model.bin"]);
        writer.close().await.unwrap();

        // Deleting the last object of a directory removes the directories it leaves empty, but
        // not one holding someone's upload, nor the store's root.
        store.delete(&p("runs/7/model.bin")).await.unwrap();
        assert!(
            client
                .get_file_info(&format!("{root}/runs/7"))
                .await
                .is_ok()
        );
        client
            .delete(&format!("{root}/runs/7/.moon-partial-elsewhere"), false)
            .await
            .unwrap();
        store.put(&p("a/b/c"), bytes::Bytes::new()).await.unwrap();
        store.delete(&p("a/b/c")).await.unwrap();
        assert!(client.get_file_info(&format!("{root}/a")).await.is_err());
        assert!(client.get_file_info(&root).await.unwrap().isdir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn names_hdfs_refuses_are_invalid_paths() {
        let (store, _cleanup) = fixture();
        match store
            .put(&p("runs/a:b"), bytes::Bytes::from_static(b"x"))
            .await
        {
            Err(Error::InvalidPath { path, reason }) => {
                assert_eq!(path, "runs/a:b");
                assert!(!reason.is_empty());
            }
            other => panic!("a name with ':' was {other:?}"),
        }
        assert!(store.head(&p("runs/a:b")).await.is_err());
    }

    /// A store in a fresh directory below one of the bed's quota directories (made by its
    /// launcher, since setting a quota takes the superuser and a client call this crate lacks).
    fn under_quota(quota_dir: &str) -> (HdfsStore, Cleanup) {
        // Directly below it, so that the name quota counts only the root and the objects.
        let fresh = fresh_root("quota");
        let leaf = fresh.rsplit('/').next().expect("a directory name");
        let root = format!("{quota_dir}/{leaf}");
        let store = HdfsStore::new(server(), &root, HdfsOptions::default()).unwrap();
        (store, Cleanup(root))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_space_quota_is_quota_exceeded_and_leaves_nothing() {
        // 1 MiB: any block, which reserves a whole block size, is over it.
        let (store, _cleanup) = under_quota("/moon-quota/space");
        match store
            .put(&p("big/model.bin"), bytes::Bytes::from(vec![7u8; 4096]))
            .await
        {
            Err(Error::QuotaExceeded { message }) => {
                assert!(message.contains("big/model.bin"), "{message}");
                assert!(message.to_lowercase().contains("quota"), "{message}");
                assert!(!message.contains("\tat "), "a stack trace: {message}");
            }
            other => panic!("a write over the space quota gave {other:?}"),
        }
        assert!(
            store
                .head(&p("big/model.bin"))
                .await
                .unwrap_err()
                .is_not_found()
        );
        let level = store.list_with_delimiter(None).await.unwrap();
        assert!(level.objects.is_empty() && level.common_prefixes.is_empty());
        // Empty objects take no block, so they still fit.
        store.put(&p("empty"), bytes::Bytes::new()).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_name_quota_is_quota_exceeded() {
        // 4 names: the quota directory, the store's root, and two objects.
        let (store, _cleanup) = under_quota("/moon-quota/names");
        store.put(&p("one"), bytes::Bytes::new()).await.unwrap();
        store.put(&p("two"), bytes::Bytes::new()).await.unwrap();
        match store.put(&p("three"), bytes::Bytes::new()).await {
            Err(Error::QuotaExceeded { message }) => {
                assert!(message.contains("three"), "{message}")
            }
            other => panic!("a write over the name quota gave {other:?}"),
        }
        // Replacing an object needs one more name only for a moment: also refused, old kept.
        assert!(matches!(
            store.put(&p("one"), bytes::Bytes::from_static(b"x")).await,
            Err(Error::QuotaExceeded { .. })
        ));
        assert_eq!(store.head(&p("one")).await.unwrap().size, 0);
        store.delete(&p("two")).await.unwrap();
        store.put(&p("three"), bytes::Bytes::new()).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_users_private_directory_is_permission_denied() {
        let root = fresh_root("private");
        let _cleanup = Cleanup(root.clone());
        // The bed's user owns the namenode (a superuser); it makes a directory only it may enter.
        let owner = HdfsStore::new(server(), &root, HdfsOptions::default()).unwrap();
        owner
            .put(&p("secret/weights"), bytes::Bytes::from_static(b"mine"))
            .await
            .unwrap();
        let client = hdfs_native::ClientBuilder::new()
            .with_url(namenode())
            .build()
            .unwrap();
        client
            .set_permission(&format!("{root}/secret"), 0o700)
            .await
            .unwrap();

        let other = HdfsStore::new(
            server(),
            &root,
            HdfsOptions::default().with_user("moon-test-outsider"),
        )
        .unwrap();
        for result in [
            other.head(&p("secret/weights")).await,
            other
                .put(&p("secret/more"), bytes::Bytes::from_static(b"theirs"))
                .await,
        ] {
            match result {
                Err(Error::PermissionDenied { path, message }) => {
                    assert!(path.starts_with("secret/"), "{path}");
                    assert!(message.contains("moon-test-outsider"), "{message}");
                    assert!(!message.contains("\tat "), "a stack trace: {message}");
                }
                other => panic!("the outsider got {other:?}"),
            }
        }
        assert!(matches!(
            other.delete(&p("secret/weights")).await,
            Err(Error::PermissionDenied { .. })
        ));
        assert_eq!(
            owner
                .get(&p("secret/weights"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
            "mine"
        );
    }
}

/// Needs no server: a closed port must fail soon, not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_unavailable_within_seconds() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = open(&format!("hdfs://127.0.0.1:{port}/nowhere")).unwrap();
    let path = p("x");
    let started = Instant::now();
    let (read, write) = tokio::join!(
        store.head(&path),
        store.put(&path, bytes::Bytes::from_static(b"x"))
    );
    for attempt in [read.map(|_| ()), write.map(|_| ())] {
        match attempt {
            Err(Error::Unavailable { backend, message }) => {
                assert_eq!(backend, "hdfs");
                assert!(message.to_lowercase().contains("refused"), "{message}");
            }
            other => panic!("a closed port answered {other:?}"),
        }
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
}
