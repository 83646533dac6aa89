//! `moon fs ls|cat|cp|rm|du`: objects in stores, named by URL (moon-storage through
//! moon-core). A URL names an object or a prefix; its store is rooted at the directory above
//! it (`moon_core::object_url`), so that nothing a store does reaches above what was named.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use moon_core::object_url::{self, Location};
use moon_core::storage::{self, ObjectMeta, Store, StorePath, StoreUrl, TenantStorage, redact};
use serde::Serialize;

use super::Context;
use crate::cli::{FsArgs, FsCommand};
use crate::exit::CliError;
use crate::output::{Table, format_utc};

/// Copies of at least this many bytes get a progress bar (on a terminal).
const PROGRESS_FROM_BYTES: u64 = 16 * 1024 * 1024;

/// How many deletes of `rm -r` run at once.
const DELETE_CONCURRENCY: usize = 16;

/// Runs one `moon fs` command.
pub async fn run(context: &Context, args: FsArgs) -> Result<(), CliError> {
    let stores = Stores {
        tenant: match &args.tenant {
            None => None,
            Some(tenant) => Some(context.client()?.storage(tenant).await?),
        },
    };
    let stores = &stores;
    match args.command {
        FsCommand::Ls {
            url,
            recursive,
            long,
        } => ls(context, stores, &url, recursive, long).await,
        FsCommand::Cat { urls } => {
            for url in &urls {
                cat(stores, url).await?;
            }
            Ok(())
        }
        FsCommand::Cp {
            src,
            dst,
            recursive,
            concurrency,
        } => cp(context, stores, &src, &dst, recursive, concurrency).await,
        FsCommand::Rm { urls, recursive } => rm(context, stores, &urls, recursive).await,
        FsCommand::Du { urls } => du(context, stores, &urls).await,
    }
}

/// How stores are opened: any URL as it is, or (`--tenant`) the platform's storage systems
/// only through a tenant's storage, which refuses what lies outside the tenant's part.
struct Stores {
    tenant: Option<TenantStorage>,
}

impl Stores {
    fn open(&self, store_url: &str) -> Result<Arc<dyn Store>, CliError> {
        match &self.tenant {
            // Local files and memory stores are the user's own, not the platform's.
            Some(tenant)
                if matches!(
                    StoreUrl::parse(store_url)?,
                    StoreUrl::SeaweedFs { .. } | StoreUrl::Hdfs { .. } | StoreUrl::Gluster { .. }
                ) =>
            {
                Ok(tenant.open(store_url)?)
            }
            _ => Ok(storage::open(store_url)?),
        }
    }
}

/// A URL as given, or the `file://` URL of a plain local path.
fn url_of(argument: &str) -> Result<String, CliError> {
    if argument.contains("://") {
        return Ok(argument.to_string());
    }
    object_url::local_url(Path::new(argument))
        .map_err(|error| CliError::Input(format!("{argument}: {error}")))
}

/// A store and a path in it (`None`: its root), and the URL for messages (no credentials).
struct Located {
    store: Arc<dyn Store>,
    path: Option<StorePath>,
    shown: String,
}

impl Located {
    /// Where `argument` points. For reading, a local directory that does not exist is not
    /// found (opening a `file://` store would create it).
    fn open(stores: &Stores, argument: &str, for_reading: bool) -> Result<Located, CliError> {
        let url = url_of(argument)?;
        let Location { store, path } = object_url::locate(&url)?;
        if for_reading
            && let StoreUrl::Local { root } = StoreUrl::parse(&store)?
            && !root.is_dir()
        {
            return Err(not_found(&url));
        }
        Ok(Located {
            store: stores.open(&store)?,
            path,
            shown: redact(&url),
        })
    }

    /// The objects below the path, recursively, with their paths relative to it; or the
    /// object at the path itself (named by its file name) when nothing is below it.
    async fn objects(&self) -> Result<Vec<(String, ObjectMeta)>, CliError> {
        let below: Vec<ObjectMeta> = self.store.list(self.path.as_ref()).try_collect().await?;
        let mut found: Vec<(String, ObjectMeta)> = below
            .into_iter()
            .map(|meta| (self.relative(&meta.path), meta))
            .collect();
        if found.is_empty()
            && let Some(meta) = self.object().await?
        {
            found.push((meta.path.filename().to_string(), meta));
        }
        Ok(found)
    }

    /// The object at the path itself, if there is one.
    async fn object(&self) -> Result<Option<ObjectMeta>, CliError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        match self.store.head(path).await {
            Ok(meta) => Ok(Some(meta)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// `path` relative to the located prefix.
    fn relative(&self, path: &StorePath) -> String {
        match &self.path {
            Some(prefix) => prefix
                .strip_prefix(path)
                .unwrap_or(path.as_str())
                .to_string(),
            None => path.to_string(),
        }
    }

    /// The path of `relative` below the located prefix.
    fn below(&self, relative: &str) -> Result<StorePath, CliError> {
        Ok(match &self.path {
            Some(prefix) => prefix.join(relative)?,
            None => StorePath::parse(relative)?,
        })
    }
}

fn not_found(url: &str) -> CliError {
    storage::Error::NotFound { path: redact(url) }.into()
}

/// One line of `ls`, as `-o json` prints it.
#[derive(Debug, Serialize)]
struct Entry {
    /// Relative to the listed prefix; prefixes end in `/`.
    name: String,
    /// `object` or `prefix`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    /// RFC 3339, UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<String>,
}

impl Entry {
    fn object(name: String, meta: &ObjectMeta) -> Entry {
        Entry {
            name,
            kind: "object",
            size: Some(meta.size),
            etag: meta.etag.clone(),
            modified: meta
                .modified
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map(|since| format_utc(since.as_millis() as i64)),
        }
    }

    fn prefix(name: String) -> Entry {
        Entry {
            name: format!("{name}/"),
            kind: "prefix",
            size: None,
            etag: None,
            modified: None,
        }
    }
}

async fn ls(
    context: &Context,
    stores: &Stores,
    url: &str,
    recursive: bool,
    long: bool,
) -> Result<(), CliError> {
    let located = Located::open(stores, url, true)?;
    let mut entries = Vec::new();
    if recursive {
        for (name, meta) in located.objects().await? {
            entries.push(Entry::object(name, &meta));
        }
    } else {
        let level = located
            .store
            .list_with_delimiter(located.path.as_ref())
            .await?;
        // Prefixes and objects together in name order, as `ls` shows a directory.
        let mut named: Vec<(String, Entry)> = level
            .objects
            .iter()
            .map(|meta| {
                let name = located.relative(&meta.path);
                (name.clone(), Entry::object(name, meta))
            })
            .chain(level.common_prefixes.iter().map(|prefix| {
                let name = located.relative(prefix);
                (format!("{name}/"), Entry::prefix(name))
            }))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        entries.extend(named.into_iter().map(|(_, entry)| entry));
        if entries.is_empty()
            && let Some(meta) = located.object().await?
        {
            entries.push(Entry::object(meta.path.filename().to_string(), &meta));
        }
    }
    if entries.is_empty() && located.path.is_some() {
        return Err(not_found(&located.shown));
    }
    if !context.out.is_table() {
        context.out.document(&entries)?;
    } else if long {
        let mut table = Table::new(&["SIZE", "MODIFIED", "NAME"]);
        for entry in &entries {
            table.row(vec![
                entry
                    .size
                    .map_or_else(|| "-".into(), |size| size.to_string()),
                entry.modified.clone().unwrap_or_else(|| "-".into()),
                entry.name.clone(),
            ]);
        }
        context.out.text(&table.render())?;
    } else {
        let names: String = entries
            .iter()
            .map(|entry| format!("{}\n", entry.name))
            .collect();
        context.out.text(&names)?;
    }
    Ok(())
}

async fn cat(stores: &Stores, url: &str) -> Result<(), CliError> {
    let object = object_url::split(&url_of(url)?)?;
    if let StoreUrl::Local { root } = StoreUrl::parse(&object.store)?
        && !root.is_dir()
    {
        return Err(not_found(url));
    }
    let store = stores.open(&object.store)?;
    let mut content = store.get(&object.path).await?.stream;
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = content.try_next().await? {
        stdout.write_all(&chunk)?;
    }
    stdout.flush()?;
    Ok(())
}

/// What `cp` prints with `-o json`.
#[derive(Debug, Serialize)]
struct Copied {
    objects: u64,
    bytes: u64,
}

async fn cp(
    context: &Context,
    stores: &Stores,
    src: &str,
    dst: &str,
    recursive: bool,
    concurrency: usize,
) -> Result<(), CliError> {
    if concurrency == 0 {
        return Err(CliError::Input("--concurrency must be at least 1".into()));
    }
    let source = Located::open(stores, src, true)?;
    let target = Located::open(stores, dst, false)?;
    // (source path, target path, size) of every copy.
    let mut plan: Vec<(StorePath, StorePath, u64)> = Vec::new();
    if recursive {
        for (relative, meta) in source.objects().await? {
            let to = if source.path.as_ref() == Some(&meta.path) {
                // SRC is one object: as without -r.
                target_of(&target, dst, relative.as_str())?
            } else {
                target.below(&relative)?
            };
            plan.push((meta.path, to, meta.size));
        }
        if plan.is_empty() {
            return Err(not_found(&source.shown));
        }
    } else {
        let Some(meta) = source.object().await? else {
            if source.path.is_some() && !source.objects().await?.is_empty() {
                return Err(CliError::Input(format!(
                    "{} is a prefix; copy it with -r",
                    source.shown
                )));
            }
            return Err(not_found(&source.shown));
        };
        let to = target_of(&target, dst, meta.path.filename())?;
        plan.push((meta.path, to, meta.size));
    }

    let total: u64 = plan.iter().map(|(_, _, size)| size).sum();
    let progress = progress_bar(total);
    let count = plan.len() as u64;
    stream::iter(plan)
        .map(|(from, to, _)| {
            let (source, target) = (&source.store, &target.store);
            let progress = progress.clone();
            async move {
                let content = source.get(&from).await?.stream;
                let counted = content
                    .inspect_ok(move |chunk| progress.inc(chunk.len() as u64))
                    .boxed();
                target.put_stream(&to, counted).await?;
                Ok::<_, CliError>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    progress.finish_and_clear();

    if context.out.is_table() {
        context
            .out
            .text(&format!("copied {count} object(s), {total} bytes"))?;
    } else {
        context.out.document(&Copied {
            objects: count,
            bytes: total,
        })?;
    }
    Ok(())
}

/// Where one object named `name` goes: into DST when DST is a root or ends in `/`, else DST.
fn target_of(target: &Located, dst: &str, name: &str) -> Result<StorePath, CliError> {
    match &target.path {
        Some(path) if !dst.split('?').next().unwrap_or(dst).ends_with('/') => Ok(path.clone()),
        _ => target.below(name),
    }
}

/// A byte-counting bar on stderr for a large copy to a terminal; a hidden one otherwise.
fn progress_bar(total: u64) -> ProgressBar {
    if total < PROGRESS_FROM_BYTES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bytes:>10}/{total_bytes:10} [{bar:30}] {bytes_per_sec:>12} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// What `rm` prints with `-o json`.
#[derive(Debug, Serialize)]
struct Removed {
    url: String,
    objects: u64,
}

async fn rm(
    context: &Context,
    stores: &Stores,
    urls: &[String],
    recursive: bool,
) -> Result<(), CliError> {
    let mut removed = Vec::new();
    for url in urls {
        let located = Located::open(stores, url, true)?;
        let count = if recursive {
            if located.path.is_none() {
                return Err(CliError::Input(format!(
                    "refusing to remove every object of the store {}; name a prefix",
                    located.shown
                )));
            }
            let objects = located.objects().await?;
            if objects.is_empty() {
                return Err(not_found(&located.shown));
            }
            let count = objects.len() as u64;
            stream::iter(objects)
                .map(|(_, meta)| {
                    let store = &located.store;
                    async move { store.delete(&meta.path).await }
                })
                .buffer_unordered(DELETE_CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
            // An object at the prefix itself goes too, as `rm -r` removes what it names.
            if let Some(meta) = located.object().await? {
                located.store.delete(&meta.path).await?;
                count + 1
            } else {
                count
            }
        } else {
            let Some(path) = &located.path else {
                return Err(CliError::Input(format!(
                    "{} names a store, not an object",
                    located.shown
                )));
            };
            match located.store.delete(path).await {
                Ok(()) => 1,
                Err(error) if error.is_not_found() => return Err(not_found(&located.shown)),
                Err(error) => return Err(error.into()),
            }
        };
        removed.push(Removed {
            url: located.shown,
            objects: count,
        });
    }
    if context.out.is_table() {
        let lines: String = removed
            .iter()
            .map(|r| format!("removed {} object(s) at {}\n", r.objects, r.url))
            .collect();
        context.out.text(&lines)?;
    } else {
        context.out.document(&removed)?;
    }
    Ok(())
}

/// One line of `du`.
#[derive(Debug, Serialize)]
struct Usage {
    url: String,
    objects: u64,
    bytes: u64,
}

async fn du(context: &Context, stores: &Stores, urls: &[String]) -> Result<(), CliError> {
    let mut usages = Vec::new();
    for url in urls {
        let located = Located::open(stores, url, true)?;
        let mut usage = Usage {
            url: located.shown.clone(),
            objects: 0,
            bytes: 0,
        };
        let mut listed = located.store.list(located.path.as_ref());
        while let Some(meta) = listed.try_next().await? {
            usage.objects += 1;
            usage.bytes += meta.size;
        }
        if usage.objects == 0 {
            match located.object().await? {
                Some(meta) => (usage.objects, usage.bytes) = (1, meta.size),
                None if located.path.is_some() => return Err(not_found(&located.shown)),
                None => {}
            }
        }
        usages.push(usage);
    }
    if context.out.is_table() {
        let mut table = Table::new(&["OBJECTS", "BYTES", "SIZE", "URL"]);
        for usage in &usages {
            table.row(vec![
                usage.objects.to_string(),
                usage.bytes.to_string(),
                human_bytes(usage.bytes),
                usage.url.clone(),
            ]);
        }
        context.out.text(&table.render())?;
    } else {
        context.out.document(&usages)?;
    }
    Ok(())
}

/// `1536` → `1.5 KiB`, in binary units as `ls -h` shows them.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn plain_paths_are_local_files() {
        assert_eq!(url_of("/data/x y").unwrap(), "file:///data/x%20y");
        assert_eq!(url_of("hdfs://nn/x").unwrap(), "hdfs://nn/x");
    }
}
