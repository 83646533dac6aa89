//! URLs that name one object: `seaweedfs://filer:8888/runs/7/model.bin` is the object
//! `model.bin` of the store `seaweedfs://filer:8888/runs/7`.
//!
//! The store is rooted at the object's directory, not at the server's root, so that what a
//! store does around an object (a local or HDFS store removes the directories a delete leaves
//! empty, up to its root) never reaches above the directory the user named. The CLI (`moon fs
//! cat|cp|rm`) and the Python package (`moon.storage.open_file`) split URLs here.

use crate::storage::{Error, Result, StorePath, StoreUrl, redact};

/// An object URL split into its store and its path in that store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// The URL of the store that holds the object (with the original query, if any).
    pub store: String,
    /// The object's path in that store.
    pub path: StorePath,
}

/// What a URL names: a path in a store (an object, or a prefix of objects), or a store's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The URL of the store: the directory above `path`, or the URL itself for a root.
    pub store: String,
    /// The path in that store; `None` for a root (`seaweedfs://filer/`, `memory://NAME`).
    pub path: Option<StorePath>,
}

/// Splits `url` as [`split`] does, but accepts a URL that names a store's root.
///
/// ```
/// use moon_core::object_url::locate;
///
/// assert_eq!(locate("hdfs://nn:8020/").unwrap().path, None);
/// assert_eq!(locate("hdfs://nn:8020/data").unwrap().path.unwrap().as_str(), "data");
/// ```
pub fn locate(url: &str) -> Result<Location> {
    match split(url) {
        Ok(ObjectUrl { store, path }) => Ok(Location {
            store,
            path: Some(path),
        }),
        Err(Error::InvalidUrl { reason, .. }) if reason == NAMES_A_STORE => {
            StoreUrl::parse(url)?;
            Ok(Location {
                store: url.to_string(),
                path: None,
            })
        }
        Err(error) => Err(error),
    }
}

/// The `file://` URL of a local path, made absolute, with bytes outside the unreserved set
/// percent-encoded.
pub fn local_url(path: &std::path::Path) -> std::io::Result<String> {
    let absolute = std::path::absolute(path)?;
    let mut url = String::from("file://");
    for &b in absolute.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(url)
}

const NAMES_A_STORE: &str = "the URL names a store, not an object: add the object's path";

/// Splits `url` into the store of its directory and the object's name.
///
/// `memory://NAME/a/b` is the object `a/b` of the store `memory://NAME`; `gluster://host/vol/a`
/// the object `a` of the volume's root; for the other schemes the last segment of the path is
/// the object. A URL that names no object (a server root, `memory://NAME`) is an
/// [`Error::InvalidUrl`] saying so.
///
/// ```
/// use moon_core::object_url::split;
///
/// let object = split("seaweedfs://filer:8888/runs/7/model%20v2.bin?master=m:9333").unwrap();
/// assert_eq!(object.store, "seaweedfs://filer:8888/runs/7?master=m:9333");
/// assert_eq!(object.path.as_str(), "model v2.bin");
/// assert_eq!(split("memory://scratch/a/b").unwrap().path.as_str(), "a/b");
/// assert!(split("hdfs://namenode:8020/").is_err());
/// ```
pub fn split(url: &str) -> Result<ObjectUrl> {
    let bad = |reason: &str| Error::InvalidUrl {
        url: redact(url),
        reason: reason.to_string(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        // StoreUrl words what is wrong with a URL without a scheme.
        StoreUrl::parse(url)?;
        return Err(bad("expected SCHEME://..."));
    };
    let is_memory = scheme.eq_ignore_ascii_case("memory");
    if !is_memory {
        // The whole URL must be a valid store URL, so that its errors are the store's.
        StoreUrl::parse(url)?;
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = path.trim_end_matches('/');
    let (store_path, object) = if is_memory {
        // memory://NAME/a/b: StoreUrl refused the path above, so split before parsing.
        ("", path.trim_start_matches('/'))
    } else if scheme.eq_ignore_ascii_case("gluster") {
        // The first segment is the volume, which is part of the store.
        let inside = path.trim_start_matches('/');
        match inside.split_once('/') {
            Some((volume, object)) => match object.rsplit_once('/') {
                Some((dir, name)) => (&path[..1 + volume.len() + 1 + dir.len()], name),
                None => (&path[..1 + volume.len()], object),
            },
            None => (path, ""),
        }
    } else {
        match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", ""),
        }
    };
    if object.is_empty() {
        return Err(bad(NAMES_A_STORE));
    }
    let object = percent_decode(object).map_err(|reason| bad(&reason))?;
    let path = StorePath::parse(&object)?;
    let mut store = format!("{scheme}://{authority}{store_path}");
    if store_path.is_empty() && !is_memory {
        store.push('/');
    }
    if let Some(query) = query {
        store.push('?');
        store.push_str(query);
    }
    if is_memory {
        StoreUrl::parse(&store)?;
    }
    Ok(ObjectUrl { store, path })
}

/// `%XX` escapes decoded, as moon-storage decodes URL paths.
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
    String::from_utf8(out).map_err(|_| "the path is not UTF-8 once decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, String) {
        let object = split(url).unwrap();
        (object.store, object.path.to_string())
    }

    #[test]
    fn the_last_segment_is_the_object() {
        assert_eq!(
            parts("file:///data/runs/7.json"),
            ("file:///data/runs".into(), "7.json".into())
        );
        assert_eq!(
            parts("hdfs://nn:8020/x.parquet"),
            ("hdfs://nn:8020/".into(), "x.parquet".into())
        );
        assert_eq!(
            parts("seaweedfs://f/a/b/?collection=t"),
            ("seaweedfs://f/a?collection=t".into(), "b".into())
        );
        assert_eq!(
            parts("file:///data/my%20runs/a%25b"),
            ("file:///data/my%20runs".into(), "a%b".into())
        );
    }

    #[test]
    fn memory_and_gluster_keep_their_store_part() {
        assert_eq!(
            parts("memory://scratch/a/b"),
            ("memory://scratch".into(), "a/b".into())
        );
        assert_eq!(
            parts("gluster://g1/vol/x"),
            ("gluster://g1/vol".into(), "x".into())
        );
        assert_eq!(
            parts("gluster://g1/vol/a/b/x"),
            ("gluster://g1/vol/a/b".into(), "x".into())
        );
    }

    #[test]
    fn store_urls_and_bad_urls_are_refused_with_a_reason() {
        for url in [
            "memory://scratch",
            "seaweedfs://f:8888",
            "hdfs://nn/",
            "gluster://g1/vol",
        ] {
            match split(url) {
                Err(Error::InvalidUrl { reason, .. }) => {
                    assert!(reason.contains("names a store"), "{url}: {reason}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        match split("nope://alice:s3cret@h/x") {
            Err(error @ Error::InvalidUrl { .. }) => {
                assert!(!error.to_string().contains("s3cret"), "{error}");
                assert!(error.to_string().contains("unknown scheme"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            split("file:///a/%ff"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn roots_are_locations_without_a_path() {
        for url in [
            "memory://scratch",
            "seaweedfs://f:8888/",
            "gluster://g1/vol",
        ] {
            let location = locate(url).unwrap();
            assert_eq!((location.store.as_str(), location.path), (url, None));
        }
        let location = locate("file:///data/x").unwrap();
        assert_eq!(location.store, "file:///data");
        assert_eq!(location.path.unwrap().as_str(), "x");
        assert!(matches!(
            locate("s3://bucket/x"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn local_paths_become_file_urls() {
        assert_eq!(
            local_url(std::path::Path::new("/data/my runs/%")).unwrap(),
            "file:///data/my%20runs/%25"
        );
        let relative = local_url(std::path::Path::new("x")).unwrap();
        assert!(relative.starts_with("file:///") && relative.ends_with("/x"));
    }
}
