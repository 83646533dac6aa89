//! Tenants' storage through the client: provisioning when a tenant is applied, and stores
//! confined to the tenant's part of each system.
//!
//! The tests in `on_the_storage_bed` talk to the real SeaweedFS and HDFS of the storage test
//! bed (`scripts/storage/up.sh --only seaweedfs,hdfs --dir DIR`, then `source DIR/env.sh`); the
//! `storage` tier of `scripts/test.sh` runs them and the `rust` tier skips them by that module's
//! name. The others need no server: what is refused is refused before any is contacted.

mod common;

use bytes::Bytes;
use moon_core::Error;
use moon_core::spec::{HdfsStorage, SeaweedStorage, Tenant, TenantStorage as StorageSpec};
use moon_core::storage::StorageServers;

use common::Home;

fn tenant(name: &str, storage: StorageSpec) -> Tenant {
    Tenant {
        name: name.into(),
        storage,
        ..Tenant::default()
    }
}

fn both() -> StorageSpec {
    StorageSpec {
        seaweedfs: Some(SeaweedStorage::default()),
        hdfs: Some(HdfsStorage::default()),
        gluster: None,
    }
}

#[tokio::test]
async fn storage_without_a_server_is_refused_before_the_tenant_is_applied() {
    let home = Home::new();
    let error = home
        .client
        .apply_tenant(&tenant("vision", both()))
        .await
        .unwrap_err();
    match &error {
        Error::NotSupported(message) => {
            assert!(message.contains("storage.seaweedfs"), "{message}");
            assert!(message.contains("MOON_SEAWEEDFS"), "{message}");
        }
        other => panic!("not NotSupported: {other:?}"),
    }
    // Nothing was applied: the tenant does not exist.
    assert!(matches!(
        home.client.get_tenant("vision").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn an_hdfs_quota_is_refused_rather_than_left_unenforced() {
    let servers = StorageServers::default()
        .with_hdfs("hdfs://127.0.0.1:1", Default::default())
        .unwrap();
    let home = Home::new();
    let client = home.client.clone().with_storage(servers);
    let spec = StorageSpec {
        hdfs: Some(HdfsStorage {
            space_quota: Some("1Ti".into()),
            ..HdfsStorage::default()
        }),
        ..StorageSpec::default()
    };
    match client.apply_tenant(&tenant("vision", spec)).await {
        Err(Error::NotSupported(message)) => {
            assert!(message.contains("storage.hdfs.spaceQuota"), "{message}");
            assert!(
                message.contains("-setSpaceQuota 1Ti /tenants/vision"),
                "{message}"
            );
        }
        other => panic!("not NotSupported: {other:?}"),
    }
}

#[test]
fn platform_urls_with_a_path_or_the_wrong_scheme_are_refused() {
    for (url, ok) in [
        ("seaweedfs://127.0.0.1:8888?master=127.0.0.1:9333", true),
        ("seaweedfs://127.0.0.1:8888/tenants", false),
        ("hdfs://127.0.0.1:8888", false),
    ] {
        let result = StorageServers::default().with_seaweedfs(url);
        assert_eq!(result.is_ok(), ok, "{url}: {result:?}");
    }
    let error = StorageServers::default()
        .with_hdfs("hdfs://user:secret@127.0.0.1:9000/data", Default::default())
        .unwrap_err()
        .to_string();
    assert!(!error.contains("secret"), "{error}");
}

mod on_the_storage_bed {
    use std::time::{SystemTime, UNIX_EPOCH};

    use futures::TryStreamExt;
    use moon_core::status::ApplyOutcome;
    use moon_core::storage::seaweedfs::SeaweedOptions;
    use moon_core::storage::{
        HDFS_HOME_MODE, HdfsOptions, HdfsStore, SeaweedStore, Store, StorePath, provision,
    };

    use super::*;

    fn bed(variable: &str) -> String {
        std::env::var(variable).unwrap_or_else(|_| {
            panic!(
                "{variable} is not set: start the storage test bed \
                 (scripts/storage/up.sh --only seaweedfs,hdfs --dir DIR, then `source DIR/env.sh`) \
                 or run scripts/test.sh --only storage"
            )
        })
    }

    fn address(url: &str) -> String {
        url.trim_start_matches("http://")
            .trim_start_matches("hdfs://")
            .trim_end_matches('/')
            .to_string()
    }

    fn servers() -> StorageServers {
        let filer = address(&bed("MOON_TEST_SEAWEEDFS_FILER"));
        let master = address(&bed("MOON_TEST_SEAWEEDFS_MASTER"));
        StorageServers::default()
            .with_seaweedfs(&format!("seaweedfs://{filer}?master={master}"))
            .unwrap()
            .with_hdfs(&bed("MOON_TEST_HDFS_URL"), HdfsOptions::default())
            .unwrap()
    }

    fn unique(prefix: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("{prefix}{nanos}")
    }

    /// Tenant names are fixed per test: each tenant's collection takes volumes of the bed's
    /// small budget, so runs reuse theirs (applying is idempotent anyway).
    #[tokio::test]
    async fn applying_a_tenant_provisions_its_storage_and_again_changes_nothing() {
        let home = Home::new();
        let servers = servers();
        let client = home.client.clone().with_storage(servers.clone());
        let mut spec = tenant("bed-vision", both());
        spec.storage.seaweedfs = Some(SeaweedStorage {
            replication: Some("000".into()),
            ttl: None,
        });
        assert_eq!(
            client.apply_tenant(&spec).await.unwrap(),
            ApplyOutcome::Created
        );

        // HDFS: the home belongs to the tenant's user and is closed to others.
        let hdfs = servers.hdfs.as_ref().unwrap();
        let home_dir = HdfsStore::new(
            hdfs.namenode.clone(),
            "/tenants/bed-vision",
            HdfsOptions::default(),
        )
        .unwrap();
        assert_eq!(
            home_dir.root_owner().await.unwrap(),
            ("bed-vision".into(), "bed-vision".into(), HDFS_HOME_MODE)
        );

        // SeaweedFS: the directory exists and the filer sends its files to the collection.
        let filer = &servers.seaweedfs.as_ref().unwrap().filer;
        let root = SeaweedStore::new(
            filer.clone(),
            "/tenants/bed-vision",
            SeaweedOptions::default(),
        )
        .unwrap();
        let rule = root
            .location_rule("/tenants/bed-vision/")
            .await
            .unwrap()
            .expect("a rule for the tenant's directory");
        assert_eq!(rule.collection.as_deref(), Some("moon-bed-vision"));
        assert_eq!(rule.replication.as_deref(), Some("000"));

        // Applied again: the spec and the storage are unchanged.
        assert_eq!(
            client.apply_tenant(&spec).await.unwrap(),
            ApplyOutcome::Unchanged
        );
        let again = provision(&spec, &servers).await.unwrap();
        assert!(!again.changed(), "{again:?}");
    }

    #[tokio::test]
    async fn files_written_below_the_tenants_directory_go_to_its_collection() {
        let home = Home::new();
        let servers = servers();
        let client = home.client.clone().with_storage(servers.clone());
        client
            .apply_tenant(&tenant("bed-collect", both()))
            .await
            .unwrap();

        // Written without naming a collection: the filer's rule picks it.
        let filer = &servers.seaweedfs.as_ref().unwrap().filer;
        let plain = SeaweedStore::new(
            filer.clone(),
            "/tenants/bed-collect",
            SeaweedOptions::default(),
        )
        .unwrap();
        let path = StorePath::parse(&unique("probe-")).unwrap();
        plain
            .put(&path, Bytes::from(vec![7u8; 4096]))
            .await
            .unwrap();
        let master = address(&bed("MOON_TEST_SEAWEEDFS_MASTER"));
        let status = reqwest::get(format!("http://{master}/vol/status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        plain.delete(&path).await.unwrap();
        assert!(
            status
                .to_string()
                .contains("\"Collection\":\"moon-bed-collect\""),
            "no volume of collection moon-bed-collect: {status}"
        );
    }

    #[tokio::test]
    async fn a_tenants_stores_reach_its_own_data_and_refuse_another_tenants() {
        let home = Home::new();
        let servers = servers();
        let client = home.client.clone().with_storage(servers.clone());
        for name in ["bed-alpha", "bed-beta"] {
            client.apply_tenant(&tenant(name, both())).await.unwrap();
        }
        let alpha = client.storage("bed-alpha").await.unwrap();
        let beta = client.storage("bed-beta").await.unwrap();

        // Each of alpha's stores round-trips an object of its own.
        let path = StorePath::parse(&unique("runs/7/model-")).unwrap();
        for store in [alpha.seaweedfs().unwrap(), alpha.hdfs().unwrap()] {
            store
                .put(&path, Bytes::from_static(b"weights"))
                .await
                .unwrap();
            assert_eq!(
                store.get(&path).await.unwrap().bytes().await.unwrap(),
                "weights"
            );
        }
        // A URL below alpha's own directory opens; the object is there.
        let urls = alpha.urls();
        assert_eq!(urls.len(), 2, "{urls:?}");
        for url in &urls {
            let (base, query) = url.split_once('?').unwrap_or((url, ""));
            let below = if query.is_empty() {
                format!("{base}/runs")
            } else {
                format!("{base}/runs?{query}")
            };
            let store = alpha.open(&below).unwrap();
            let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
            assert!(
                listed
                    .iter()
                    .any(|m| path.as_str().ends_with(m.path.as_str())),
                "{below}: {listed:?}"
            );
        }

        // Beta's URLs, other servers and other schemes are refused by alpha, with a typed
        // error that names the tenant and never the data.
        let mut refused = beta.urls();
        refused.push(format!(
            "seaweedfs://{}/tenants/bed-alpha2",
            address(&bed("MOON_TEST_SEAWEEDFS_FILER"))
        ));
        refused.push(format!(
            "seaweedfs://{}/tenants/bed-alpha?collection=moon-bed-beta",
            address(&bed("MOON_TEST_SEAWEEDFS_FILER"))
        ));
        refused.push("hdfs://127.0.0.1:1/tenants/bed-alpha".into());
        refused.push("file:///tmp".into());
        refused.push("memory://".into());
        for url in refused {
            match alpha.open(&url) {
                Err(Error::PermissionDenied(message)) => {
                    assert!(message.contains("\"bed-alpha\""), "{message}");
                }
                other => panic!("{url}: not refused: {other:?}"),
            }
        }

        // The namenode itself refuses alpha's user in beta's home, whatever the client does.
        let hdfs = servers.hdfs.as_ref().unwrap();
        let as_alpha = HdfsStore::new(
            hdfs.namenode.clone(),
            "/tenants/bed-beta",
            HdfsOptions::default().with_user("bed-alpha"),
        )
        .unwrap();
        let trespass = as_alpha
            .put(&path, Bytes::from_static(b"not yours"))
            .await
            .unwrap_err();
        assert!(
            matches!(trespass, moon_core::storage::Error::PermissionDenied { .. }),
            "{trespass:?}"
        );

        for store in [alpha.seaweedfs().unwrap(), alpha.hdfs().unwrap()] {
            store.delete(&path).await.unwrap();
        }
    }
}

/// A tenant's GlusterFS volume, made through the gluster CLI of the storage test bed's glusterd
/// (`scripts/storage/up.sh --only gluster`, whose `env.sh` sets `MOON_TEST_GLUSTER_*`).
mod gluster {
    mod on_the_storage_bed {
        use std::path::PathBuf;
        use std::time::Duration;

        use moon_core::spec::GlusterStorage;
        use moon_core::status::ApplyOutcome;
        use moon_core::storage::{
            GlusterOptions, GlusterStore, GlusterVolumes, Server, StorePath, VolumesOptions,
            provision,
        };

        use super::super::*;

        fn bed(variable: &str) -> String {
            std::env::var(variable).unwrap_or_else(|_| {
                panic!(
                    "{variable} is not set: start the storage test bed with gluster \
                     (scripts/storage/up.sh --only gluster --dir DIR, then `source DIR/env.sh`) \
                     or run scripts/test.sh --only storage"
                )
            })
        }

        fn bed_dir() -> PathBuf {
            PathBuf::from(bed("MOON_TEST_STORAGE_DIR"))
        }

        fn mount_options() -> GlusterOptions {
            GlusterOptions::default().with_mount_root(bed_dir().join("tenant-mounts"))
        }

        fn volumes() -> GlusterVolumes {
            let options = VolumesOptions::default()
                .with_glusterd_socket(bed("MOON_TEST_GLUSTER_SOCKET"))
                .with_quota_recheck(Duration::ZERO);
            GlusterVolumes::new(
                bed("MOON_TEST_GLUSTER_HOST"),
                bed_dir().join("tenant-bricks"),
                options,
            )
            .unwrap()
        }

        fn servers() -> StorageServers {
            let options = VolumesOptions::default()
                .with_glusterd_socket(bed("MOON_TEST_GLUSTER_SOCKET"))
                .with_quota_recheck(Duration::ZERO);
            StorageServers::default()
                .with_gluster(
                    &format!("gluster://{}", bed("MOON_TEST_GLUSTER_HOST")),
                    mount_options(),
                )
                .unwrap()
                .with_gluster_volumes(bed_dir().join("tenant-bricks"), options)
                .unwrap()
        }

        fn gluster(size: &str) -> StorageSpec {
            StorageSpec {
                gluster: Some(GlusterStorage { size: size.into() }),
                ..StorageSpec::default()
            }
        }

        /// Unmounts what moon mounted of `volume` and deletes it, brick and all.
        async fn remove(volume: &str) {
            let server = Server::parse(&bed("MOON_TEST_GLUSTER_HOST"), 24007).unwrap();
            if let Ok(store) = GlusterStore::new(server, volume, "/", mount_options()) {
                store.unmount().await.unwrap();
            }
            volumes().delete(volume).await.unwrap();
        }

        #[tokio::test]
        async fn a_tenants_volume_is_made_once_grown_never_shrunk_and_its_own() {
            const MIB: u64 = 1 << 20;
            let volume = "moon-bed-shared";
            // What an earlier run on this bed may have left.
            remove(volume).await;
            let home = Home::new();
            let servers = servers();
            let client = home.client.clone().with_storage(servers.clone());

            let mut spec = tenant("bed-shared", gluster("32Mi"));
            assert_eq!(
                client.apply_tenant(&spec).await.unwrap(),
                ApplyOutcome::Created
            );
            let info = volumes().info(volume).await.unwrap();
            assert!(info.started && info.quota_enabled, "{info:?}");
            assert_eq!(info.size_limit, Some(32 * MIB));
            // Applied again, nothing changes.
            assert_eq!(
                client.apply_tenant(&spec).await.unwrap(),
                ApplyOutcome::Unchanged
            );
            assert!(!provision(&spec, &servers).await.unwrap().changed());

            // The tenant's store is its volume, mounted by moon.
            let storage = client.storage("bed-shared").await.unwrap();
            assert_eq!(
                storage.urls(),
                [format!(
                    "gluster://{}:24007/{volume}",
                    bed("MOON_TEST_GLUSTER_HOST")
                )]
            );
            let store = storage.gluster().unwrap();
            let path = StorePath::parse("features/part-0").unwrap();
            store
                .put(&path, Bytes::from_static(b"shared"))
                .await
                .unwrap();
            assert_eq!(
                store.get(&path).await.unwrap().bytes().await.unwrap(),
                "shared"
            );
            // Another tenant's volume, or another server, is refused before any mount.
            for url in [
                format!("gluster://{}/moon-bed-other", bed("MOON_TEST_GLUSTER_HOST")),
                format!("gluster://{}/moon-test", bed("MOON_TEST_GLUSTER_HOST")),
                format!("gluster://127.0.0.1:1/{volume}"),
            ] {
                match storage.open(&url) {
                    Err(Error::PermissionDenied(message)) => {
                        assert!(message.contains("\"bed-shared\""), "{message}");
                    }
                    other => panic!("{url}: not refused: {other:?}"),
                }
            }

            // A larger size expands the volume; a smaller one is refused with both numbers, and
            // the volume keeps its size and data.
            spec.storage = gluster("64Mi");
            client.apply_tenant(&spec).await.unwrap();
            assert_eq!(
                volumes().info(volume).await.unwrap().size_limit,
                Some(64 * MIB)
            );
            spec.storage = gluster("16Mi");
            match client.apply_tenant(&spec).await {
                Err(Error::Storage(moon_core::storage::Error::PreconditionFailed {
                    message,
                    ..
                })) => {
                    assert!(message.contains(&(64 * MIB).to_string()), "{message}");
                    assert!(message.contains(&(16 * MIB).to_string()), "{message}");
                }
                other => panic!("shrinking was not refused: {other:?}"),
            }
            assert_eq!(
                volumes().info(volume).await.unwrap().size_limit,
                Some(64 * MIB)
            );
            assert_eq!(
                store.get(&path).await.unwrap().bytes().await.unwrap(),
                "shared"
            );

            drop(store);
            remove(volume).await;
        }
    }
}

#[test]
fn gluster_without_a_place_for_bricks_is_refused_saying_what_to_set() {
    let servers = StorageServers::default()
        .with_gluster("gluster://storage-0", Default::default())
        .unwrap();
    let spec = StorageSpec {
        gluster: Some(moon_core::spec::GlusterStorage { size: "1Gi".into() }),
        ..StorageSpec::default()
    };
    match moon_core::storage::check_servers(&tenant("vision", spec.clone()), &servers) {
        Err(Error::NotSupported(message)) => {
            assert!(message.contains("MOON_GLUSTER_BRICKS"), "{message}");
            assert!(message.contains("storage-0"), "{message}");
        }
        other => panic!("not refused: {other:?}"),
    }
    match moon_core::storage::check_servers(&tenant("vision", spec), &Default::default()) {
        Err(Error::NotSupported(message)) => {
            assert!(message.contains("MOON_GLUSTER "), "{message}");
        }
        other => panic!("not refused: {other:?}"),
    }
    for wrong in [
        "gluster://",
        "gluster://host/volume",
        "glusterfs://host",
        "gluster://host:x",
    ] {
        assert!(
            StorageServers::default()
                .with_gluster(wrong, Default::default())
                .is_err(),
            "{wrong}"
        );
    }
}

/// Tenants' HDFS on the storage test bed's secure cluster (`scripts/storage/up.sh --only
/// kerberos`, whose `env.sh` sets `MOON_TEST_HDFS_KERBEROS_URL` and `MOON_TEST_KERBEROS_DIR`):
/// moon logs in as the cluster's superuser `hdfs/localhost`, as a platform would with
/// `MOON_HDFS_PRINCIPAL` and `MOON_HDFS_KEYTAB`.
mod kerberos {
    mod on_the_storage_bed {
        use std::sync::Once;
        use std::time::{SystemTime, UNIX_EPOCH};

        use moon_core::spec::{HdfsStorage, Kerberos};
        use moon_core::status::ApplyOutcome;
        use moon_core::storage::{HDFS_HOME_MODE, HdfsOptions, HdfsStore, Store, StorePath};

        use super::super::*;

        fn bed(variable: &str) -> String {
            std::env::var(variable).unwrap_or_else(|_| {
                panic!(
                    "{variable} is not set: start the storage test bed (scripts/storage/up.sh \
                     --only kerberos --dir DIR, then `source DIR/env.sh`) or run \
                     scripts/test.sh --only storage"
                )
            })
        }

        fn unique() -> u128 {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        }

        /// The bed's client settings (its `hdfs-site.xml` would say SASL on data transfer),
        /// logged in as `principal` with the keytab of `keytab_of`, tickets kept in memory.
        fn login(principal: &str, keytab_of: &str) -> HdfsOptions {
            static ONCE: Once = Once::new();
            let realm = bed("MOON_TEST_KERBEROS_DIR");
            ONCE.call_once(|| {
                // The storage tier sets it for the whole binary; by hand, it is set here once,
                // before this binary's first Kerberos login.
                let conf = format!("{realm}/krb5.conf");
                if std::env::var("KRB5_CONFIG").ok().as_deref() != Some(conf.as_str()) {
                    // SAFETY: only this test uses Kerberos, and it sets this first.
                    unsafe { std::env::set_var("KRB5_CONFIG", conf) };
                }
            });
            HdfsOptions::default()
                .with_config("dfs.data.transfer.protection", "authentication")
                .with_kerberos_keytab(principal, format!("{realm}/{keytab_of}.keytab"))
                .with_kerberos_cache(format!("MEMORY:moon-test-{keytab_of}-{}", unique()))
        }

        fn secure_servers() -> StorageServers {
            StorageServers::default()
                .with_hdfs(
                    &bed("MOON_TEST_HDFS_KERBEROS_URL"),
                    login("hdfs/localhost", "hdfs"),
                )
                .unwrap()
        }

        #[tokio::test]
        async fn a_tenant_with_a_principal_owns_its_home_and_its_stores_act_as_that_user() {
            let home = Home::new();
            let servers = secure_servers();
            let client = home.client.clone().with_storage(servers.clone());
            let spec = tenant(
                "krb-vision",
                StorageSpec {
                    hdfs: Some(HdfsStorage {
                        kerberos: Some(Kerberos {
                            principal: "alice/etl@EXAMPLE.COM".into(),
                            keytab_secret: "alice-keytab".into(),
                        }),
                        ..HdfsStorage::default()
                    }),
                    ..StorageSpec::default()
                },
            );
            assert_eq!(
                client.apply_tenant(&spec).await.unwrap(),
                ApplyOutcome::Created
            );
            assert_eq!(
                client.apply_tenant(&spec).await.unwrap(),
                ApplyOutcome::Unchanged
            );

            // The home belongs to the principal's short name, closed to others.
            let namenode = servers.hdfs.as_ref().unwrap().namenode.clone();
            let as_platform = HdfsStore::new(
                namenode.clone(),
                "/tenants/krb-vision",
                login("hdfs/localhost", "hdfs"),
            )
            .unwrap();
            assert_eq!(
                as_platform.root_owner().await.unwrap(),
                ("alice".into(), "krb-vision".into(), HDFS_HOME_MODE)
            );

            // The tenant's store writes as alice (the file is hers, not the superuser's):
            // alice's own login reads it, bob's is refused by the namenode.
            let path = StorePath::parse(&format!("runs/model-{}", unique())).unwrap();
            let store = client.storage("krb-vision").await.unwrap().hdfs().unwrap();
            store
                .put(&path, Bytes::from_static(b"weights"))
                .await
                .unwrap();
            let file = HdfsStore::new(
                namenode.clone(),
                &format!("/tenants/krb-vision/{path}"),
                login("hdfs/localhost", "hdfs"),
            )
            .unwrap();
            assert_eq!(file.root_owner().await.unwrap().0, "alice");
            let as_alice = HdfsStore::new(
                namenode.clone(),
                "/tenants/krb-vision",
                login("alice", "alice"),
            )
            .unwrap();
            assert_eq!(
                as_alice.get(&path).await.unwrap().bytes().await.unwrap(),
                "weights"
            );
            let as_bob =
                HdfsStore::new(namenode, "/tenants/krb-vision", login("bob", "bob")).unwrap();
            let refused = as_bob.head(&path).await.unwrap_err();
            assert!(
                matches!(refused, moon_core::storage::Error::PermissionDenied { .. }),
                "{refused:?}"
            );
            store.delete(&path).await.unwrap();
        }
    }
}
