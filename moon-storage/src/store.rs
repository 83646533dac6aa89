//! The [`Store`] trait every backend implements, and the values it exchanges.

use std::fmt::Debug;
use std::ops::Range;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::path::StorePath;

/// A stream of byte chunks, as read from or written to a store.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Where the object is.
    pub path: StorePath,
    /// Its exact size in bytes.
    pub size: u64,
    /// A tag that changes whenever the content is replaced, where the backend has one.
    pub etag: Option<String>,
    /// When it was last written, where the backend records it.
    pub modified: Option<SystemTime>,
}

/// An object being read: its metadata, and its content as a stream of chunks.
///
/// The metadata and the content belong to the same version of the object, even if the object is
/// replaced while the stream is read.
pub struct GetResult {
    /// The object's metadata.
    pub meta: ObjectMeta,
    /// The content.
    pub stream: ByteStream,
}

impl GetResult {
    /// Reads the whole content into memory.
    ///
    /// Content that arrives as one chunk is returned as it is, without a copy.
    pub async fn bytes(mut self) -> Result<Bytes> {
        let Some(first) = self.stream.try_next().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.stream.try_next().await? else {
            return Ok(first);
        };
        let capacity = usize::try_from(self.meta.size).unwrap_or(usize::MAX);
        let mut buf = BytesMut::with_capacity(capacity.max(first.len() + second.len()));
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second);
        let buf = self
            .stream
            .try_fold(buf, |mut buf, chunk| async move {
                buf.extend_from_slice(&chunk);
                Ok(buf)
            })
            .await?;
        Ok(buf.freeze())
    }
}

impl Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// One level of a listing: the objects directly below a prefix, and the deeper prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListResult {
    /// Objects directly below the prefix, in path order.
    pub objects: Vec<ObjectMeta>,
    /// Prefixes one segment deeper that hold objects further down, sorted as paths themselves
    /// (`a` before `a b`, although `a b/x` lists before `a/x`).
    pub common_prefixes: Vec<StorePath>,
}

/// The optional operations a backend offers; the others answer [`Error::NotSupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`Store::copy`] works.
    pub copy: bool,
    /// [`Store::rename`] works.
    pub rename: bool,
    /// [`Store::append`] works.
    pub append: bool,
}

impl Capabilities {
    /// No optional operation.
    pub const NONE: Capabilities = Capabilities {
        copy: false,
        rename: false,
        append: false,
    };

    /// These capabilities with copy set to `on`.
    pub const fn with_copy(mut self, on: bool) -> Self {
        self.copy = on;
        self
    }

    /// These capabilities with rename set to `on`.
    pub const fn with_rename(mut self, on: bool) -> Self {
        self.rename = on;
        self
    }

    /// These capabilities with append set to `on`.
    pub const fn with_append(mut self, on: bool) -> Self {
        self.append = on;
        self
    }
}

/// One storage system, seen as a flat space of objects named by [`StorePath`]s.
///
/// Rules every backend keeps (the conformance suite in `tests/conformance` checks them):
///
/// - **Atomic writes.** [`put`](Store::put) and [`put_stream`](Store::put_stream) replace an
///   object whole: a reader sees the complete old content or the complete new content, never a
///   part. When several writers race on one path, the result is exactly one writer's content. A
///   `put_stream` whose stream fails (or that is dropped) leaves the previous state: nothing
///   readable or listed if there was no object.
/// - **Ranges.** [`get_range`](Store::get_range) clamps the end to the object's size, returns
///   empty bytes when `start == size` (or the range is empty), and fails with
///   [`Error::InvalidRange`] when `start > size` or `start > end`.
/// - **Listing.** [`list`](Store::list) yields every object below the prefix, recursively, in
///   ascending byte order of the path; prefixes match whole segments (`a` lists `a/x`, never
///   `ab/x`). Backends fetch the listing in pages, so memory stays bounded for large stores.
/// - **Delete.** Deleting a missing object fails with [`Error::NotFound`].
#[async_trait]
pub trait Store: Debug + Send + Sync {
    /// The backend's name: `memory`, `local`, ...
    fn name(&self) -> &str;

    /// A URL that names this store (see [`crate::open`]); it never holds credentials.
    fn url(&self) -> String;

    /// The optional operations this backend offers.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// Writes `bytes` as the whole content of `path`, replacing any object there.
    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta>;

    /// Writes the chunks of `stream` as the whole content of `path`, replacing any object there
    /// only once the stream has ended without error.
    async fn put_stream(&self, path: &StorePath, stream: ByteStream) -> Result<ObjectMeta>;

    /// Opens `path` for reading.
    async fn get(&self, path: &StorePath) -> Result<GetResult>;

    /// Reads `range` of `path` (see the trait's rules for ranges at and past the end).
    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes>;

    /// The metadata of `path`.
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta>;

    /// Every object below `prefix` (the whole store for `None`), recursively, in path order.
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>>;

    /// One level below `prefix`: its objects and its deeper prefixes.
    ///
    /// The default builds on [`list`](Store::list); backends that can read one level cheaply
    /// override it.
    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> Result<ListResult> {
        let mut all = self.list(prefix);
        let mut result = ListResult::default();
        while let Some(meta) = all.next().await {
            let meta = meta?;
            let below = match prefix {
                Some(p) => p.strip_prefix(&meta.path).unwrap_or(meta.path.as_str()),
                None => meta.path.as_str(),
            };
            match below.split_once('/') {
                None => result.objects.push(meta),
                Some((first, _)) => {
                    let common = match prefix {
                        Some(p) => p.join(first)?,
                        None => StorePath::parse(first)?,
                    };
                    if result.common_prefixes.last() != Some(&common) {
                        result.common_prefixes.push(common);
                    }
                }
            }
        }
        // Listing order puts `a b/x` before `a/x`, but the prefixes themselves sort `a` first.
        result.common_prefixes.sort();
        Ok(result)
    }

    /// Removes `path`; fails with [`Error::NotFound`] when there is no object there.
    async fn delete(&self, path: &StorePath) -> Result<()>;

    /// Copies `from` to `to`, replacing any object at `to`.
    async fn copy(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        let _ = (from, to);
        Err(Error::not_supported(self.name(), "copy"))
    }

    /// Moves `from` to `to`, replacing any object at `to`.
    async fn rename(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        let _ = (from, to);
        Err(Error::not_supported(self.name(), "rename"))
    }

    /// Adds `bytes` at the end of `path`, creating it when missing.
    async fn append(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        let _ = (path, bytes);
        Err(Error::not_supported(self.name(), "append"))
    }
}

/// The part of `size` bytes that `range` selects, by the rules on [`Store`].
pub(crate) fn clamp_range(path: &StorePath, range: Range<u64>, size: u64) -> Result<Range<u64>> {
    if range.start > size || range.start > range.end {
        return Err(Error::InvalidRange {
            path: path.to_string(),
            range,
            size,
        });
    }
    Ok(range.start..range.end.min(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clamp_at_the_end_and_fail_past_it() {
        let p = StorePath::parse("x").unwrap();
        assert_eq!(clamp_range(&p, 0..0, 10).unwrap(), 0..0);
        assert_eq!(clamp_range(&p, 9..10, 10).unwrap(), 9..10);
        assert_eq!(clamp_range(&p, 5..100, 10).unwrap(), 5..10);
        assert_eq!(clamp_range(&p, 10..20, 10).unwrap(), 10..10);
        assert!(matches!(
            clamp_range(&p, 11..20, 10),
            Err(Error::InvalidRange { size: 10, .. })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 5..3;
        assert!(matches!(
            clamp_range(&p, reversed, 10),
            Err(Error::InvalidRange { .. })
        ));
    }
}
