//! What only the local-directory store has to get right: symbolic links that lead out of its
//! root, and the temporary files its atomic writes go through.

use std::fs;
use std::os::unix::fs::symlink;

use bytes::Bytes;
use futures::TryStreamExt;
use moon_storage::local::PARTIAL_PREFIX;
use moon_storage::{Error, LocalStore, ObjectMeta, Store, StorePath};
use tempfile::TempDir;

fn p(raw: &str) -> StorePath {
    StorePath::parse(raw).unwrap()
}

struct Setup {
    store: LocalStore,
    outside: std::path::PathBuf,
    _dir: TempDir,
}

/// A store with links out of its root (to a directory and to a file) and one link inside it.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let outside = dir.path().join("outside");
    fs::create_dir_all(root.join("data")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "outside the store").unwrap();
    fs::write(root.join("data/real"), "inside").unwrap();
    symlink(&outside, root.join("escape")).unwrap();
    symlink(outside.join("secret"), root.join("data/secret-link")).unwrap();
    symlink(root.join("data/real"), root.join("data/inner-link")).unwrap();
    symlink("../../outside", root.join("data/relative-escape")).unwrap();
    Setup {
        store: LocalStore::new(&root).unwrap(),
        outside,
        _dir: dir,
    }
}

fn denied<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::PermissionDenied { message, .. }) => {
            assert!(
                message.contains("outside the store's root"),
                "{what}: {message}"
            )
        }
        other => panic!("{what} should be refused: {other:?}"),
    }
}

async fn listed(store: &LocalStore, prefix: Option<&str>) -> Result<Vec<String>, Error> {
    let prefix = prefix.map(p);
    let metas: Vec<ObjectMeta> = store.list(prefix.as_ref()).try_collect().await?;
    Ok(metas.into_iter().map(|m| m.path.to_string()).collect())
}

#[tokio::test]
async fn links_out_of_the_root_are_refused_for_every_operation() {
    let s = setup();
    let store = &s.store;
    denied(
        store.get(&p("escape/secret")).await,
        "get through a directory link",
    );
    denied(
        store.head(&p("escape/secret")).await,
        "head through a directory link",
    );
    denied(
        store.get_range(&p("escape/secret"), 0..4).await,
        "range through a directory link",
    );
    denied(
        store.get(&p("data/secret-link")).await,
        "get of a file link",
    );
    denied(
        store.get(&p("data/relative-escape/secret")).await,
        "get through a relative link",
    );
    denied(
        store
            .put(&p("escape/planted"), Bytes::from_static(b"x"))
            .await,
        "put through a link",
    );
    denied(
        store
            .put(&p("escape/new/deeper"), Bytes::from_static(b"x"))
            .await,
        "put below a link",
    );
    denied(
        store
            .put(&p("data/secret-link"), Bytes::from_static(b"x"))
            .await,
        "put over a file link",
    );
    denied(
        store.delete(&p("escape/secret")).await,
        "delete through a link",
    );
    denied(
        store.copy(&p("escape/secret"), &p("data/copy")).await,
        "copy from outside",
    );
    denied(
        store.copy(&p("data/real"), &p("escape/copy")).await,
        "copy to outside",
    );
    denied(
        store.rename(&p("data/real"), &p("escape/moved")).await,
        "rename to outside",
    );
    denied(
        listed(store, Some("escape")).await,
        "listing through a link",
    );
    denied(
        store.list_with_delimiter(Some(&p("escape"))).await,
        "one level through a link",
    );

    // Nothing outside was read, written or removed.
    let mut outside: Vec<String> = fs::read_dir(&s.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    outside.sort();
    assert_eq!(outside, ["secret"]);
    assert_eq!(
        fs::read_to_string(s.outside.join("secret")).unwrap(),
        "outside the store"
    );
    assert_eq!(
        store
            .get(&p("data/real"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        "inside"
    );
}

#[tokio::test]
async fn links_that_stay_inside_are_followed_and_escaping_ones_are_not_listed() {
    let s = setup();
    let store = &s.store;
    let via_link = store
        .get(&p("data/inner-link"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(via_link, "inside");
    assert_eq!(
        listed(store, None).await.unwrap(),
        ["data/inner-link", "data/real"]
    );
    let level = store.list_with_delimiter(Some(&p("data"))).await.unwrap();
    let objects: Vec<&str> = level.objects.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(objects, ["data/inner-link", "data/real"]);
}

#[tokio::test]
async fn temporary_files_never_show_and_their_names_are_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store
        .put(&p("d/kept"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    // Left behind as if a writer had crashed between creating and renaming its file.
    fs::write(dir.path().join(format!("{PARTIAL_PREFIX}1-1")), "partial").unwrap();
    fs::write(dir.path().join(format!("d/{PARTIAL_PREFIX}1-2")), "partial").unwrap();
    assert_eq!(listed(&store, None).await.unwrap(), ["d/kept"]);
    let root = store.list_with_delimiter(None).await.unwrap();
    assert!(root.objects.is_empty());
    assert_eq!(root.common_prefixes, [p("d")]);

    let reserved = p(&format!("d/{PARTIAL_PREFIX}1-2"));
    assert!(matches!(
        store.put(&reserved, Bytes::from_static(b"x")).await,
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        store.get(&reserved).await,
        Err(Error::InvalidPath { .. })
    ));

    // A successful write leaves no temporary file behind in the directory.
    store
        .put(&p("d/kept"), Bytes::from_static(b"y"))
        .await
        .unwrap();
    let mut names: Vec<String> = fs::read_dir(dir.path().join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [format!("{PARTIAL_PREFIX}1-2"), "kept".to_string()]);
}

#[tokio::test]
async fn deleting_the_last_object_removes_its_empty_directories() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store
        .put(&p("a/b/c/leaf"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    store
        .put(&p("a/other"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    store.delete(&p("a/b/c/leaf")).await.unwrap();
    assert!(!dir.path().join("a/b").exists());
    assert!(dir.path().join("a/other").exists());
}

#[test]
fn a_root_must_be_an_absolute_directory() {
    assert!(matches!(
        LocalStore::new("relative/dir"),
        Err(Error::InvalidUrl { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    assert!(matches!(
        LocalStore::new(&file),
        Err(Error::PreconditionFailed { .. })
    ));
    let created = dir.path().join("new/nested");
    let store = LocalStore::new(&created).unwrap();
    assert!(created.is_dir());
    assert_eq!(store.root(), fs::canonicalize(&created).unwrap());
}
