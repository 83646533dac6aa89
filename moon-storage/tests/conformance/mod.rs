//! The behaviour every `Store` backend must show, as plain async functions over `&dyn Store`.
//!
//! A backend's test file builds a fresh store per test and runs every function through
//! [`conformance_tests!`]; the documented differences between backends travel in a [`Profile`].
//! Nothing here knows which backend it talks to.

use std::hash::{DefaultHasher, Hasher};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use moon_storage::{ByteStream, Error, ObjectMeta, Store, StorePath, StoreUrl, open, redact};

/// How a backend differs from the others, as its documentation says.
#[derive(Debug, Clone)]
pub struct Profile {
    /// It reports etags.
    pub etag: bool,
    /// It reports modification times.
    pub modified: bool,
    /// `a` and `a/b` can both be objects (object stores); filesystems refuse the second with
    /// `PreconditionFailed`.
    pub object_and_prefix_may_share_a_name: bool,
}

/// Generates one `#[tokio::test]` per conformance function. `$fixture` is evaluated afresh for
/// each test and yields `(store, guard)`, the guard living as long as the test.
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:expr, $profile:expr) => {
        $crate::conformance_tests!(@each $fixture, $profile;
            round_trips_small_objects,
            round_trips_a_64_mib_stream,
            ranges_at_and_past_the_end,
            head_reports_size_etag_and_time,
            missing_objects_are_not_found,
            lists_by_whole_segment_prefixes_in_path_order,
            lists_ten_thousand_entries,
            lists_one_level,
            concurrent_writers_leave_exactly_one_version,
            accepts_spaces_and_unicode_names,
            refuses_paths_that_escape,
            interrupted_uploads_leave_nothing,
            object_and_prefix_with_one_name,
            optional_operations_work_or_say_not_supported,
            url_names_the_same_store,
        );
    };
    (@each $fixture:expr, $profile:expr; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, _guard) = $fixture;
                conformance::$name(&*store, &$profile).await;
            }
        )*
    };
}

fn p(raw: &str) -> StorePath {
    StorePath::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
}

async fn read(store: &dyn Store, path: &StorePath) -> Bytes {
    store
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("get {path}: {e}"))
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

async fn list_all(store: &dyn Store, prefix: Option<&str>) -> Vec<ObjectMeta> {
    let prefix = prefix.map(p);
    store
        .list(prefix.as_ref())
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("list {prefix:?}: {e}"))
}

async fn listed_paths(store: &dyn Store, prefix: Option<&str>) -> Vec<String> {
    list_all(store, prefix)
        .await
        .into_iter()
        .map(|m| m.path.to_string())
        .collect()
}

fn chunks(parts: Vec<Result<Bytes, Error>>) -> ByteStream {
    stream::iter(parts).boxed()
}

/// Deterministic pseudo-random bytes (xorshift), so large content needs no fixture file.
struct Noise(u64);

impl Noise {
    fn chunk(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        out.truncate(len);
        Bytes::from(out)
    }
}

pub async fn round_trips_small_objects(store: &dyn Store, _: &Profile) {
    for (name, content) in [
        ("empty", Bytes::new()),
        ("one", Bytes::from_static(b"x")),
        ("kib", Noise(1).chunk(1024)),
    ] {
        let path = p(&format!("small/{name}"));
        let meta = store.put(&path, content.clone()).await.unwrap();
        assert_eq!(meta.path, path);
        assert_eq!(meta.size, content.len() as u64, "{name}");
        let got = store.get(&path).await.unwrap();
        assert_eq!(got.meta.size, content.len() as u64);
        assert_eq!(got.bytes().await.unwrap(), content, "{name}");
        assert_eq!(store.head(&path).await.unwrap().size, content.len() as u64);

        // The same content sent in several chunks, one of them empty, reads back the same.
        let streamed = p(&format!("streamed/{name}"));
        let half = content.len() / 2;
        let parts = vec![
            Ok(content.slice(..half)),
            Ok(Bytes::new()),
            Ok(content.slice(half..)),
        ];
        let meta = store.put_stream(&streamed, chunks(parts)).await.unwrap();
        assert_eq!(meta.size, content.len() as u64);
        assert_eq!(read(store, &streamed).await, content, "{name} streamed");
    }
    // An empty stream writes an empty object.
    let none = p("streamed/nothing");
    store.put_stream(&none, chunks(Vec::new())).await.unwrap();
    assert_eq!(read(store, &none).await.len(), 0);
}

pub async fn round_trips_a_64_mib_stream(store: &dyn Store, _: &Profile) {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 64;
    let path = p("large/model.bin");
    let mut sent = DefaultHasher::new();
    let mut noise = Noise(42);
    let mut parts = Vec::with_capacity(CHUNKS);
    for _ in 0..CHUNKS {
        let chunk = noise.chunk(CHUNK);
        sent.write(&chunk);
        parts.push(Ok(chunk));
    }
    let meta = store.put_stream(&path, chunks(parts)).await.unwrap();
    assert_eq!(meta.size, (CHUNK * CHUNKS) as u64);

    let got = store.get(&path).await.unwrap();
    assert_eq!(got.meta.size, (CHUNK * CHUNKS) as u64);
    let mut received = DefaultHasher::new();
    let mut total = 0u64;
    let mut body = got.stream;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len() as u64;
        received.write(&chunk);
    }
    assert_eq!(total, (CHUNK * CHUNKS) as u64);
    assert_eq!(
        received.finish(),
        sent.finish(),
        "content differs after the round trip"
    );

    // A range across a chunk boundary matches the bytes that were sent there.
    let mut noise = Noise(42);
    let _ = noise.chunk(CHUNK);
    let second = noise.chunk(CHUNK);
    let third = noise.chunk(CHUNK);
    let start = (2 * CHUNK - 10) as u64;
    let range = store.get_range(&path, start..start + 20).await.unwrap();
    assert_eq!(&range[..10], &second[CHUNK - 10..]);
    assert_eq!(&range[10..], &third[..10]);
}

pub async fn ranges_at_and_past_the_end(store: &dyn Store, _: &Profile) {
    let path = p("ranges/hundred");
    let content = Noise(7).chunk(100);
    store.put(&path, content.clone()).await.unwrap();

    assert_eq!(store.get_range(&path, 0..0).await.unwrap().len(), 0);
    assert_eq!(store.get_range(&path, 0..100).await.unwrap(), content);
    assert_eq!(
        store.get_range(&path, 99..100).await.unwrap(),
        content.slice(99..)
    );
    assert_eq!(
        store.get_range(&path, 10..20).await.unwrap(),
        content.slice(10..20)
    );
    // The end is clamped to the size.
    assert_eq!(
        store.get_range(&path, 90..1000).await.unwrap(),
        content.slice(90..)
    );
    // Starting exactly at the end reads nothing.
    assert_eq!(store.get_range(&path, 100..100).await.unwrap().len(), 0);
    assert_eq!(store.get_range(&path, 100..150).await.unwrap().len(), 0);
    // Starting past the end, or ending before the start, is an error naming the size.
    match store.get_range(&path, 101..102).await {
        Err(Error::InvalidRange { size, range, .. }) => {
            assert_eq!(size, 100);
            assert_eq!(range, 101..102);
        }
        other => panic!("start past the end: {other:?}"),
    }
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 20..10;
    assert!(matches!(
        store.get_range(&path, reversed).await,
        Err(Error::InvalidRange { .. })
    ));

    let empty = p("ranges/empty");
    store.put(&empty, Bytes::new()).await.unwrap();
    assert_eq!(store.get_range(&empty, 0..0).await.unwrap().len(), 0);
    assert_eq!(store.get_range(&empty, 0..10).await.unwrap().len(), 0);
    assert!(matches!(
        store.get_range(&empty, 1..2).await,
        Err(Error::InvalidRange { size: 0, .. })
    ));
}

pub async fn head_reports_size_etag_and_time(store: &dyn Store, profile: &Profile) {
    let path = p("head/weights");
    let written = store
        .put(&path, Bytes::from_static(b"version-1"))
        .await
        .unwrap();
    let first = store.head(&path).await.unwrap();
    assert_eq!(first.path, path);
    assert_eq!(first.size, 9);
    assert_eq!(
        first.etag, written.etag,
        "put and head disagree on the etag"
    );
    assert_eq!(profile.etag, first.etag.is_some());
    assert_eq!(profile.modified, first.modified.is_some());
    if let Some(modified) = first.modified {
        let age = std::time::SystemTime::now().duration_since(modified);
        assert!(
            age.is_ok_and(|age| age < Duration::from_secs(300)),
            "modified {modified:?}"
        );
    }

    // Same size, different content: the etag must still change.
    store
        .put(&path, Bytes::from_static(b"version-2"))
        .await
        .unwrap();
    let second = store.head(&path).await.unwrap();
    assert_eq!(second.size, 9);
    if profile.etag {
        assert_ne!(first.etag, second.etag, "etag unchanged after new content");
    }
    assert_eq!(store.get(&path).await.unwrap().meta, second);
}

pub async fn missing_objects_are_not_found(store: &dyn Store, _: &Profile) {
    let missing = p("nowhere/at/all");
    assert!(matches!(
        store.get(&missing).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.head(&missing).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.get_range(&missing, 0..1).await,
        Err(Error::NotFound { .. })
    ));
    match store.delete(&missing).await {
        Err(Error::NotFound { path }) => assert_eq!(path, "nowhere/at/all"),
        other => panic!("deleting a missing object: {other:?}"),
    }

    // Deleting once works, the second time it is missing, and it is gone from listings.
    let path = p("gone/soon");
    store.put(&path, Bytes::from_static(b"x")).await.unwrap();
    store.delete(&path).await.unwrap();
    assert!(store.head(&path).await.unwrap_err().is_not_found());
    assert!(store.delete(&path).await.unwrap_err().is_not_found());
    assert!(listed_paths(store, None).await.is_empty());
    // A prefix is not an object.
    store
        .put(&p("dir/file"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(store.head(&p("dir")).await.unwrap_err().is_not_found());
    assert!(store.delete(&p("dir")).await.unwrap_err().is_not_found());
}

const TREE: [&str; 10] = [
    "a/1", "a/b/2", "a/b/c/3", "a b/5", "a.txt", "a0/x", "ab/4", "b", "z/é/6", "é",
];

async fn plant(store: &dyn Store, paths: &[&str]) {
    for raw in paths {
        store
            .put(&p(raw), Bytes::from(raw.to_string()))
            .await
            .unwrap();
    }
}

pub async fn lists_by_whole_segment_prefixes_in_path_order(store: &dyn Store, _: &Profile) {
    plant(store, &TREE).await;
    let mut everything: Vec<String> = TREE.iter().map(|s| s.to_string()).collect();
    everything.sort();
    assert_eq!(listed_paths(store, None).await, everything);

    // `a` lists what is below `a/`, never `ab/...`, `a b/...`, `a.txt` or `a` itself.
    assert_eq!(
        listed_paths(store, Some("a")).await,
        ["a/1", "a/b/2", "a/b/c/3"]
    );
    assert_eq!(listed_paths(store, Some("a/b")).await, ["a/b/2", "a/b/c/3"]);
    assert_eq!(listed_paths(store, Some("z")).await, ["z/é/6"]);
    assert!(listed_paths(store, Some("nothing")).await.is_empty());
    // A prefix that names an object lists nothing below it.
    assert!(listed_paths(store, Some("b")).await.is_empty());

    let metas = list_all(store, Some("a/b")).await;
    assert_eq!(metas[0].size, "a/b/2".len() as u64);
    assert_eq!(metas[0], store.head(&p("a/b/2")).await.unwrap());
}

pub async fn lists_ten_thousand_entries(store: &dyn Store, _: &Profile) {
    const COUNT: usize = 10_000;
    stream::iter(0..COUNT)
        .map(|i| async move {
            let path = p(&format!("many/{i:05}"));
            store.put(&path, Bytes::from(i.to_string())).await.unwrap();
        })
        .buffer_unordered(32)
        .collect::<()>()
        .await;
    store
        .put(&p("many0"), Bytes::from_static(b"outside"))
        .await
        .unwrap();

    let listed = list_all(store, Some("many")).await;
    assert_eq!(listed.len(), COUNT);
    for (i, meta) in listed.iter().enumerate() {
        assert_eq!(meta.path.as_str(), format!("many/{i:05}"));
        assert_eq!(meta.size, i.to_string().len() as u64);
    }
    assert_eq!(list_all(store, None).await.len(), COUNT + 1);
    let level = store.list_with_delimiter(Some(&p("many"))).await.unwrap();
    assert_eq!(level.objects.len(), COUNT);
    assert!(level.common_prefixes.is_empty());
}

pub async fn lists_one_level(store: &dyn Store, _: &Profile) {
    plant(store, &TREE).await;
    let root = store.list_with_delimiter(None).await.unwrap();
    let objects: Vec<&str> = root.objects.iter().map(|m| m.path.as_str()).collect();
    let prefixes: Vec<&str> = root.common_prefixes.iter().map(|p| p.as_str()).collect();
    assert_eq!(objects, ["a.txt", "b", "é"]);
    assert_eq!(prefixes, ["a", "a b", "a0", "ab", "z"]);

    let a = store.list_with_delimiter(Some(&p("a"))).await.unwrap();
    assert_eq!(a.objects.len(), 1);
    assert_eq!(a.objects[0].path.as_str(), "a/1");
    assert_eq!(a.objects[0].size, 3);
    assert_eq!(a.common_prefixes, [p("a/b")]);

    // Once a prefix holds nothing, it is no longer listed.
    store.delete(&p("a/b/2")).await.unwrap();
    store.delete(&p("a/b/c/3")).await.unwrap();
    let a = store.list_with_delimiter(Some(&p("a"))).await.unwrap();
    assert!(a.common_prefixes.is_empty(), "{:?}", a.common_prefixes);
    let none = store
        .list_with_delimiter(Some(&p("nothing")))
        .await
        .unwrap();
    assert!(none.objects.is_empty() && none.common_prefixes.is_empty());
}

pub async fn concurrent_writers_leave_exactly_one_version(store: &dyn Store, _: &Profile) {
    const SIZE: usize = 4 << 20;
    const PIECE: usize = 64 << 10;
    let path = p("race/object");
    store
        .put(&path, Bytes::from(vec![0xFF; SIZE]))
        .await
        .unwrap();

    let writers = (0..8u8).map(|writer| {
        let path = path.clone();
        async move {
            let pieces = (0..SIZE / PIECE).map(move |_| Ok(Bytes::from(vec![writer; PIECE])));
            // Yield between pieces so the writers interleave.
            let body = stream::iter(pieces)
                .then(|piece| async move {
                    tokio::task::yield_now().await;
                    piece
                })
                .boxed();
            store.put_stream(&path, body).await.unwrap();
        }
    });
    let done = std::sync::atomic::AtomicBool::new(false);
    let reader = async {
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
            let body = read(store, &path).await;
            assert_eq!(body.len(), SIZE, "a reader saw a partial object");
            assert!(
                body.iter().all(|b| *b == body[0]),
                "a reader saw a mix of writers"
            );
            reads += 1;
            // A backend that never waits (memory) would otherwise starve the writers.
            tokio::task::yield_now().await;
        }
    };
    let writing = async {
        futures::future::join_all(writers).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::join!(writing, reader);

    let body = read(store, &path).await;
    assert_eq!(body.len(), SIZE);
    assert!(
        body[0] < 8,
        "the final object is the initial one, not a writer's"
    );
    assert!(
        body.iter().all(|b| *b == body[0]),
        "the final object mixes writers"
    );
    assert_eq!(listed_paths(store, Some("race")).await, ["race/object"]);
}

pub async fn accepts_spaces_and_unicode_names(store: &dyn Store, _: &Profile) {
    let long = "n".repeat(255);
    let names = [
        "with space/file name.txt",
        " leading and trailing ",
        "données/été/naïve.csv",
        "日本語/ファイル",
        "emoji/🚀 launch",
        "..double-dot-start",
        "a..b/...",
        "percent%20and+plus&amp",
        "back\\slash",
        long.as_str(),
    ];
    for raw in names {
        let path = p(raw);
        store
            .put(&path, Bytes::from(raw.to_string()))
            .await
            .unwrap();
        assert_eq!(read(store, &path).await, raw.as_bytes(), "{raw}");
    }
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(listed_paths(store, None).await, expected);
    for raw in names {
        store.delete(&p(raw)).await.unwrap();
    }
    assert!(listed_paths(store, None).await.is_empty());
}

pub async fn refuses_paths_that_escape(store: &dyn Store, _: &Profile) {
    store
        .put(&p("inside"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    for raw in [
        "../outside",
        "a/../../outside",
        "/etc/passwd",
        "./a",
        "a//b",
        "a/",
        "",
        "a\0b",
        "a\u{1b}[31m",
    ] {
        match StorePath::parse(raw) {
            Err(Error::InvalidPath { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{raw:?} was accepted: {other:?}"),
        }
    }
    let base = p("inside");
    assert!(base.join("../../outside").is_err());
    assert_eq!(listed_paths(store, None).await, ["inside"]);
}

pub async fn interrupted_uploads_leave_nothing(store: &dyn Store, _: &Profile) {
    let path = p("uploads/broken");
    let failing = chunks(vec![
        Ok(Noise(3).chunk(1 << 20)),
        Ok(Noise(4).chunk(1 << 20)),
        Err(Error::Unavailable {
            backend: "test source".into(),
            message: "connection reset".into(),
        }),
    ]);
    match store.put_stream(&path, failing).await {
        Err(Error::Unavailable { message, .. }) => assert_eq!(message, "connection reset"),
        other => panic!("a failing upload returned {other:?}"),
    }
    assert!(store.head(&path).await.unwrap_err().is_not_found());
    assert!(listed_paths(store, None).await.is_empty());
    let level = store.list_with_delimiter(None).await.unwrap();
    assert!(level.objects.is_empty(), "{:?}", level.objects);
    assert!(
        level.common_prefixes.is_empty(),
        "{:?}",
        level.common_prefixes
    );

    // An upload that fails over an existing object leaves the old content whole.
    store.put(&path, Bytes::from_static(b"old")).await.unwrap();
    let failing = chunks(vec![
        Ok(Bytes::from_static(b"new but")),
        Err(Error::Unavailable {
            backend: "test source".into(),
            message: "gone".into(),
        }),
    ]);
    assert!(store.put_stream(&path, failing).await.is_err());
    assert_eq!(read(store, &path).await, "old");

    // An upload abandoned midway (its future dropped) leaves nothing either.
    let dropped = p("uploads/abandoned");
    let stalls = stream::iter(vec![Ok(Noise(5).chunk(1 << 20))])
        .chain(stream::pending())
        .boxed();
    let attempt = tokio::time::timeout(
        Duration::from_millis(300),
        store.put_stream(&dropped, stalls),
    );
    assert!(attempt.await.is_err(), "a stalled upload finished");
    assert!(store.head(&dropped).await.unwrap_err().is_not_found());
    assert_eq!(listed_paths(store, None).await, ["uploads/broken"]);

    // Nor does one into a new prefix leave that prefix behind.
    let deep = p("fresh/prefix/object");
    let failing = chunks(vec![
        Ok(Bytes::from_static(b"some")),
        Err(Error::Unavailable {
            backend: "test source".into(),
            message: "gone".into(),
        }),
    ]);
    assert!(store.put_stream(&deep, failing).await.is_err());
    let level = store.list_with_delimiter(None).await.unwrap();
    assert_eq!(level.common_prefixes, [p("uploads")]);
}

pub async fn object_and_prefix_with_one_name(store: &dyn Store, profile: &Profile) {
    store
        .put(&p("x"), Bytes::from_static(b"object"))
        .await
        .unwrap();
    let below = store.put(&p("x/y"), Bytes::from_static(b"below")).await;
    store
        .put(&p("q/r"), Bytes::from_static(b"below"))
        .await
        .unwrap();
    let above = store.put(&p("q"), Bytes::from_static(b"object")).await;
    if profile.object_and_prefix_may_share_a_name {
        below.unwrap();
        above.unwrap();
        assert_eq!(read(store, &p("x/y")).await, "below");
        assert_eq!(listed_paths(store, None).await, ["q", "q/r", "x", "x/y"]);
    } else {
        assert!(
            matches!(below, Err(Error::PreconditionFailed { .. })),
            "{below:?}"
        );
        assert!(
            matches!(above, Err(Error::PreconditionFailed { .. })),
            "{above:?}"
        );
        assert!(store.head(&p("x/y")).await.unwrap_err().is_not_found());
        assert_eq!(listed_paths(store, None).await, ["q/r", "x"]);
    }
    assert_eq!(read(store, &p("x")).await, "object");
}

pub async fn optional_operations_work_or_say_not_supported(store: &dyn Store, _: &Profile) {
    let caps = store.capabilities();
    let src = p("ops/source");
    let dst = p("ops/copies/destination");
    store
        .put(&src, Bytes::from_static(b"payload"))
        .await
        .unwrap();
    store
        .put(&dst, Bytes::from_static(b"to be replaced"))
        .await
        .unwrap();

    let not_supported = |result: Result<ObjectMeta, Error>, operation: &str| match result {
        Err(Error::NotSupported {
            backend,
            operation: op,
        }) => {
            assert_eq!(backend, store.name());
            assert_eq!(op, operation);
        }
        other => panic!("{operation} is not declared but answered {other:?}"),
    };

    let copied = store.copy(&src, &dst).await;
    if caps.copy {
        assert_eq!(copied.unwrap().size, 7);
        assert_eq!(read(store, &src).await, "payload");
        assert_eq!(read(store, &dst).await, "payload");
        assert!(
            store
                .copy(&p("ops/missing"), &dst)
                .await
                .unwrap_err()
                .is_not_found()
        );
    } else {
        not_supported(copied, "copy");
    }

    let moved = p("ops/moved/here");
    let renamed = store.rename(&src, &moved).await;
    if caps.rename {
        assert_eq!(renamed.unwrap().path, moved);
        assert!(store.head(&src).await.unwrap_err().is_not_found());
        assert_eq!(read(store, &moved).await, "payload");
        assert!(store.rename(&src, &moved).await.unwrap_err().is_not_found());
    } else {
        not_supported(renamed, "rename");
    }

    let log = p("ops/log");
    let appended = store.append(&log, Bytes::from_static(b"one,")).await;
    if caps.append {
        assert_eq!(appended.unwrap().size, 4);
        let meta = store
            .append(&log, Bytes::from_static(b"two"))
            .await
            .unwrap();
        assert_eq!(meta.size, 7);
        assert_eq!(read(store, &log).await, "one,two");
    } else {
        not_supported(appended, "append");
        assert!(store.head(&log).await.unwrap_err().is_not_found());
    }
}

pub async fn url_names_the_same_store(store: &dyn Store, _: &Profile) {
    assert!(!store.name().is_empty());
    let url = store.url();
    assert_eq!(redact(&url), url, "the URL carries user information");
    StoreUrl::parse(&url).unwrap_or_else(|e| panic!("{url}: {e}"));

    let path = p("shared/marker");
    store.put(&path, Bytes::from_static(b"here")).await.unwrap();
    let again = open(&url).unwrap();
    assert_eq!(again.name(), store.name());
    assert_eq!(read(&*again, &path).await, "here");
}
