//! moon's side of the SeaweedFS benchmark: the same load `weed benchmark` makes, through
//! moon-storage. N objects of SIZE + 0..63 bytes are written by C tasks at once, then N reads
//! of objects picked at random are made by C tasks; every read is checked against what was
//! written. Once through the blob API (`dir/assign`, an upload straight to the volume server,
//! reads at the cached volume location), once through the filer's paths (`Store::put`/`get`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use moon_storage::seaweedfs::{BlobOptions, Fid, SeaweedBlobs, SeaweedStore};
use moon_storage::{Store, StorePath};

/// The shape of one load: how many objects, how many in flight, how large.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Objects written, and reads made.
    pub objects: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The smallest object; each gets 0 to 63 more bytes, as `weed benchmark` does.
    pub size: usize,
}

/// How one timed phase went.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Requests that succeeded (for reads: and gave back the bytes written).
    pub completed: usize,
    /// Requests that failed, or reads that gave back other bytes.
    pub failed: usize,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

impl Outcome {
    /// Completed requests per second.
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }
}

/// Object `index`'s content: its size varies as `weed benchmark`'s does (SIZE plus 0..63 bytes),
/// its bytes name the object, so a read of the wrong object is caught.
pub fn content(index: usize, size: usize) -> Bytes {
    let len = size + (mix(index as u64) % 64) as usize;
    let mut bytes = vec![(index % 251) as u8; len];
    let id = (index as u64).to_le_bytes();
    let head = id.len().min(len);
    bytes[..head].copy_from_slice(&id[..head]);
    Bytes::from(bytes)
}

/// splitmix64: a well-spread hash of a counter, for sizes and random picks.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs `work(i)` for i in 0..count with `concurrency` tasks taking the next index as they
/// finish; returns what each call gave back, by index, and the time taken.
async fn drive<T, F, Fut>(count: usize, concurrency: usize, work: F) -> (Vec<T>, Duration)
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let next = next.clone();
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return done;
                }
                done.push((i, work(i).await));
            }
        }));
    }
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for task in tasks {
        for (i, value) in task.await.expect("a benchmark task panicked") {
            results[i] = Some(value);
        }
    }
    let elapsed = started.elapsed();
    let results = results
        .into_iter()
        .map(|v| v.expect("every index is taken once"))
        .collect();
    (results, elapsed)
}

/// The read phase's picks: `count` indexes among `0..written`, at random with repeats, as
/// `weed benchmark` reads; `seed` makes each round's picks its own.
fn picks(count: usize, written: usize, seed: u64) -> Vec<usize> {
    (0..count as u64)
        .map(|i| (mix(seed ^ mix(i)) % written as u64) as usize)
        .collect()
}

/// Writes through the blob API: the file ids of the blobs written (with their objects' index),
/// and the phase.
pub async fn write_blobs(
    blobs: &SeaweedBlobs,
    load: Load,
) -> Result<(Vec<(usize, Fid)>, Outcome), String> {
    let options = BlobOptions::default();
    let writer = blobs.clone();
    let (written, elapsed) = drive(load.objects, load.concurrency, move |i| {
        let blobs = writer.clone();
        let options = options.clone();
        async move {
            let fid = blobs.put_blob(content(i, load.size), &options).await?;
            Ok::<_, moon_storage::Error>((i, fid))
        }
    })
    .await;
    tally(written, elapsed)
}

/// Reads `load.objects` blobs picked at random among `fids`, checking each.
pub async fn read_blobs(
    blobs: &SeaweedBlobs,
    fids: Vec<(usize, Fid)>,
    load: Load,
    seed: u64,
) -> Result<Outcome, String> {
    let fids = Arc::new(fids);
    let order = Arc::new(picks(load.objects, fids.len(), seed));
    let reader = blobs.clone();
    let (read, elapsed) = drive(load.objects, load.concurrency, move |i| {
        let blobs = reader.clone();
        let (index, fid) = fids[order[i]].clone();
        async move {
            let bytes = blobs.get_blob(&fid).await?;
            Ok::<_, moon_storage::Error>(bytes == content(index, load.size))
        }
    })
    .await;
    checked(read, elapsed)
}

/// Writes and reads through the filer's paths below `root`; returns the write and the read
/// phase.
pub async fn filer(
    store: &SeaweedStore,
    load: Load,
    seed: u64,
) -> Result<(Outcome, Outcome), String> {
    let path = |i: usize| StorePath::parse(&format!("o{i:07}")).expect("a valid path");
    let writer = store.clone();
    let (written, elapsed) = drive(load.objects, load.concurrency, move |i| {
        let store = writer.clone();
        async move {
            let p = path(i);
            store.put(&p, content(i, load.size)).await.map(|_| i)
        }
    })
    .await;
    let (indexes, write) = tally(written, elapsed)?;

    let indexes = Arc::new(indexes);
    let order = Arc::new(picks(load.objects, indexes.len(), seed));
    let reader = store.clone();
    let (read, elapsed) = drive(load.objects, load.concurrency, move |i| {
        let store = reader.clone();
        let index = indexes[order[i]];
        async move {
            let got = store.get(&path(index)).await?;
            let chunks: Vec<Bytes> = got.stream.try_collect().await?;
            Ok::<_, moon_storage::Error>(chunks.concat() == content(index, load.size))
        }
    })
    .await;
    Ok((write, checked(read, elapsed)?))
}

/// The successful writes' results, and the phase's outcome; an error when nothing was written.
fn tally<T>(
    results: Vec<moon_storage::Result<T>>,
    elapsed: Duration,
) -> Result<(Vec<T>, Outcome), String> {
    let mut kept = Vec::with_capacity(results.len());
    let mut failed = 0;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(value) => kept.push(value),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = &first_error {
        eprintln!("  {failed} writes failed; the first: {e}");
    }
    if kept.is_empty() {
        return Err("every write failed".to_string());
    }
    let outcome = Outcome {
        completed: kept.len(),
        failed,
        elapsed,
    };
    Ok((kept, outcome))
}

/// The read phase's outcome: reads that failed or gave back other bytes count as failed.
fn checked(results: Vec<moon_storage::Result<bool>>, elapsed: Duration) -> Result<Outcome, String> {
    let mut completed = 0;
    let mut failed = 0;
    let mut wrong = 0;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(true) => completed += 1,
            Ok(false) => wrong += 1,
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = &first_error {
        eprintln!("  {failed} reads failed; the first: {e}");
    }
    if wrong > 0 {
        eprintln!("  {wrong} reads gave back other bytes than were written");
    }
    Ok(Outcome {
        completed,
        failed: failed + wrong,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_vary_in_size_like_weeds_and_name_their_object() {
        let sizes: Vec<usize> = (0..1000).map(|i| content(i, 1024).len()).collect();
        assert!(sizes.iter().all(|&s| (1024..1088).contains(&s)));
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((1050.0..1061.0).contains(&mean), "{mean}");
        assert_ne!(content(1, 1024), content(2, 1024));
        assert_eq!(content(7, 1024), content(7, 1024));
        assert_eq!(&content(258, 1024)[..8], &258u64.to_le_bytes());
    }

    #[test]
    fn picks_cover_the_written_objects_with_repeats() {
        let p = picks(10_000, 100, 42);
        assert!(p.iter().all(|&i| i < 100));
        let mut seen = p.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100);
        assert_ne!(p, picks(10_000, 100, 43));
    }

    #[tokio::test]
    async fn drive_runs_every_index_once() {
        let (results, _) = drive(1000, 16, |i| async move { i * 2 }).await;
        assert_eq!(results, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
    }
}
