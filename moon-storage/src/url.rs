//! Store URLs: which backend, and where.
//!
//! | scheme | form | backend |
//! |---|---|---|
//! | `memory` | `memory://` (fresh) or `memory://NAME` (shared in the process) | [`MemoryStore`] |
//! | `file` | `file:///abs/dir` | [`LocalStore`] |
//! | `seaweedfs` | `seaweedfs://filer-host[:port]/path[?master=host:port&collection=NAME]` (port 8888 by default) | [`SeaweedStore`] |
//! | `hdfs` | `hdfs://namenode[:port]/path` (port 8020 by default) | [`HdfsStore`] rooted at `/path`, with Hadoop's configuration from `$HADOOP_CONF_DIR` (see [`HdfsOptions`]) |
//! | `gluster` | `gluster://host[:port]/volume[/path]` (port 24007 by default) | [`GlusterStore`] rooted at `/path` of the volume, mounted with FUSE unless it is mounted already (see [`crate::gluster`]) |
//!
//! Only `seaweedfs` URLs take a query: `master` (the master server, needed for the blob API of
//! [`SeaweedStore::blobs`]) and `collection` (where the store's data goes).
//!
//! Paths in URLs are percent-decoded (`%20` is a space). User information (`user:secret@host`)
//! is accepted by the parser but never shown: errors and [`Store::url`] replace it with `***`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gluster::{GlusterOptions, GlusterStore};
use crate::hdfs::{HdfsOptions, HdfsStore};
use crate::local::LocalStore;
use crate::memory::MemoryStore;
use crate::seaweedfs::{SeaweedOptions, SeaweedStore};
use crate::server::Server;
use crate::store::Store;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// `memory://[NAME]`: `None` opens a fresh store.
    Memory {
        /// The shared store's name.
        name: Option<String>,
    },
    /// `file:///abs/dir`.
    Local {
        /// The absolute directory.
        root: PathBuf,
    },
    /// `seaweedfs://filer-host[:port]/path[?master=host:port&collection=NAME]`: a SeaweedFS
    /// filer.
    SeaweedFs {
        /// The filer's address.
        server: Server,
        /// The directory on the filer the store is rooted at (`/` for the whole filer).
        root: String,
        /// The master server (`?master=host:port`, port 9333 by default), for the blob API.
        master: Option<Server>,
        /// The collection the store's data is written to (`?collection=NAME`).
        collection: Option<String>,
    },
    /// `hdfs://namenode[:port]/path`.
    Hdfs {
        /// The namenode's address.
        server: Server,
        /// The HDFS directory the store is rooted at.
        root: String,
    },
    /// `gluster://host/volume[/path]`.
    Gluster {
        /// A server of the trusted pool.
        server: Server,
        /// The volume's name.
        volume: String,
        /// The directory inside the volume the store is rooted at.
        root: String,
    },
}

/// Opens the store `url` names (see the module docs for the schemes).
///
/// ```
/// # tokio_test_block_on(async {
/// let store = moon_storage::open("memory://docs-example").unwrap();
/// assert_eq!(store.name(), "memory");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub fn open(url: &str) -> Result<Arc<dyn Store>> {
    match StoreUrl::parse(url)? {
        StoreUrl::Memory { name: None } => Ok(Arc::new(MemoryStore::new())),
        StoreUrl::Memory { name: Some(name) } => Ok(Arc::new(MemoryStore::named(&name))),
        StoreUrl::Local { root } => Ok(Arc::new(LocalStore::new(root)?)),
        StoreUrl::SeaweedFs {
            server,
            root,
            master,
            collection,
        } => {
            let options = SeaweedOptions {
                master,
                collection,
                ..SeaweedOptions::default()
            };
            Ok(Arc::new(SeaweedStore::new(server, &root, options)?))
        }
        StoreUrl::Hdfs { server, root } => Ok(Arc::new(HdfsStore::new(
            server,
            &root,
            HdfsOptions::default(),
        )?)),
        StoreUrl::Gluster {
            server,
            volume,
            root,
        } => Ok(Arc::new(GlusterStore::new(
            server,
            &volume,
            &root,
            GlusterOptions::default(),
        )?)),
    }
}

impl StoreUrl {
    /// Parses `url`; a malformed one is an [`Error::InvalidUrl`] that says what is wrong.
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: redact(url),
            reason: reason.to_string(),
        };
        if url.chars().any(char::is_control) {
            return Err(bad("control characters are not allowed"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected SCHEME://..., e.g. file:///data or memory://"))?;
        if rest.contains('#') {
            return Err(bad("fragments are not supported"));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let scheme = scheme.to_ascii_lowercase();
        if query.is_some() && scheme != "seaweedfs" {
            return Err(bad("query strings are not supported"));
        }
        match scheme.as_str() {
            "memory" => {
                if !path.is_empty() {
                    return Err(bad("a memory store is named by one word: memory://NAME"));
                }
                if !authority
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(bad(
                        "memory store names use letters, digits, '-', '_' and '.'",
                    ));
                }
                Ok(StoreUrl::Memory {
                    name: (!authority.is_empty()).then(|| authority.to_string()),
                })
            }
            "file" => {
                if !authority.is_empty() && authority != "localhost" {
                    return Err(bad(
                        "file URLs name a local absolute directory: file:///abs/dir",
                    ));
                }
                let root = percent_decode(path).map_err(|reason| bad(&reason))?;
                if !root.starts_with('/') {
                    return Err(bad("file URLs need an absolute directory: file:///abs/dir"));
                }
                Ok(StoreUrl::Local {
                    root: PathBuf::from(root),
                })
            }
            "seaweedfs" => {
                let (master, collection) =
                    seaweedfs_query(query.unwrap_or_default()).map_err(|r| bad(&r))?;
                Ok(StoreUrl::SeaweedFs {
                    server: Server::parse(authority, 8888).map_err(|r| bad(&r))?,
                    root: decoded_root(path).map_err(|r| bad(&r))?,
                    master,
                    collection,
                })
            }
            "hdfs" => Ok(StoreUrl::Hdfs {
                server: Server::parse(authority, 8020).map_err(|r| bad(&r))?,
                root: decoded_root(path).map_err(|r| bad(&r))?,
            }),
            "gluster" => {
                let server = Server::parse(authority, 24007).map_err(|r| bad(&r))?;
                let decoded = decoded_root(path).map_err(|r| bad(&r))?;
                let mut parts = decoded.trim_start_matches('/').splitn(2, '/');
                let volume = parts.next().unwrap_or_default().to_string();
                if volume.is_empty() {
                    return Err(bad(
                        "a gluster URL names a volume: gluster://host/volume/path",
                    ));
                }
                let root = format!("/{}", parts.next().unwrap_or_default());
                Ok(StoreUrl::Gluster {
                    server,
                    volume,
                    root,
                })
            }
            "" => Err(bad("the scheme is missing")),
            other => Err(bad(&format!(
                "unknown scheme '{other}'; known: memory, file, seaweedfs, hdfs, gluster"
            ))),
        }
    }
}

/// The `master` and `collection` parameters of a `seaweedfs://` URL.
fn seaweedfs_query(query: &str) -> Result<(Option<Server>, Option<String>), String> {
    let (mut master, mut collection) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)?;
        match key {
            "master" if master.is_none() => {
                let server = Server::parse(&value, 9333)?;
                if server.userinfo.is_some() {
                    return Err("the master's address takes no user information".to_string());
                }
                master = Some(server);
            }
            "collection" if collection.is_none() => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(
                        "a collection name uses letters, digits, '-', '_' and '.'".to_string()
                    );
                }
                collection = Some(value);
            }
            "master" | "collection" => return Err(format!("'{key}' is given twice")),
            other => {
                return Err(format!(
                    "unknown parameter '{other}'; known: master, collection"
                ));
            }
        }
    }
    Ok((master, collection))
}

/// The root directory of a server URL: `/` when empty, never with `.` or `..` segments.
fn decoded_root(path: &str) -> Result<String, String> {
    let decoded = percent_decode(path)?;
    if decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("'.' and '..' are not allowed in the path".to_string());
    }
    if decoded.is_empty() {
        return Ok("/".to_string());
    }
    Ok(decoded)
}

/// `url` with any user information (`user:secret@`) replaced by `***`, so it can be shown.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a '%' is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| "the path is not UTF-8 once decoded")?;
    if decoded.contains('\0') {
        return Err("the path holds a NUL byte".to_string());
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::file_url;

    fn reason(url: &str) -> String {
        match StoreUrl::parse(url) {
            Err(Error::InvalidUrl { reason, .. }) => reason,
            other => panic!("{url} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            StoreUrl::parse("memory://").unwrap(),
            StoreUrl::Memory { name: None }
        );
        assert_eq!(
            StoreUrl::parse("memory://scratch").unwrap(),
            StoreUrl::Memory {
                name: Some("scratch".into())
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///data/my%20runs").unwrap(),
            StoreUrl::Local {
                root: "/data/my runs".into()
            }
        );
        match StoreUrl::parse("seaweedfs://filer.local:18888/buckets/ml").unwrap() {
            StoreUrl::SeaweedFs {
                server,
                root,
                master,
                collection,
            } => {
                assert_eq!((server.host.as_str(), server.port), ("filer.local", 18888));
                assert_eq!(root, "/buckets/ml");
                assert_eq!((master, collection), (None, None));
            }
            other => panic!("{other:?}"),
        }
        match StoreUrl::parse("seaweedfs://f/x%20y?master=m1&collection=tenant-a").unwrap() {
            StoreUrl::SeaweedFs {
                root,
                master,
                collection,
                ..
            } => {
                assert_eq!(root, "/x y");
                let master = master.unwrap();
                assert_eq!((master.host.as_str(), master.port), ("m1", 9333));
                assert_eq!(collection.as_deref(), Some("tenant-a"));
            }
            other => panic!("{other:?}"),
        }
        match StoreUrl::parse("hdfs://[::1]/user/ml").unwrap() {
            StoreUrl::Hdfs { server, root } => {
                assert_eq!((server.host.as_str(), server.port), ("::1", 8020));
                assert_eq!(server.to_string(), "[::1]:8020");
                assert_eq!(root, "/user/ml");
            }
            other => panic!("{other:?}"),
        }
        match StoreUrl::parse("gluster://g1/vol0/tenants/a").unwrap() {
            StoreUrl::Gluster {
                server,
                volume,
                root,
            } => {
                assert_eq!(server.host, "g1");
                assert_eq!(volume, "vol0");
                assert_eq!(root, "/tenants/a");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_urls_say_why() {
        assert!(reason("/data").contains("SCHEME://"));
        assert!(reason("s3://bucket/x").contains("unknown scheme 's3'"));
        assert!(reason("file://host/data").contains("file:///abs/dir"));
        assert!(reason("file://").contains("absolute"));
        assert!(reason("file:///a%2").contains("hex"));
        assert!(reason("file:///a%00b").contains("NUL"));
        assert!(reason("memory://a/b").contains("one word"));
        assert!(reason("seaweedfs://:8888/x").contains("host"));
        assert!(reason("seaweedfs://h:99999/x").contains("port"));
        assert!(reason("seaweedfs://h:0/x").contains("port"));
        assert!(reason("hdfs://nn/a/../b").contains("'..'"));
        assert!(reason("gluster://g1").contains("volume"));
        assert!(reason("hdfs://nn/x?user=a").contains("query"));
        assert!(reason("seaweedfs://f/x#top").contains("fragment"));
        assert!(reason("seaweedfs://f/x?mastr=m").contains("unknown parameter 'mastr'"));
        assert!(reason("seaweedfs://f/x?master=m:0").contains("port"));
        assert!(reason("seaweedfs://f/x?master=m&master=n").contains("twice"));
        assert!(reason("seaweedfs://f/x?collection=a/b").contains("collection"));
        assert!(reason("hdfs://[::1/x").contains("']'"));
    }

    #[test]
    fn credentials_never_reach_messages() {
        let err = StoreUrl::parse("nope://alice:s3cret@host/x").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("***@host"), "{err}");
        match StoreUrl::parse("seaweedfs://alice:s3cret@filer:8888/x").unwrap() {
            StoreUrl::SeaweedFs { server, .. } => {
                assert_eq!(server.userinfo.as_deref(), Some("alice:s3cret"));
                assert!(!format!("{server:?} {server}").contains("s3cret"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gluster_urls_are_checked_before_anything_is_mounted() {
        // Both fail before the mount helper runs: nothing here needs a server or root.
        match open("gluster://alice:s3cret@g1/vol/x") {
            Err(Error::InvalidUrl { url, reason }) => {
                assert!(reason.contains("user information"), "{reason}");
                assert!(!url.contains("s3cret") && !reason.contains("s3cret"));
            }
            other => panic!("{other:?}"),
        }
        match open("gluster://g1/vol.1/x") {
            Err(Error::InvalidUrl { reason, .. }) => assert!(reason.contains("volume"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hdfs_urls_open_a_store_at_their_directory_without_contacting_it() {
        // Nothing listens there: opening only configures the client.
        let store = open("hdfs://127.0.0.1:9/data/my%20runs/").unwrap();
        assert_eq!(store.name(), "hdfs");
        assert_eq!(store.url(), "hdfs://127.0.0.1:9/data/my%20runs");
        let root = open("hdfs://[::1]").unwrap();
        assert_eq!(root.url(), "hdfs://[::1]:8020/");
        match open("hdfs://alice:s3cret@127.0.0.1:9/x") {
            Err(Error::InvalidUrl { url, reason }) => {
                assert!(reason.contains("user"), "{reason}");
                assert!(!url.contains("s3cret") && !reason.contains("s3cret"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_urls_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("with space%é");
        let store = open(&file_url(&root)).unwrap();
        assert_eq!(store.name(), "local");
        let reopened = StoreUrl::parse(&store.url()).unwrap();
        assert_eq!(
            reopened,
            StoreUrl::Local {
                root: std::fs::canonicalize(&root).unwrap()
            }
        );
    }
}
