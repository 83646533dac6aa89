//! moon's side of the HDFS benchmark: one large file written through [`Store::put_stream`] from
//! a stream of equal chunks, then read to its end through [`Store::get`]'s stream.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, stream};
use moon_storage::{Store, StorePath};

/// The chunk every write sends: `len` pseudo-random bytes (HDFS does not compress, but the
/// bytes should not be trivially uniform either).
pub fn chunk(len: usize) -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    Bytes::from(bytes)
}

/// Writes `size` bytes to `path` as a stream of `chunk`s (the last one cut short); the time
/// from the call to the object being in place.
pub async fn write(
    store: &dyn Store,
    path: &StorePath,
    size: u64,
    chunk: &Bytes,
) -> moon_storage::Result<Duration> {
    let whole = size / chunk.len() as u64;
    let rest = (size % chunk.len() as u64) as usize;
    let mut pieces: Vec<Bytes> = Vec::new();
    if rest > 0 {
        pieces.push(chunk.slice(..rest));
    }
    let piece = chunk.clone();
    let body = stream::iter((0..whole).map(move |_| Ok(piece.clone())))
        .chain(stream::iter(pieces.into_iter().map(Ok)))
        .boxed();
    let started = Instant::now();
    let meta = store.put_stream(path, body).await?;
    let elapsed = started.elapsed();
    if meta.size != size {
        return Err(moon_storage::Error::Unavailable {
            backend: store.name().to_string(),
            message: format!(
                "wrote {size} bytes to '{path}', the store counted {}",
                meta.size
            ),
        });
    }
    Ok(elapsed)
}

/// Reads `path` to its end; the time from the call to the last byte, after checking that
/// `size` bytes came.
pub async fn read(
    store: &dyn Store,
    path: &StorePath,
    size: u64,
) -> moon_storage::Result<Duration> {
    let started = Instant::now();
    let mut body = store.get(path).await?.stream;
    let mut total = 0u64;
    while let Some(piece) = body.next().await {
        total += piece?.len() as u64;
    }
    let elapsed = started.elapsed();
    if total != size {
        return Err(moon_storage::Error::Unavailable {
            backend: store.name().to_string(),
            message: format!("read {total} bytes of '{path}', wrote {size}"),
        });
    }
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use moon_storage::MemoryStore;

    #[test]
    fn chunks_have_their_length_and_are_not_uniform() {
        let c = chunk(1 << 20);
        assert_eq!(c.len(), 1 << 20);
        assert_eq!(chunk(13).len(), 13);
        let zeros = c.iter().filter(|&&b| b == 0).count();
        assert!(zeros < 8192, "{zeros} zero bytes");
    }

    #[tokio::test]
    async fn a_size_that_is_not_a_whole_number_of_chunks_is_written_exactly() {
        let store = MemoryStore::new();
        let path = StorePath::parse("big").unwrap();
        let c = chunk(1000);
        write(&store, &path, 2500, &c).await.unwrap();
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.len(), 2500);
        assert_eq!(&got[..1000], &c[..]);
        assert_eq!(&got[2000..], &c[..500]);
        read(&store, &path, 2500).await.unwrap();
        assert!(read(&store, &path, 2501).await.is_err());
    }
}
