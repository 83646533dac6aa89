//! The conformance suite on the GlusterFS store, its mount lifecycle and errors, and the volume
//! provisioner, against the real glusterd of the storage test bed (`scripts/storage/up.sh
//! --only gluster`, whose `env.sh` sets `MOON_TEST_GLUSTER_*`): `scripts/test.sh --only storage`
//! runs them. Without the bed every test fails, saying how to start it.
//!
//! The conformance suite works in directories of the bed's volume `moon-test`, through the bed's
//! own mount (which the store finds and reuses). The other tests make volumes of their own, with
//! bricks and mounts under the bed's dir and unique names, and remove them (unmounted, stopped,
//! deleted, brick gone) when they end, pass or fail. They need root, as the bed does.

#[macro_use]
mod conformance;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conformance::Profile;
use moon_storage::{
    Error, GlusterOptions, GlusterStore, GlusterVolumes, Server, Store, StorePath, VolumesOptions,
    open,
};

const PROFILE: Profile = Profile {
    etag: true,
    modified: true,
    object_and_prefix_may_share_a_name: false,
};

const MIB: u64 = 1024 * 1024;

fn bed(variable: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{variable} is not set: start the storage test bed \
                 (scripts/storage/up.sh --only gluster [--dir DIR], then `source DIR/env.sh`) \
                 or run ./scripts/test.sh --only storage"
            )
        })
}

/// The bed's host name (gluster refuses loopback addresses for bricks).
fn host() -> String {
    bed("MOON_TEST_GLUSTER_HOST")
}

fn server() -> Server {
    Server {
        host: host(),
        port: 24007,
        userinfo: None,
    }
}

fn bed_dir() -> PathBuf {
    PathBuf::from(bed("MOON_TEST_STORAGE_DIR"))
}

/// Where the tests mount volumes: inside the bed, so that its `down.sh` finds what a killed
/// test left.
fn mount_root() -> PathBuf {
    bed_dir().join("gluster/mounts")
}

fn options() -> GlusterOptions {
    GlusterOptions::default()
        .with_mount_root(mount_root())
        .with_timeout(Duration::from_secs(60))
}

/// A provisioner on the bed's glusterd, with bricks under the bed's dir and quotas checked at
/// every write.
fn volumes() -> GlusterVolumes {
    let options = VolumesOptions::default()
        .with_glusterd_socket(bed("MOON_TEST_GLUSTER_SOCKET"))
        .with_log_file(bed_dir().join("logs/gluster-cli.log"))
        .with_quota_recheck(Duration::ZERO);
    GlusterVolumes::new(host(), bed_dir().join("gluster/provisioned"), options).unwrap()
}

/// A name no other test or run uses.
fn unique(purpose: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "moontest-{purpose}-{}-{:x}-{}",
        std::process::id(),
        nanos & 0xff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn p(raw: &str) -> StorePath {
    StorePath::parse(raw).unwrap()
}

/// Runs `work` on a runtime of its own, in a thread of its own: `Drop` runs inside the test's
/// runtime, which cannot be blocked on.
fn in_own_runtime(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(work);
    })
    .join();
}

/// Removes a directory of the bed's volume (through the bed's mount) when a test ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture() -> (Arc<dyn Store>, Cleanup) {
    let dir = format!("moon-tests/{}", unique("conformance"));
    let url = format!(
        "gluster://{}/{}/{dir}",
        host(),
        bed("MOON_TEST_GLUSTER_VOLUME")
    );
    let store = open(&url).expect("the test bed's gluster volume");
    (
        store,
        Cleanup(Path::new(&bed("MOON_TEST_GLUSTER_MOUNT")).join(dir)),
    )
}

/// A volume made for one test: unmounted and deleted, brick and all, when the test ends, with
/// what glusterd leaves of it outside the bed.
struct TestVolume {
    name: String,
    stores: Vec<GlusterStore>,
    socket: Option<PathBuf>,
}

impl TestVolume {
    async fn create(purpose: &str, size_limit: u64) -> TestVolume {
        let name = unique(purpose);
        let mut volume = TestVolume {
            name: name.clone(),
            stores: Vec::new(),
            socket: None,
        };
        volumes().create(&name, size_limit).await.unwrap();
        volume.socket = brick_socket(&name);
        volume
    }

    fn mount(&mut self, root: &str) -> GlusterStore {
        let store = GlusterStore::new(server(), &self.name, root, options()).unwrap();
        self.stores.push(store.clone());
        store
    }
}

impl Drop for TestVolume {
    fn drop(&mut self) {
        let (name, stores) = (self.name.clone(), std::mem::take(&mut self.stores));
        in_own_runtime(async move {
            for store in stores {
                let _ = store.unmount().await;
            }
            let _ = volumes().delete(&name).await;
        });
        forget_gluster_volume(&self.name, self.socket.take());
    }
}

/// The unix socket of volume `name`'s brick, from the running brick's command line (glusterd
/// names it by a hash).
fn brick_socket(name: &str) -> Option<PathBuf> {
    let pids = std::fs::read_dir(bed_dir().join("gluster/run/vols").join(name)).ok()?;
    pids.filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .find_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).ok()?;
            let args: Vec<_> = cmdline.split(|&b| b == 0).collect();
            let at = args.iter().position(|a| *a == b"-S")?;
            Some(PathBuf::from(
                String::from_utf8_lossy(args.get(at + 1)?).into_owned(),
            ))
        })
}

/// Removes what glusterd leaves outside the bed for a volume it deleted: the brick's log and
/// socket, the quota helpers' logs and pid files, empty per-volume log directories.
fn forget_gluster_volume(name: &str, socket: Option<PathBuf>) {
    let brick = volumes().brick_dir(name);
    let dashed = brick
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "-");
    let files = [
        format!("/var/log/glusterfs/bricks/{dashed}.log"),
        format!("/var/log/glusterfs/quota_crawl/{dashed}.log"),
        format!("/var/log/glusterfs/quota-mount-{name}.log"),
        format!("/var/run/gluster/{name}_quota_limit.pid"),
        format!("/var/run/gluster/{name}_quota_list.pid"),
    ];
    for file in files.iter().map(PathBuf::from).chain(socket) {
        let _ = std::fs::remove_file(file);
    }
    for dir in ["gfproxy", "snaps"] {
        let _ = std::fs::remove_dir(Path::new("/var/log/glusterfs").join(dir).join(name));
    }
}

/// The mount points of glusterfs mounts of `volume`, from the kernel's table.
fn mounted(volume: &str) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    table
        .lines()
        .filter(|line| {
            let fs = line.split_once(" - ").map_or("", |(_, fs)| fs);
            fs.starts_with("fuse.glusterfs ") && fs.contains(&format!(":/{volume} "))
        })
        .filter_map(|line| line.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

/// The tests that need the test bed, apart: the rust tier of scripts/test.sh skips this module
/// by its name.
mod on_the_storage_bed {
    use super::*;

    conformance_tests!(fixture(), PROFILE);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_reuses_the_beds_mount_and_writes_reach_the_brick() {
        let dir = format!("moon-tests/{}", unique("reuse"));
        let bed_mount = PathBuf::from(bed("MOON_TEST_GLUSTER_MOUNT"));
        let _cleanup = Cleanup(bed_mount.join(&dir));
        let store = GlusterStore::new(
            server(),
            &bed("MOON_TEST_GLUSTER_VOLUME"),
            &format!("/{dir}"),
            options(),
        )
        .unwrap();
        // The bed mounted the volume outside moon's mount root: used, and never unmounted.
        assert_eq!(store.mount_dir(), bed_mount);
        assert!(!store.is_mount_managed());
        store
            .put(&p("runs/1/model.bin"), Bytes::from_static(b"weights"))
            .await
            .unwrap();
        let in_brick = bed_dir()
            .join("gluster/brick")
            .join(&dir)
            .join("runs/1/model.bin");
        assert_eq!(std::fs::read(&in_brick).unwrap(), b"weights");
        assert!(!store.unmount().await.unwrap());
        assert!(bed_mount.join(&dir).join("runs/1/model.bin").exists());
        assert_eq!(store.head(&p("runs/1/model.bin")).await.unwrap().size, 7);
        assert_eq!(
            store.url(),
            format!(
                "gluster://{}/{}/{dir}",
                host(),
                bed("MOON_TEST_GLUSTER_VOLUME")
            )
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_volume_is_not_found_and_leaves_no_mount_point() {
        let name = unique("missing");
        match GlusterStore::new(server(), &name, "/", options()) {
            Err(Error::NotFound { path }) => {
                assert_eq!(path, format!("gluster://{}/{name}", host()))
            }
            other => panic!("a missing volume gave {other:?}"),
        }
        assert!(mounted(&name).is_empty());
        assert!(!mount_root().join(host()).join(&name).exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_port_nobody_listens_on_is_unavailable_in_glusterfs_words() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut closed = server();
        closed.port = port;
        // A volume nobody mounted, so that the store has to ask the server.
        let name = unique("closed");
        let started = Instant::now();
        match GlusterStore::new(closed, &name, "/", options()) {
            Err(Error::Unavailable { backend, message }) => {
                assert_eq!(backend, "gluster");
                // The client's words, and the system's for the connection it could not make.
                assert!(
                    message.contains("Exhausted all volfile servers"),
                    "{message}"
                );
                assert!(message.contains("Connection refused"), "{message}");
            }
            other => panic!("a closed port gave {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(mounted(&name).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn provisioned_volumes_are_idempotent_grow_and_go_without_a_trace() {
        let volumes = volumes();
        let volume = TestVolume::create("lifecycle", 8 * MIB).await;
        let name = volume.name.clone();
        let brick = format!("{}:{}", host(), volumes.brick_dir(&name).display());

        let info = volumes.info(&name).await.unwrap();
        assert_eq!(info.bricks, std::slice::from_ref(&brick));
        assert!(info.started && info.quota_enabled);
        assert_eq!(info.size_limit, Some(8 * MIB));
        assert!(volumes.list().await.unwrap().contains(&name));

        // Again, the same: nothing changes.
        assert_eq!(volumes.create(&name, 8 * MIB).await.unwrap(), info);
        // The same name with another limit, or another brick, is refused and changes nothing.
        match volumes.create(&name, 4 * MIB).await {
            Err(Error::PreconditionFailed { path, message }) => {
                assert_eq!(path, name);
                assert!(message.contains("expand"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let elsewhere = GlusterVolumes::new(
            host(),
            bed_dir().join("gluster/provisioned-elsewhere"),
            VolumesOptions::default()
                .with_glusterd_socket(bed("MOON_TEST_GLUSTER_SOCKET"))
                .with_log_file(bed_dir().join("logs/gluster-cli.log")),
        )
        .unwrap();
        for refused in [
            elsewhere.create(&name, 8 * MIB).await.map(|_| ()),
            elsewhere.delete(&name).await.map(|_| ()),
        ] {
            match refused {
                Err(Error::PreconditionFailed { message, .. }) => {
                    assert!(message.contains(&brick), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(volumes.info(&name).await.unwrap(), info);

        // Growing raises the limit; shrinking is refused.
        assert_eq!(
            volumes.expand(&name, 16 * MIB).await.unwrap().size_limit,
            Some(16 * MIB)
        );
        assert_eq!(
            volumes.expand(&name, 16 * MIB).await.unwrap().size_limit,
            Some(16 * MIB)
        );
        assert!(matches!(
            volumes.expand(&name, 8 * MIB).await,
            Err(Error::PreconditionFailed { .. })
        ));

        // Deleting removes the volume and its brick, and again is a no-op.
        assert!(volumes.delete(&name).await.unwrap());
        assert!(!volumes.list().await.unwrap().contains(&name));
        assert!(volumes.info(&name).await.unwrap_err().is_not_found());
        assert!(!volumes.brick_dir(&name).exists());
        assert!(!volumes.delete(&name).await.unwrap());
        assert!(
            volumes
                .expand(&name, 32 * MIB)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_provisioned_volume_mounts_refuses_writes_past_its_quota_and_unmounts() {
        let volumes = volumes();
        let mut volume = TestVolume::create("quota", 2 * MIB).await;
        let name = volume.name.clone();
        let store = volume.mount("/tenant-a");

        // moon mounted it, in its mount root.
        let mount_dir = mount_root().join(host()).join(&name);
        assert_eq!(store.mount_dir(), mount_dir);
        assert!(store.is_mount_managed());
        assert_eq!(mounted(&name), std::slice::from_ref(&mount_dir));
        // A second store on the volume shares the mount.
        let other = volume.mount("/tenant-b");
        assert_eq!(mounted(&name), std::slice::from_ref(&mount_dir));

        store
            .put(&p("small"), Bytes::from(vec![1u8; 512 * 1024]))
            .await
            .unwrap();
        match store
            .put(
                &p("models/big.bin"),
                Bytes::from(vec![2u8; 4 * MIB as usize]),
            )
            .await
        {
            Err(Error::QuotaExceeded { message }) => {
                assert!(message.contains("models/big.bin"), "{message}");
                assert!(message.to_lowercase().contains("quota"), "{message}");
            }
            other => panic!("a write past the quota gave {other:?}"),
        }
        // The refused write left nothing; what was there is intact.
        assert!(
            store
                .head(&p("models/big.bin"))
                .await
                .unwrap_err()
                .is_not_found()
        );
        let names: Vec<_> = store
            .list_with_delimiter(None)
            .await
            .unwrap()
            .objects
            .into_iter()
            .map(|m| m.path.to_string())
            .collect();
        assert_eq!(names, ["small"]);

        // Raising the limit lets the same write through.
        volumes.expand(&name, 16 * MIB).await.unwrap();
        let meta = store
            .put(
                &p("models/big.bin"),
                Bytes::from(vec![2u8; 4 * MIB as usize]),
            )
            .await
            .unwrap();
        assert_eq!(meta.size, 4 * MIB);
        let used = volumes.info(&name).await.unwrap().used.unwrap();
        assert!(used >= 4 * MIB, "the quota counts {used} bytes");

        // Open files keep the mount busy: the unmount says so and leaves it working.
        let open_file = std::fs::File::open(store.dir().join("small")).unwrap();
        match store.unmount().await {
            Err(Error::Unavailable { message, .. }) => {
                assert!(message.contains("busy"), "{message}")
            }
            other => panic!("unmounting with an open file gave {other:?}"),
        }
        assert_eq!(store.head(&p("small")).await.unwrap().size, 512 * 1024);
        drop(open_file);

        assert!(store.unmount().await.unwrap());
        assert!(mounted(&name).is_empty());
        assert!(!mount_dir.exists());
        // Every store of the mount now fails, rather than write into an empty directory.
        for result in [
            other
                .put(&p("x"), Bytes::from_static(b"x"))
                .await
                .map(|_| ()),
            store.head(&p("small")).await.map(|_| ()),
        ] {
            match result {
                Err(Error::Unavailable { message, .. }) => {
                    assert!(message.contains("no longer mounted"), "{message}")
                }
                other => panic!("a store whose mount is gone gave {other:?}"),
            }
        }
        assert!(!store.unmount().await.unwrap());
        // Opening again mounts again, and the data is there.
        let again = volume.mount("/tenant-a");
        assert_eq!(
            again.head(&p("models/big.bin")).await.unwrap().size,
            4 * MIB
        );
    }
}
