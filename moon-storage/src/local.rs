//! A store in a local directory (`file:///abs/dir`).
//!
//! Objects are files below the root; `a/b/c` is the file `ROOT/a/b/c`. Writes go to a temporary
//! file in the target's own directory, are flushed to disk, and are then renamed over the target,
//! so readers see whole objects only and a crash leaves the old object or the new one. Temporary
//! files are named with [`PARTIAL_PREFIX`]; listings never show them, and paths with a segment
//! that starts with it are refused.
//!
//! Differences from object stores, as a filesystem imposes them: `a` and `a/b` cannot both be
//! objects (the second write fails with [`Error::PreconditionFailed`]); listings read one
//! directory at a time and skip files whose names are not valid [`StorePath`] segments; a symbolic
//! link inside the root is followed only while its target stays inside the root, and any path
//! that would leave it is refused with [`Error::PermissionDenied`].

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::path::StorePath;
use crate::store::{
    ByteStream, Capabilities, GetResult, ListResult, ObjectMeta, Store, clamp_range,
};

/// Name prefix of the temporary files that writes go through.
pub const PARTIAL_PREFIX: &str = ".moon-partial-";
const BACKEND: &str = "local";
const READ_CHUNK: usize = 256 * 1024;

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A store rooted at a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: Arc<PathBuf>,
}

impl LocalStore {
    /// A store at the absolute directory `root`, created (with its parents) when missing.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        if !root.is_absolute() {
            return Err(Error::InvalidUrl {
                url: root.display().to_string(),
                reason: "a local store's root must be an absolute path".to_string(),
            });
        }
        let shown = root.display().to_string();
        if root.exists() && !root.is_dir() {
            return Err(Error::PreconditionFailed {
                path: shown,
                message: "the store's root is not a directory".to_string(),
            });
        }
        fs::create_dir_all(root).map_err(|e| root_error(e, &shown))?;
        let root = fs::canonicalize(root).map_err(|e| root_error(e, &shown))?;
        Ok(LocalStore {
            root: Arc::new(root),
        })
    }

    /// The directory objects live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || work(&root))
            .await
            .map_err(|e| unavailable(&format!("worker thread failed: {e}")))?
    }
}

fn unavailable(message: &str) -> Error {
    Error::Unavailable {
        backend: BACKEND.to_string(),
        message: message.to_string(),
    }
}

fn root_error(e: io::Error, root: &str) -> Error {
    match e.kind() {
        ErrorKind::PermissionDenied => Error::PermissionDenied {
            path: root.to_string(),
            message: e.to_string(),
        },
        _ => unavailable(&format!("cannot open the store's root {root}: {e}")),
    }
}

/// The one place operating-system errors become store errors.
fn io_error(e: io::Error, path: &StorePath) -> Error {
    let path = path.to_string();
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory => {
            Error::NotFound { path }
        }
        ErrorKind::PermissionDenied => Error::PermissionDenied {
            path,
            message: e.to_string(),
        },
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            Error::QuotaExceeded {
                message: format!("writing '{path}': {e}"),
            }
        }
        _ => unavailable(&format!("'{path}': {e}")),
    }
}

fn escapes(path: &StorePath) -> Error {
    Error::PermissionDenied {
        path: path.to_string(),
        message: "a symbolic link leads outside the store's root".to_string(),
    }
}

fn check_reserved(path: &StorePath) -> Result<()> {
    if path.segments().any(|s| s.starts_with(PARTIAL_PREFIX)) {
        return Err(Error::InvalidPath {
            path: path.to_string(),
            reason: format!(
                "names starting with '{PARTIAL_PREFIX}' are reserved for uploads in progress"
            ),
        });
    }
    Ok(())
}

/// The file of an existing object, after checking that no symbolic link leads it out of `root`.
fn existing_file(root: &Path, path: &StorePath) -> Result<PathBuf> {
    check_reserved(path)?;
    let full = root.join(path.as_str());
    let real = fs::canonicalize(&full).map_err(|e| io_error(e, path))?;
    if !real.starts_with(root) {
        return Err(escapes(path));
    }
    Ok(full)
}

/// Makes the directory that will hold `path`, refusing to create anything through a symbolic link
/// that leaves `root` or below an existing object. Returns the directory and the target file.
fn prepare_target(root: &Path, path: &StorePath) -> Result<(PathBuf, PathBuf)> {
    check_reserved(path)?;
    let full = root.join(path.as_str());
    let dir = full.parent().unwrap_or(root).to_path_buf();
    // Walk up to the deepest part of the path that exists and check where it really is.
    let mut existing: &Path = &full;
    while fs::symlink_metadata(existing).is_err() && existing != root {
        existing = existing.parent().unwrap_or(root);
    }
    let real = fs::canonicalize(existing).map_err(|e| io_error(e, path))?;
    if !real.starts_with(root) {
        return Err(escapes(path));
    }
    if existing == full {
        if real.is_dir() {
            return Err(Error::PreconditionFailed {
                path: path.to_string(),
                message: "other objects are stored below this path".to_string(),
            });
        }
    } else if !real.is_dir() {
        let blocker = existing.strip_prefix(root).unwrap_or(existing).display();
        return Err(Error::PreconditionFailed {
            path: path.to_string(),
            message: format!("'{blocker}' is an object, so it cannot hold objects below it"),
        });
    }
    fs::create_dir_all(&dir).map_err(|e| match e.kind() {
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => Error::PreconditionFailed {
            path: path.to_string(),
            message: "a parent of this path is an object".to_string(),
        },
        _ => io_error(e, path),
    })?;
    Ok((dir, full))
}

/// Removes the directories that held `path`, from the deepest up, while they are empty.
fn remove_empty_parents(root: &Path, path: &StorePath) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        // Fails harmlessly when the directory is not empty or a writer just refilled it.
        if fs::remove_dir(root.join(d.as_str())).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn meta_of(path: StorePath, md: &fs::Metadata) -> ObjectMeta {
    // A write makes a new file and renames it into place, so the inode changes with every write;
    // mtime and size guard against inode reuse.
    let etag = format!(
        "{:x}-{:x}.{:x}-{:x}",
        md.ino(),
        md.mtime(),
        md.mtime_nsec(),
        md.size()
    );
    ObjectMeta {
        path,
        size: md.size(),
        etag: Some(etag),
        modified: md.modified().ok(),
    }
}

/// A temporary file that is removed unless it was committed, so a failed or dropped upload
/// leaves nothing behind: neither the file nor the directories made for it.
struct Partial {
    temp: Option<PathBuf>,
    root: PathBuf,
    path: StorePath,
}

impl Partial {
    fn create(root: &Path, dir: &Path, path: &StorePath) -> io::Result<(Partial, File)> {
        let name = format!(
            "{PARTIAL_PREFIX}{}-{}",
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        );
        let temp = dir.join(name);
        let file = File::options().write(true).create_new(true).open(&temp)?;
        let partial = Partial {
            temp: Some(temp),
            root: root.to_path_buf(),
            path: path.clone(),
        };
        Ok((partial, file))
    }

    /// Flushes `file` to disk and renames it over `target`; then flushes the directory entry.
    fn commit(mut self, file: File, dir: &Path, target: &Path) -> Result<ObjectMeta> {
        let path = self.path.clone();
        file.sync_all().map_err(|e| io_error(e, &path))?;
        let md = file.metadata().map_err(|e| io_error(e, &path))?;
        drop(file);
        let temp = self
            .temp
            .as_ref()
            .expect("a partial file is committed once");
        fs::rename(temp, target).map_err(|e| match e.kind() {
            ErrorKind::IsADirectory | ErrorKind::DirectoryNotEmpty => Error::PreconditionFailed {
                path: path.to_string(),
                message: "other objects are stored below this path".to_string(),
            },
            _ => io_error(e, &path),
        })?;
        self.temp = None;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(e, &path))?;
        Ok(meta_of(path, &md))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
            remove_empty_parents(&self.root, &self.path);
        }
    }
}

/// Creates the target's directory and a temporary file in it. A concurrent delete or failed
/// upload may remove the fresh, still empty directory before the file is made, so that case is
/// retried.
fn start_upload(root: &Path, path: &StorePath) -> Result<(Partial, File, PathBuf, PathBuf)> {
    let mut attempts = 0;
    loop {
        let (dir, target) = prepare_target(root, path)?;
        match Partial::create(root, &dir, path) {
            Ok((partial, file)) => return Ok((partial, file, dir, target)),
            Err(e) if e.kind() == ErrorKind::NotFound && attempts < 5 => attempts += 1,
            Err(e) => return Err(io_error(e, path)),
        }
    }
}

fn open_object(root: &Path, path: &StorePath) -> Result<(File, fs::Metadata)> {
    let full = existing_file(root, path)?;
    let file = File::open(full).map_err(|e| io_error(e, path))?;
    let md = file.metadata().map_err(|e| io_error(e, path))?;
    if !md.is_file() {
        return Err(Error::NotFound {
            path: path.to_string(),
        });
    }
    Ok((file, md))
}

#[async_trait]
impl Store for LocalStore {
    fn name(&self) -> &str {
        BACKEND
    }

    fn url(&self) -> String {
        file_url(&self.root)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_copy(true).with_rename(true)
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<ObjectMeta> {
        let path = path.clone();
        self.blocking(move |root| {
            let (partial, mut file, dir, target) = start_upload(root, &path)?;
            file.write_all(&bytes).map_err(|e| io_error(e, &path))?;
            partial.commit(file, &dir, &target)
        })
        .await
    }

    async fn put_stream(&self, path: &StorePath, mut stream: ByteStream) -> Result<ObjectMeta> {
        let owned = path.clone();
        let (partial, file, dir, target) = self
            .blocking(move |root| start_upload(root, &owned))
            .await?;
        let mut file = tokio::fs::File::from_std(file);
        while let Some(chunk) = stream.next().await {
            // On an error, or if this future is dropped, `partial` removes the temporary file.
            let chunk = chunk?;
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error(e, path))?;
        }
        file.flush().await.map_err(|e| io_error(e, path))?;
        let file = file.into_std().await;
        self.blocking(move |_| partial.commit(file, &dir, &target))
            .await
    }

    async fn get(&self, path: &StorePath) -> Result<GetResult> {
        let owned = path.clone();
        let (file, md) = self.blocking(move |root| open_object(root, &owned)).await?;
        let meta = meta_of(path.clone(), &md);
        // Writes replace the file rather than change it, so the open file holds this version
        // until it is closed.
        let file = tokio::fs::File::from_std(file);
        let path = path.clone();
        let body = stream::try_unfold((file, meta.size), move |(mut file, left)| {
            let path = path.clone();
            async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
                let mut buf = BytesMut::with_capacity(want);
                while buf.len() < want {
                    let n = (&mut file)
                        .take((want - buf.len()) as u64)
                        .read_buf(&mut buf)
                        .await
                        .map_err(|e| io_error(e, &path))?;
                    if n == 0 {
                        return Err(unavailable(&format!(
                            "'{path}' ended before its recorded size"
                        )));
                    }
                }
                Ok(Some((buf.freeze(), (file, left - want as u64))))
            }
        });
        Ok(GetResult {
            meta,
            stream: body.boxed(),
        })
    }

    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        let path = path.clone();
        self.blocking(move |root| {
            let (file, md) = open_object(root, &path)?;
            let range = clamp_range(&path, range, md.size())?;
            let len =
                usize::try_from(range.end - range.start).map_err(|_| Error::QuotaExceeded {
                    message: format!("a range of '{path}' does not fit in memory"),
                })?;
            let mut buf = vec![0; len];
            file.read_exact_at(&mut buf, range.start)
                .map_err(|e| io_error(e, &path))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let path = path.clone();
        self.blocking(move |root| {
            let (_, md) = open_object(root, &path)?;
            Ok(meta_of(path, &md))
        })
        .await
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let walk = Walk {
            root: self.root.clone(),
            pending: vec![VecDeque::from([Entry::Dir(prefix.cloned())])],
        };
        stream::try_unfold(walk, |mut walk| async move {
            let next = tokio::task::spawn_blocking(move || {
                let next = walk.next_object();
                next.map(|meta| meta.map(|m| (m, walk)))
            })
            .await
            .map_err(|e| unavailable(&format!("worker thread failed: {e}")))?;
            next.transpose()
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> Result<ListResult> {
        let prefix = prefix.cloned();
        self.blocking(move |root| {
            let mut result = ListResult::default();
            for entry in read_level(root, prefix.as_ref())? {
                match entry {
                    Entry::File(meta) => result.objects.push(meta),
                    Entry::Dir(Some(dir)) => result.common_prefixes.push(dir),
                    Entry::Dir(None) => {}
                }
            }
            result.common_prefixes.sort();
            Ok(result)
        })
        .await
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let path = path.clone();
        self.blocking(move |root| {
            let full = existing_file(root, &path)?;
            let md = fs::metadata(&full).map_err(|e| io_error(e, &path))?;
            if !md.is_file() {
                return Err(Error::NotFound {
                    path: path.to_string(),
                });
            }
            fs::remove_file(&full).map_err(|e| io_error(e, &path))?;
            remove_empty_parents(root, &path);
            Ok(())
        })
        .await
    }

    async fn copy(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        let (from, to) = (from.clone(), to.clone());
        self.blocking(move |root| {
            let (mut source, _) = open_object(root, &from)?;
            let (partial, mut file, dir, target) = start_upload(root, &to)?;
            io::copy(&mut source, &mut file).map_err(|e| io_error(e, &to))?;
            partial.commit(file, &dir, &target)
        })
        .await
    }

    async fn rename(&self, from: &StorePath, to: &StorePath) -> Result<ObjectMeta> {
        let (from, to) = (from.clone(), to.clone());
        self.blocking(move |root| {
            let (_, md) = open_object(root, &from)?;
            if from == to {
                return Ok(meta_of(to, &md));
            }
            let source = root.join(from.as_str());
            let (dir, target) = prepare_target(root, &to)?;
            fs::rename(&source, &target).map_err(|e| io_error(e, &from))?;
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(e, &to))?;
            remove_empty_parents(root, &from);
            let md = fs::metadata(&target).map_err(|e| io_error(e, &to))?;
            Ok(meta_of(to, &md))
        })
        .await
    }
}

/// The `file://` URL of an absolute directory, with bytes outside the unreserved set encoded.
pub(crate) fn file_url(dir: &Path) -> String {
    let mut url = String::from("file://");
    for &b in dir.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// One thing found in a directory, during a walk.
enum Entry {
    /// An object.
    File(ObjectMeta),
    /// A directory still to read; `None` is the root.
    Dir(Option<StorePath>),
}

/// A depth-first walk that reads one directory at a time.
///
/// Each directory's entries are sorted with a directory `d` keyed as `d/`, which makes the
/// depth-first order the byte order of the full paths.
struct Walk {
    root: Arc<PathBuf>,
    pending: Vec<VecDeque<Entry>>,
}

impl Walk {
    fn next_object(&mut self) -> Option<Result<ObjectMeta>> {
        loop {
            let level = self.pending.last_mut()?;
            match level.pop_front() {
                None => {
                    self.pending.pop();
                }
                Some(Entry::File(meta)) => return Some(Ok(meta)),
                Some(Entry::Dir(dir)) => match read_level(&self.root, dir.as_ref()) {
                    Ok(entries) => self.pending.push(entries.into()),
                    Err(e) => {
                        self.pending.clear();
                        return Some(Err(e));
                    }
                },
            }
        }
    }
}

/// The objects and subdirectories directly in `dir`, in path order. A missing directory, or one
/// that is an object, holds nothing.
fn read_level(root: &Path, dir: Option<&StorePath>) -> Result<Vec<Entry>> {
    let full = match dir {
        Some(d) => {
            check_reserved(d)?;
            let full = root.join(d.as_str());
            match fs::canonicalize(&full) {
                Ok(real) if !real.starts_with(root) => return Err(escapes(d)),
                Ok(real) if real.is_dir() => full,
                Ok(_) => return Ok(Vec::new()),
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(io_error(e, d)),
            }
        }
        None => root.to_path_buf(),
    };
    let shown = dir.map(|d| d.to_string()).unwrap_or_default();
    let listing_error = |e: io::Error| match dir {
        Some(d) => io_error(e, d),
        None => unavailable(&format!("cannot list the store's root: {e}")),
    };
    let reader = match fs::read_dir(&full) {
        Ok(reader) => reader,
        // Removed since it was found: a concurrent delete emptied it.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(listing_error(e)),
    };
    let mut found: Vec<(String, Entry)> = Vec::new();
    for item in reader {
        let item = item.map_err(listing_error)?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if name.starts_with(PARTIAL_PREFIX) {
            continue;
        }
        let joined = if shown.is_empty() {
            StorePath::parse(&name)
        } else {
            StorePath::parse(&format!("{shown}/{name}"))
        };
        let Ok(path) = joined else {
            continue;
        };
        let Ok(kind) = item.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.push((format!("{name}/"), Entry::Dir(Some(path))));
        } else if kind.is_file() {
            if let Ok(md) = item.metadata() {
                found.push((name, Entry::File(meta_of(path, &md))));
            }
        } else if kind.is_symlink() {
            // Only links to files that stay inside the root are objects; directory links are not
            // walked, which also keeps link cycles out of listings.
            let inside = fs::canonicalize(item.path())
                .ok()
                .filter(|real| real.starts_with(root));
            if let Some(md) = inside.and_then(|real| fs::metadata(real).ok()) {
                if md.is_file() {
                    found.push((name, Entry::File(meta_of(path, &md))));
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().map(|(_, entry)| entry).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operating_system_errors_keep_their_meaning() {
        let path = StorePath::parse("runs/x").unwrap();
        let of = |kind: ErrorKind| io_error(io::Error::from(kind), &path);
        assert!(of(ErrorKind::NotFound).is_not_found());
        assert!(of(ErrorKind::NotADirectory).is_not_found());
        assert!(matches!(
            of(ErrorKind::PermissionDenied),
            Error::PermissionDenied { path, .. } if path == "runs/x"
        ));
        assert!(matches!(
            of(ErrorKind::StorageFull),
            Error::QuotaExceeded { .. }
        ));
        assert!(matches!(
            of(ErrorKind::QuotaExceeded),
            Error::QuotaExceeded { .. }
        ));
        // Anything else is the backend being unable to serve, in the system's own words.
        // EIO is 5 on every Unix.
        let eio = io_error(io::Error::from_raw_os_error(5), &path);
        match eio {
            Error::Unavailable { backend, message } => {
                assert_eq!(backend, "local");
                assert!(
                    message.contains("runs/x") && message.contains("error"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
