//! The conformance suite, the blob API and error mapping of the SeaweedFS store.
//!
//! The tests in `on_the_storage_bed` talk to the real SeaweedFS of the storage test bed
//! (`scripts/storage/up.sh`, then `source DIR/env.sh`, which sets `MOON_TEST_SEAWEEDFS_FILER`
//! and `MOON_TEST_SEAWEEDFS_MASTER`); the `storage` tier of `scripts/test.sh` runs them and the
//! `rust` tier skips them by that module's name. Without the bed they fail, saying how to start
//! it. Each test works below a root of its own, removed when it ends, so runs never collide.
//! The error tests at the end need no server.

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conformance::Profile;
use moon_storage::seaweedfs::{SeaweedOptions, SeaweedStore};
use moon_storage::{Error, Server, Store, StorePath, open};

const PROFILE: Profile = Profile {
    etag: true,
    modified: true,
    object_and_prefix_may_share_a_name: false,
};

/// The collection the blob tests write to: one name for every run, since each new collection
/// takes volumes of the bed's small budget.
const COLLECTION: &str = "moon-test-blobs";

/// `host:port` of a bed server from its `http://` URL in the environment.
fn bed_address(variable: &str) -> String {
    let url = std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: start the storage test bed \
             (scripts/storage/up.sh --only seaweedfs --dir DIR, then `source DIR/env.sh`) \
             or run scripts/test.sh --only storage"
        )
    });
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn server(address: &str) -> Server {
    let (host, port) = address.rsplit_once(':').expect("host:port");
    Server {
        host: host.to_string(),
        port: port.parse().expect("a port"),
        userinfo: None,
    }
}

/// A root no other test or run uses.
fn fresh_root() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "/moon-test/{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a test's root from the filer when the test ends, so the bed's volumes do not fill.
struct RemoveRoot {
    filer: String,
    root: String,
}

impl Drop for RemoveRoot {
    fn drop(&mut self) {
        let url = format!(
            "http://{}{}?recursive=true&ignoreRecursiveError=true",
            self.filer, self.root
        );
        // Drop cannot wait on the test's runtime, so a runtime of its own on another thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let _ = reqwest::Client::new()
                    .delete(url)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await;
            });
        })
        .join();
    }
}

fn store_with(collection: Option<&str>) -> (Arc<SeaweedStore>, RemoveRoot) {
    let filer = bed_address("MOON_TEST_SEAWEEDFS_FILER");
    let master = bed_address("MOON_TEST_SEAWEEDFS_MASTER");
    let root = fresh_root();
    let options = SeaweedOptions {
        master: Some(server(&master)),
        collection: collection.map(str::to_string),
        ..SeaweedOptions::default()
    };
    let store = SeaweedStore::new(server(&filer), &root, options).expect("a store");
    (Arc::new(store), RemoveRoot { filer, root })
}

fn fixture() -> (Arc<dyn Store>, RemoveRoot) {
    let (store, guard) = store_with(None);
    (store, guard)
}

/// The collection of volume `id`, from the master's `/vol/status`.
async fn collection_of_volume(id: u32) -> String {
    let master = bed_address("MOON_TEST_SEAWEEDFS_MASTER");
    let status: serde_json::Value = reqwest::get(format!("http://{master}/vol/status"))
        .await
        .unwrap()
        .json_body()
        .await;
    let mut found = Vec::new();
    collect_volumes(&status, &mut found);
    found
        .into_iter()
        .find(|(vid, _)| *vid == u64::from(id))
        .map(|(_, collection)| collection)
        .unwrap_or_else(|| panic!("volume {id} is not in the master's /vol/status: {status}"))
}

fn collect_volumes(value: &serde_json::Value, out: &mut Vec<(u64, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            if let (Some(id), Some(collection)) = (
                map.get("Id").and_then(|v| v.as_u64()),
                map.get("Collection").and_then(|v| v.as_str()),
            ) {
                out.push((id, collection.to_string()));
            }
            map.values().for_each(|v| collect_volumes(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_volumes(v, out)),
        _ => {}
    }
}

trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

/// The tests that need the bed, apart: the rust tier of scripts/test.sh skips this module by
/// its name.
mod on_the_storage_bed {
    use super::*;
    use bytes::Bytes;
    use moon_storage::seaweedfs::{BlobOptions, Fid};

    conformance_tests!(fixture(), PROFILE);

    /// The suite again through the read-through cache (both tiers small enough to evict), and
    /// what the cache promises in front of a filer.
    mod cached {
        use super::*;
        use moon_storage::Cached;
        use tempfile::TempDir;

        fn cache_over_a_fresh_root() -> (Cached<SeaweedStore>, (RemoveRoot, TempDir)) {
            let (inner, guard) = store_with(None);
            let pages = tempfile::tempdir().unwrap();
            let cache = Cached::from_arc(inner)
                .page_size(1 << 20)
                .memory_bytes(8 << 20)
                .disk(pages.path(), 32 << 20)
                .unwrap();
            (cache, (guard, pages))
        }

        fn fixture() -> (Arc<dyn Store>, (RemoveRoot, TempDir)) {
            let (cache, guards) = cache_over_a_fresh_root();
            (Arc::new(cache), guards)
        }

        conformance_tests!(fixture(), PROFILE);

        #[tokio::test]
        async fn a_file_rewritten_through_the_filer_itself_is_read_fresh() {
            let (cache, _guards) = cache_over_a_fresh_root();
            let filer = bed_address("MOON_TEST_SEAWEEDFS_FILER");
            let url = format!("http://{filer}{}/shards/0", cache.inner().root());
            let path = StorePath::parse("shards/0").unwrap();
            let http = reqwest::Client::new();
            for round in 0..3u8 {
                let content = Bytes::from(vec![round; 3 << 20]);
                let written = http.put(&url).body(content.clone()).send().await.unwrap();
                assert!(written.status().is_success(), "{}", written.status());
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

    #[tokio::test]
    async fn blobs_round_trip_and_delete() {
        let (store, _guard) = store_with(Some(COLLECTION));
        let blobs = store.blobs().unwrap();
        assert_eq!(blobs.defaults().collection.as_deref(), Some(COLLECTION));
        for content in [
            Bytes::new(),
            Bytes::from_static(b"x"),
            Bytes::from((0..=255u8).cycle().take(100_000).collect::<Vec<u8>>()),
        ] {
            let fid = blobs
                .put_blob(content.clone(), &BlobOptions::default())
                .await
                .unwrap();
            assert_eq!(Fid::parse(fid.as_str()).unwrap(), fid);
            assert_eq!(blobs.get_blob(&fid).await.unwrap(), content);
            blobs.delete_blob(&fid).await.unwrap();
            assert!(blobs.get_blob(&fid).await.unwrap_err().is_not_found());
        }
    }

    #[tokio::test]
    async fn blobs_go_to_the_collection_asked_for() {
        let (store, _guard) = store_with(Some(COLLECTION));
        let blobs = store.blobs().unwrap();
        let fid = blobs
            .put_blob(Bytes::from_static(b"tenant data"), &BlobOptions::default())
            .await
            .unwrap();
        assert_eq!(collection_of_volume(fid.volume()).await, COLLECTION);
        // An explicit option wins over the store's.
        let default = blobs
            .put_blob(
                Bytes::from_static(b"shared"),
                &BlobOptions {
                    collection: Some(String::new()),
                    ..BlobOptions::default()
                },
            )
            .await;
        // The empty collection is SeaweedFS's default one.
        let default = default.unwrap();
        assert_eq!(collection_of_volume(default.volume()).await, "");
        blobs.delete_blob(&fid).await.unwrap();
        blobs.delete_blob(&default).await.unwrap();
    }

    #[tokio::test]
    async fn filer_writes_go_to_the_stores_collection() {
        let (store, _guard) = store_with(Some(COLLECTION));
        let path = StorePath::parse("tenant/object").unwrap();
        store.put(&path, Bytes::from_static(b"data")).await.unwrap();
        let filer = bed_address("MOON_TEST_SEAWEEDFS_FILER");
        let entry = reqwest::get(format!(
            "http://{filer}{}/tenant/object?metadata=true",
            store.root()
        ))
        .await
        .unwrap()
        .json_body()
        .await;
        let volume = entry["chunks"][0]["fid"]["volume_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no chunk in {entry}"));
        assert_eq!(
            collection_of_volume(u32::try_from(volume).unwrap()).await,
            COLLECTION
        );
    }

    /// The master reserves room in a volume for every file id it hands out until the volume
    /// server reports the write; a burst of small blobs must not make it think the volumes are
    /// full (it did when the assignment did not say how large the blob is: after about 64
    /// blobs per 64 MB volume of the bed, every write failed with "no writable volumes").
    /// Most writes use spare ids of an earlier assignment.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_small_blobs_all_land() {
        use futures::{StreamExt, TryStreamExt};
        let (store, _guard) = store_with(Some(COLLECTION));
        let blobs = store.blobs().unwrap();
        let content = |i: usize| Bytes::from(format!("burst blob {i:04} ").repeat(8));
        let fids: Vec<(usize, Fid)> = futures::stream::iter(0..2000)
            .map(|i| {
                let blobs = blobs.clone();
                async move {
                    let fid = blobs.put_blob(content(i), &BlobOptions::default()).await?;
                    Ok::<_, Error>((i, fid))
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await
            .expect("every blob of the burst is written");
        // Ids come 16 to an assignment (more assignments only while 16 writers start at once).
        assert!(
            blobs.assignments() <= 2000 / 16 + 16,
            "{} assignments for 2000 blobs",
            blobs.assignments()
        );
        for (i, fid) in fids.iter().step_by(97) {
            assert_eq!(blobs.get_blob(fid).await.unwrap(), content(*i));
        }
        futures::stream::iter(fids)
            .map(|(_, fid)| {
                let blobs = blobs.clone();
                async move { blobs.delete_blob(&fid).await }
            })
            .buffer_unordered(16)
            .try_collect::<()>()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn volume_locations_are_cached_and_refreshed_when_stale() {
        let (store, _guard) = store_with(Some(COLLECTION));
        let blobs = store.blobs().unwrap();
        let locations = blobs.locations().clone();
        let fid = blobs
            .put_blob(Bytes::from_static(b"cached"), &BlobOptions::default())
            .await
            .unwrap();
        // The assignment named the volume server: reading needs no lookup.
        blobs.get_blob(&fid).await.unwrap();
        assert_eq!(locations.lookups(), 0);

        locations.forget(fid.volume());
        blobs.get_blob(&fid).await.unwrap();
        blobs.get_blob(&fid).await.unwrap();
        assert_eq!(
            locations.lookups(),
            1,
            "the second read asked the master again"
        );

        // A location that no longer answers (a closed port) is dropped and looked up again.
        let closed = closed_port();
        locations.remember(fid.volume(), vec![format!("127.0.0.1:{closed}")]);
        assert_eq!(blobs.get_blob(&fid).await.unwrap(), "cached");
        assert_eq!(locations.lookups(), 2);
        let now = locations.locate(fid.volume()).await.unwrap();
        assert!(!now.contains(&format!("127.0.0.1:{closed}")), "{now:?}");
        assert_eq!(locations.lookups(), 2);
        blobs.delete_blob(&fid).await.unwrap();
        assert!(blobs.delete_blob(&fid).await.unwrap_err().is_not_found());
    }
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_closed_port_is_unavailable_at_once() {
    let port = closed_port();
    let store = open(&format!(
        "seaweedfs://127.0.0.1:{port}/x?master=127.0.0.1:{port}"
    ))
    .unwrap();
    let path = StorePath::parse("a").unwrap();
    let started = Instant::now();
    for result in [
        store.head(&path).await.map(|_| ()),
        store.put(&path, "x".into()).await.map(|_| ()),
        store.delete(&path).await,
    ] {
        match result {
            Err(Error::Unavailable { backend, message }) => {
                assert_eq!(backend, "seaweedfs");
                assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
                assert!(message.contains("connect"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_within_the_timeout() {
    // Accepts connections and never answers, as a hung server does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let options = SeaweedOptions {
        master: Some(server(&format!("127.0.0.1:{port}"))),
        timeout: Duration::from_millis(500),
        ..SeaweedOptions::default()
    };
    let store = SeaweedStore::new(server(&format!("127.0.0.1:{port}")), "/x", options).unwrap();
    let path = StorePath::parse("a").unwrap();
    let started = Instant::now();
    match store.get(&path).await {
        Err(Error::Unavailable { message, .. }) => {
            assert!(message.contains("did not answer"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match store
        .blobs()
        .unwrap()
        .put_blob("x".into(), &Default::default())
        .await
    {
        Err(Error::Unavailable { message, .. }) => {
            assert!(message.contains("master"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

#[tokio::test]
async fn credentials_never_reach_urls_or_errors() {
    let port = closed_port();
    let store = open(&format!("seaweedfs://alice:s3cret@127.0.0.1:{port}/data")).unwrap();
    assert_eq!(store.url(), format!("seaweedfs://127.0.0.1:{port}/data"));
    let error = store
        .head(&StorePath::parse("a").unwrap())
        .await
        .unwrap_err();
    assert!(!format!("{error} {error:?} {store:?}").contains("s3cret"));
    let blobs = open(&format!("seaweedfs://127.0.0.1:{port}/data")).unwrap();
    assert_eq!(blobs.name(), "seaweedfs");
}

#[test]
fn the_blob_api_needs_a_master() {
    let store = SeaweedStore::new(server("127.0.0.1:1"), "/", SeaweedOptions::default()).unwrap();
    assert!(
        matches!(store.blobs(), Err(Error::InvalidUrl { reason, .. }) if reason.contains("?master="))
    );
    assert_eq!(store.url(), "seaweedfs://127.0.0.1:1/");
}
