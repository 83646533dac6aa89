//! Recursive listings in path order, read from the filer one page of one directory at a time.
//!
//! The filer lists a directory's entries sorted by name, but path order puts a directory `d`
//! where `d/` sorts: after `d.txt` and `d e`, whose names sort after `d`. So a directory seen in a
//! page is held back until the next entry's key is greater than `d/`, then walked. Memory stays
//! bounded: one page per level of depth plus the directories held back (those whose names are
//! prefixes of the entries that follow).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};

use super::filer::{Entry, Filer};
use crate::error::Result;
use crate::path::StorePath;
use crate::store::ObjectMeta;

/// Entries per listing request.
pub(crate) const PAGE: usize = 1000;

/// What a directory entry is, for the store.
pub(crate) enum Item {
    Object(ObjectMeta),
    Dir(StorePath),
}

/// The store's view of `entry`, found in the directory holding store path `dir`; `None` for
/// names that are not valid path segments and for other kinds of entries (links).
pub(crate) fn item(entry: &Entry, dir: Option<&StorePath>) -> Option<Item> {
    let name = entry.name();
    let path = match dir {
        Some(d) => d.join(name).ok()?,
        None => StorePath::parse(name).ok()?,
    };
    if path.filename() != name {
        return None;
    }
    if entry.is_dir() {
        Some(Item::Dir(path))
    } else if entry.is_object() {
        Some(Item::Object(meta(entry, path)))
    } else {
        None
    }
}

pub(crate) fn meta(entry: &Entry, path: StorePath) -> ObjectMeta {
    ObjectMeta {
        path,
        size: entry.file_size,
        etag: entry.etag(),
        modified: entry.modified(),
    }
}

/// One directory being read.
struct Level {
    /// Its filer path.
    full: String,
    /// Its store path (`None`: the store's root).
    dir: Option<StorePath>,
    buffer: VecDeque<Item>,
    /// The last name fetched, where the next page starts.
    after: Option<String>,
    exhausted: bool,
    /// Directories seen but not yet walked, by their key `name/`.
    held: BTreeMap<String, StorePath>,
}

impl Level {
    fn new(full: String, dir: Option<StorePath>) -> Self {
        Level {
            full,
            dir,
            buffer: VecDeque::new(),
            after: None,
            exhausted: false,
            held: BTreeMap::new(),
        }
    }

    async fn fetch(&mut self, filer: &Filer) -> Result<()> {
        let entries = filer
            .list_page(&self.full, self.after.as_deref(), PAGE)
            .await?;
        self.exhausted = entries.len() < PAGE;
        if let Some(last) = entries.last() {
            self.after = Some(last.name().to_string());
        }
        self.buffer
            .extend(entries.iter().filter_map(|e| item(e, self.dir.as_ref())));
        Ok(())
    }
}

fn key(item: &Item) -> String {
    match item {
        Item::Object(meta) => meta.path.filename().to_string(),
        Item::Dir(path) => format!("{}/", path.filename()),
    }
}

/// A depth-first walk of the directory `full` (store path `dir`).
pub(crate) struct Walk {
    filer: Arc<Filer>,
    root: String,
    stack: Vec<Level>,
    started: bool,
}

impl Walk {
    /// `root` is the store's root on the filer; `start` the directory to walk below it.
    pub fn new(filer: Arc<Filer>, root: String, start: Option<StorePath>) -> Self {
        let full = full_path(&root, start.as_ref());
        Walk {
            filer,
            root,
            stack: vec![Level::new(full, start)],
            started: false,
        }
    }

    pub fn into_stream(self) -> BoxStream<'static, Result<ObjectMeta>> {
        stream::try_unfold(self, |mut walk| async move {
            let next = walk.next_object().await?;
            Ok(next.map(|meta| (meta, walk)))
        })
        .boxed()
    }

    async fn next_object(&mut self) -> Result<Option<ObjectMeta>> {
        if !self.started {
            self.started = true;
            let start = &self.stack[0].full;
            if !is_dir(&self.filer, start).await? {
                self.stack.clear();
            }
        }
        loop {
            let Some(level) = self.stack.last_mut() else {
                return Ok(None);
            };
            if level.buffer.is_empty() && !level.exhausted {
                level.fetch(&self.filer).await?;
                continue;
            }
            let next_key = level.buffer.front().map(key);
            let held_first = level
                .held
                .first_key_value()
                .is_some_and(|(held, _)| next_key.as_ref().is_none_or(|k| held < k));
            if held_first {
                let (_, dir) = level.held.pop_first().expect("checked above");
                let full = full_path(&self.root, Some(&dir));
                self.stack.push(Level::new(full, Some(dir)));
                continue;
            }
            match level.buffer.pop_front() {
                None => {
                    self.stack.pop();
                }
                Some(Item::Object(meta)) => return Ok(Some(meta)),
                Some(Item::Dir(dir)) => {
                    let k = format!("{}/", dir.filename());
                    level.held.insert(k, dir);
                }
            }
        }
    }
}

/// Whether `full` is a directory: only then may it be listed, since listing an object's path
/// answers its content.
pub(crate) async fn is_dir(filer: &Filer, full: &str) -> Result<bool> {
    Ok(filer.entry(full).await?.is_some_and(|e| e.is_dir()))
}

/// The filer path of store path `path` below `root`.
pub(crate) fn full_path(root: &str, path: Option<&StorePath>) -> String {
    match path {
        None => root.to_string(),
        Some(p) if root == "/" => format!("/{p}"),
        Some(p) => format!("{root}/{p}"),
    }
}
