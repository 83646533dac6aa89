//! `Cached<HdfsStore>` re-reading a working set, against uncached reads of the same set from HDFS.
//!
//! Writes the working set (256 MiB by default, in files of 16 MiB) to a fresh directory of the
//! namenode in `MOON_TEST_HDFS_URL`, reads it once straight from HDFS (to warm the datanode) and
//! once through the cache (cold), then alternates rounds of passes over the whole set:
//!
//! - each file read whole (`get`, then `bytes`): straight from HDFS, through the cache as
//!   configured by default (one `head` per read), and through a cache that trusts metadata for
//!   60 s;
//! - each file read in 1 MiB ranges (`get_range`): straight from HDFS, through a cache of its
//!   own that only ever saw ranged reads (so it holds pages, not whole files), and through the
//!   cache that trusts metadata for 60 s.
//!
//! Prints medians, the ratio for ranges, and, last, the ratio of the medians for whole files:
//! uncached / cached by default (target: at least 10x). Removes its directory at the end.
//!
//! `benchmarks/cached_hdfs.sh` runs it, starting an HDFS of its own when none is given:
//!
//! ```text
//! cargo run --release -p moon-storage --example cached_hdfs_reread -- \
//!     [--rounds 7] [--working-set-mib 256] [--file-mib 16] [--page-kib 4096]
//! ```

use std::hash::{DefaultHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use moon_storage::{Cached, HdfsOptions, HdfsStore, Store, StorePath, StoreUrl};

struct Options {
    rounds: usize,
    working_set_mib: u64,
    file_mib: u64,
    page_kib: Option<u64>,
}

fn options() -> Options {
    let mut options = Options {
        rounds: 7,
        working_set_mib: 256,
        file_mib: 16,
        page_kib: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} takes a number"))
        };
        match flag.as_str() {
            "--rounds" => options.rounds = value().max(1) as usize,
            "--working-set-mib" => options.working_set_mib = value().max(1),
            "--file-mib" => options.file_mib = value().max(1),
            "--page-kib" => options.page_kib = Some(value().max(1)),
            other => panic!("unknown option {other} (see the example's documentation)"),
        }
    }
    options
}

/// Deterministic content, different for every file, so no layer can share work between files.
fn content(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// Reads every file in ranges of `range` bytes, in order; returns the time taken.
async fn ranged_pass(
    store: &dyn Store,
    files: &[StorePath],
    file_bytes: u64,
    range: u64,
) -> Duration {
    let started = Instant::now();
    let mut total = 0u64;
    for path in files {
        let mut offset = 0;
        while offset < file_bytes {
            let end = (offset + range).min(file_bytes);
            let body = store.get_range(path, offset..end).await.expect("get_range");
            total += body.len() as u64;
            offset = end;
        }
    }
    let took = started.elapsed();
    assert_eq!(
        total,
        file_bytes * files.len() as u64,
        "a pass read the wrong amount"
    );
    took
}

/// Reads every file whole, in order; returns the time taken.
async fn pass(store: &dyn Store, files: &[StorePath], expected_bytes: u64) -> Duration {
    let started = Instant::now();
    let mut total = 0u64;
    for path in files {
        let body = store
            .get(path)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("read");
        total += body.len() as u64;
    }
    let took = started.elapsed();
    assert_eq!(total, expected_bytes, "a pass read the wrong amount");
    took
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2
    }
}

fn line(name: &str, times: &[Duration], bytes: u64) {
    let med = median(times);
    let min = times.iter().min().copied().unwrap_or_default();
    let mib_s = bytes as f64 / (1 << 20) as f64 / med.as_secs_f64();
    println!(
        "{name:<38} median {:>9.2} ms  (min {:>8.2} ms)  {mib_s:>9.0} MiB/s",
        med.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    let url = std::env::var("MOON_TEST_HDFS_URL").unwrap_or_else(|_| {
        panic!("MOON_TEST_HDFS_URL is not set: run benchmarks/cached_hdfs.sh, which starts HDFS")
    });
    let server = match StoreUrl::parse(&url).expect("MOON_TEST_HDFS_URL is a URL") {
        StoreUrl::Hdfs { server, .. } => server,
        other => panic!("MOON_TEST_HDFS_URL is not an hdfs:// URL: {other:?}"),
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let root = format!("/moon-bench/cached-{}-{nanos:x}", std::process::id());
    let hdfs = HdfsStore::new(server, &root, HdfsOptions::default()).expect("an HDFS store");

    let file_bytes = options.file_mib << 20;
    let count = options.working_set_mib.div_ceil(options.file_mib);
    let total = file_bytes * count;
    let mut files = Vec::new();
    let mut digests = Vec::new();
    let writing = Instant::now();
    for i in 0..count {
        let path = StorePath::parse(&format!("set/part-{i:04}.bin")).expect("a path");
        let body = content(i + 1, file_bytes as usize);
        digests.push(digest(&body));
        hdfs.put(&path, body).await.expect("write the working set");
        files.push(path);
    }
    println!(
        "working set: {count} files of {} MiB ({} MiB) in {url}{root}, written in {:.1} s",
        options.file_mib,
        total >> 20,
        writing.elapsed().as_secs_f64()
    );

    // Twice the set, so that nothing is evicted.
    let budget = 2 * total;
    let mut cached = Cached::new(hdfs.clone()).memory_bytes(budget);
    let mut trusting = Cached::new(hdfs.clone())
        .memory_bytes(budget)
        .max_staleness(Duration::from_secs(60));
    let mut paged = Cached::new(hdfs.clone()).memory_bytes(budget);
    if let Some(kib) = options.page_kib {
        cached = cached.page_size(kib << 10);
        trusting = trusting.page_size(kib << 10);
        paged = paged.page_size(kib << 10);
    }
    println!(
        "page size {} KiB, memory tier {} MiB",
        cached.page_bytes() >> 10,
        budget >> 20
    );

    const RANGE: u64 = 1 << 20;
    let warm_up = pass(&hdfs, &files, total).await;
    let cold = pass(&cached, &files, total).await;
    pass(&trusting, &files, total).await;
    let cold_ranges = ranged_pass(&paged, &files, file_bytes, RANGE).await;
    println!(
        "first passes: HDFS {:.0} ms; through the cache, cold: whole files {:.0} ms, \
         1 MiB ranges {:.0} ms",
        warm_up.as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e3,
        cold_ranges.as_secs_f64() * 1e3
    );
    // The cache answers with exactly what HDFS holds.
    for (path, expected) in files.iter().zip(&digests) {
        let body = cached.get(path).await.unwrap().bytes().await.unwrap();
        assert_eq!(digest(&body), *expected, "{path}: the cache's bytes differ");
    }

    let (mut uncached_times, mut cached_times, mut trusting_times) =
        (Vec::new(), Vec::new(), Vec::new());
    let (mut uncached_ranges, mut cached_ranges, mut trusting_ranges) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.rounds {
        uncached_times.push(pass(&hdfs, &files, total).await);
        cached_times.push(pass(&cached, &files, total).await);
        trusting_times.push(pass(&trusting, &files, total).await);
        uncached_ranges.push(ranged_pass(&hdfs, &files, file_bytes, RANGE).await);
        cached_ranges.push(ranged_pass(&paged, &files, file_bytes, RANGE).await);
        trusting_ranges.push(ranged_pass(&trusting, &files, file_bytes, RANGE).await);
    }
    let stats = cached.stats();
    assert_eq!(
        stats.inner_bytes, total,
        "the warm rounds read from HDFS again: {stats:?}"
    );

    assert_eq!(paged.stats().inner_bytes, total, "{:?}", paged.stats());
    println!("rounds: {}, alternated", options.rounds);
    line("whole files: HDFS", &uncached_times, total);
    line("whole files: Cached<HDFS>", &cached_times, total);
    line(
        "whole files: Cached, 60 s staleness",
        &trusting_times,
        total,
    );
    line("1 MiB ranges: HDFS", &uncached_ranges, total);
    line("1 MiB ranges: Cached<HDFS>", &cached_ranges, total);
    line(
        "1 MiB ranges: Cached, 60 s staleness",
        &trusting_ranges,
        total,
    );
    println!(
        "cache: {} hits, {} misses, {} heads, {} MiB from HDFS, {} MiB served from memory",
        stats.hits,
        stats.misses,
        stats.inner_heads,
        stats.inner_bytes >> 20,
        stats.memory_bytes_served >> 20
    );

    let client = hdfs_native::ClientBuilder::new()
        .with_url(url.clone())
        .build()
        .expect("an HDFS client");
    client
        .delete(&root, true)
        .await
        .expect("remove the working set");

    let ranges_ratio =
        median(&uncached_ranges).as_secs_f64() / median(&cached_ranges).as_secs_f64();
    println!("1 MiB ranges, Cached<HDFS> vs uncached HDFS: {ranges_ratio:.1}x faster");
    let ratio = median(&uncached_times).as_secs_f64() / median(&cached_times).as_secs_f64();
    println!(
        "Cached<HDFS> re-read of {} MiB vs uncached HDFS: {ratio:.1}x faster (target >= 10x)",
        total >> 20
    );
}
