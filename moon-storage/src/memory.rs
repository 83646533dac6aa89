//! A store held in process memory: for tests, examples and scratch data.
//!
//! `memory://NAME` names a store shared by everything in the process that opens the same name;
//! `memory://` opens a fresh, unnamed one. Content lives as long as the process.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, Range};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::path::StorePath;
use crate::store::{
    ByteStream, Capabilities, GetResult, ListResult, ObjectMeta, Store, clamp_range,
};

/// How many entries one listing page holds: the lock is held for one page at a time.
const LIST_PAGE: usize = 1000;
/// Chunk size of the streams `get` returns.
const READ_CHUNK: usize = 1 << 20;

/// Etags count writes across every memory store, so a replaced object never gets its old tag.
static NEXT_ETAG: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    etag: u64,
    modified: SystemTime,
}

impl Object {
    fn new(data: Bytes) -> Self {
        Object {
            data,
            etag: NEXT_ETAG.fetch_add(1, Ordering::Relaxed),
            modified: SystemTime::now(),
        }
    }

    fn meta(&self, path: StorePath) -> ObjectMeta {
        ObjectMeta {
            path,
            size: self.data.len() as u64,
            etag: Some(format!("{:x}", self.etag)),
            modified: Some(self.modified),
        }
    }
}

type Objects = RwLock<BTreeMap<String, Object>>;

/// A store in process memory. Clones share the same objects.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    name: Option<String>,
    objects: Arc<Objects>,
}

impl MemoryStore {
    /// A fresh, empty, unnamed store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide store called `name`, created empty on first use.
    pub fn named(name: &str) -> Self {
        static NAMED: OnceLock<Mutex<HashMap<String, Arc<Objects>>>> = OnceLock::new();
        let mut named = NAMED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let objects = named.entry(name.to_string()).or_default().clone();
        MemoryStore {
            name: Some(name.to_string()),
            objects,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Object>> {
        // A panic while holding the lock cannot leave a half-written object (inserts are whole),
        // so a poisoned lock is still consistent.
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Object>> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    fn object(&self, path: &StorePath) -> Result<Object> {
        self.read()
            .get(path.as_str())
            .cloned()
            .ok_or_else(|| not_found(path))
    }

    fn insert(&self, path: &StorePath, data: Bytes) -> ObjectMeta {
        let object = Object::new(data);
        let meta = object.meta(path.clone());
        self.write().insert(path.to_string(), object);
        meta
    }
}

fn not_found(path: &StorePath) -> Error {
    Error::NotFound {
        path: path.to_string(),
    }
}

/// The keys strictly below `prefix` start with `prefix/`, and in byte order they are contiguous.
fn key_prefix(prefix: Option<&StorePath>) -> String {
    prefix.map(|p| format!("{p}/")).unwrap_or_default()
}

#[async_trait]
impl Store for MemoryStore {
    fn name(&self) -> &str {
        "memory"
    }

    fn url(&self) -> String {
        format!("memory://{}", self.name.as_deref().unwrap_or(""))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_copy(true)
            .with_rename(true)
            .with_append(true)
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        Ok(self.insert(path, bytes))
    }

    async fn put_stream(&self, path: &StorePath, stream: ByteStream) -> Result<ObjectMeta> {
        let data = stream
            .try_fold(BytesMut::new(), |mut buf, chunk| async move {
                buf.extend_from_slice(&chunk);
                Ok(buf)
            })
            .await?;
        Ok(self.insert(path, data.freeze()))
    }

    async fn get(&self, path: &StorePath) -> Result<GetResult> {
        let object = self.object(path)?;
        let meta = object.meta(path.clone());
        let data = object.data;
        let chunks: Vec<Result<Bytes>> = (0..data.len())
            .step_by(READ_CHUNK)
            .map(|start| Ok(data.slice(start..(start + READ_CHUNK).min(data.len()))))
            .collect();
        Ok(GetResult {
            meta,
            stream: stream::iter(chunks).boxed(),
        })
    }

    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        let object = self.object(path)?;
        let range = clamp_range(path, range, object.data.len() as u64)?;
        // The clamped range lies within a Bytes in memory, so it fits in usize.
        Ok(object.data.slice(range.start as usize..range.end as usize))
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        Ok(self.object(path)?.meta(path.clone()))
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let store = self.clone();
        let wanted = key_prefix(prefix);
        let first = Bound::Included(wanted.clone());
        stream::unfold(Some(first), move |from| {
            let store = store.clone();
            let wanted = wanted.clone();
            async move {
                let from = from?;
                let page: Vec<(String, ObjectMeta)> = store
                    .read()
                    .range((from, Bound::Unbounded))
                    .take_while(|(key, _)| key.starts_with(&wanted))
                    .take(LIST_PAGE)
                    .map(|(key, object)| {
                        // Keys were validated as StorePaths when inserted.
                        let path = StorePath::parse(key).expect("stored keys are valid paths");
                        (key.clone(), object.meta(path))
                    })
                    .collect();
                let next = match page.last() {
                    Some((key, _)) if page.len() == LIST_PAGE => Some(Bound::Excluded(key.clone())),
                    _ => None,
                };
                let metas: Vec<Result<ObjectMeta>> =
                    page.into_iter().map(|(_, meta)| Ok(meta)).collect();
                Some((stream::iter(metas), next))
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> Result<ListResult> {
        let wanted = key_prefix(prefix);
        let objects = self.read();
        let mut result = ListResult::default();
        let mut keys = objects.range::<String, _>((Bound::Included(&wanted), Bound::Unbounded));
        while let Some((key, object)) = keys.next() {
            let Some(below) = key.strip_prefix(&wanted) else {
                break;
            };
            match below.split_once('/') {
                None => result.objects.push(object.meta(StorePath::parse(key)?)),
                Some((first, _)) => {
                    let common = format!("{wanted}{first}");
                    result.common_prefixes.push(StorePath::parse(&common)?);
                    // Everything below `common/` sorts together: skip past it in one step.
                    let past = format!("{common}0"); // '0' is the byte after '/'
                    keys = objects.range::<String, _>((Bound::Included(&past), Bound::Unbounded));
                }
            }
        }
        result.common_prefixes.sort();
        Ok(result)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.write()
            .remove(path.as_str())
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    async fn copy(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        let data = self.object(from)?.data;
        Ok(self.insert(to, data))
    }

    async fn rename(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        let mut objects = self.write();
        let object = objects
            .remove(from.as_str())
            .ok_or_else(|| not_found(from))?;
        let meta = object.meta(to.clone());
        objects.insert(to.to_string(), object);
        Ok(meta)
    }

    async fn append(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        let mut objects = self.write();
        let mut data = BytesMut::new();
        if let Some(old) = objects.get(path.as_str()) {
            data.extend_from_slice(&old.data);
        }
        data.extend_from_slice(&bytes);
        let object = Object::new(data.freeze());
        let meta = object.meta(path.clone());
        objects.insert(path.to_string(), object);
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn named_stores_share_objects_and_fresh_ones_do_not() {
        let p = StorePath::parse("x").unwrap();
        MemoryStore::named("memory-unit-shared")
            .put(&p, Bytes::from_static(b"1"))
            .await
            .unwrap();
        let again = MemoryStore::named("memory-unit-shared");
        assert_eq!(again.get(&p).await.unwrap().bytes().await.unwrap(), "1");
        assert_eq!(again.url(), "memory://memory-unit-shared");
        assert!(
            MemoryStore::new()
                .head(&p)
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(
            MemoryStore::named("memory-unit-other")
                .head(&p)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
}
