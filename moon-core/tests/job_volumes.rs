//! Jobs' volumes on the local backend: resolved when the job is submitted (refusals need no
//! server), then mounted for its replicas and unmounted when it ends.
//!
//! The tests in `on_the_storage_bed` mount real volumes of the storage test bed
//! (`scripts/storage/up.sh --only seaweedfs,gluster --dir DIR`, then `source DIR/env.sh`) and
//! need root, as FUSE mounts do; the agent must find SeaweedFS's `weed` program, so they are
//! run with `MOON_WEED_BIN=$MOON_TEST_SEAWEEDFS_WEED` and
//! `MOON_SEAWEEDFS_FILER_GRPC_PORT=$MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT`, as the `storage` tier
//! of `scripts/test.sh` runs them. The `rust` tier skips them by that module's name.

mod common;

use moon_core::Error;
use moon_core::spec::{
    Framework, GlusterStorage, Job, Role, SeaweedStorage, StorageSystem, Tenant,
    TenantStorage as StorageSpec, Volume,
};
use moon_core::storage::StorageServers;

use common::Home;

fn tenant(name: &str, storage: StorageSpec) -> Tenant {
    Tenant {
        name: name.into(),
        storage,
        ..Tenant::default()
    }
}

fn seaweedfs_only() -> StorageSpec {
    StorageSpec {
        seaweedfs: Some(SeaweedStorage::default()),
        ..StorageSpec::default()
    }
}

fn job(name: &str, tenant: &str, script: &str, volumes: Vec<Volume>) -> Job {
    let mut job = Job::new(
        name,
        tenant,
        Framework::Custom,
        vec![Role::new("main", 1, &["sh", "-c", script])],
    );
    job.volumes = volumes;
    job
}

/// Records the tenant with its storage spec without provisioning it: what refusals at
/// submission need, and no server.
async fn recorded(home: &Home, spec: &Tenant) {
    let backend: &dyn moon_core::Backend = &*home.client;
    backend.apply_tenant(spec).await.unwrap();
}

#[tokio::test]
async fn a_volume_on_a_system_the_tenant_lacks_is_refused_at_its_field() {
    let home = Home::new();
    recorded(&home, &tenant("vision", seaweedfs_only())).await;
    let spec = job(
        "train",
        "vision",
        "true",
        vec![Volume::of_store("raw", StorageSystem::Hdfs, "raw", "/raw")],
    );
    match home.client.submit(&spec).await {
        Err(Error::InvalidSpec { errors, .. }) => assert_eq!(
            errors.to_string(),
            "volumes[0].store: tenant \"vision\" has no hdfs storage (its spec's storage gives \
             seaweedfs)"
        ),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_volume_whose_system_has_no_server_names_the_setting() {
    let home = Home::new();
    recorded(&home, &tenant("vision", seaweedfs_only())).await;
    let spec = job(
        "train",
        "vision",
        "true",
        vec![Volume::of_store(
            "data",
            StorageSystem::Seaweedfs,
            "",
            "/data",
        )],
    );
    match home.client.submit(&spec).await {
        Err(Error::NotSupported(message)) => {
            assert!(message.contains("volumes[0]"), "{message}");
            assert!(message.contains("MOON_SEAWEEDFS"), "{message}");
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_url_outside_the_tenants_part_is_permission_denied() {
    let home = Home::new();
    recorded(&home, &tenant("vision", seaweedfs_only())).await;
    let servers = StorageServers::default()
        .with_seaweedfs("seaweedfs://127.0.0.1:1")
        .unwrap();
    let client = home.client.clone().with_storage(servers);
    let spec = job(
        "train",
        "vision",
        "true",
        vec![Volume::of_url(
            "data",
            "seaweedfs://127.0.0.1:1/tenants/nlp/datasets",
            "/data",
        )],
    );
    match client.submit(&spec).await {
        Err(Error::PermissionDenied(message)) => {
            assert!(
                message.contains("outside its directory /tenants/vision"),
                "{message}"
            )
        }
        other => panic!("not refused: {other:?}"),
    }
    // Nothing was recorded.
    assert!(matches!(
        client.get_job("vision", "train").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_backend_asked_directly_refuses_unresolved_volumes() {
    let home = Home::new();
    recorded(&home, &tenant("vision", seaweedfs_only())).await;
    let spec = job(
        "train",
        "vision",
        "true",
        vec![Volume::of_store(
            "data",
            StorageSystem::Seaweedfs,
            "",
            "/data",
        )],
    );
    let backend: &dyn moon_core::Backend = &*home.client;
    match backend.submit(&spec).await {
        Err(Error::NotSupported(message)) => {
            assert!(message.contains("its volumes are resolved"), "{message}")
        }
        other => panic!("not refused: {other:?}"),
    }
}

mod on_the_storage_bed {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use bytes::Bytes;
    use moon_core::Phase;
    use moon_core::storage::{
        GlusterOptions, GlusterStore, GlusterVolumes, Server, Store, StorePath, VolumesOptions,
    };

    use super::*;

    fn bed(variable: &str) -> String {
        std::env::var(variable).unwrap_or_else(|_| {
            panic!(
                "{variable} is not set: start the storage test bed \
                 (scripts/storage/up.sh --only seaweedfs,gluster --dir DIR, then `source \
                 DIR/env.sh`) and set MOON_WEED_BIN, or run scripts/test.sh --only storage"
            )
        })
    }

    fn seaweedfs_servers() -> StorageServers {
        let address = |url: String| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        };
        let filer = address(bed("MOON_TEST_SEAWEEDFS_FILER"));
        let master = address(bed("MOON_TEST_SEAWEEDFS_MASTER"));
        bed("MOON_WEED_BIN");
        StorageServers::default()
            .with_seaweedfs(&format!("seaweedfs://{filer}?master={master}"))
            .unwrap()
    }

    /// A directory name no other run uses.
    fn unique(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{prefix}-{nanos}")
    }

    /// The mount points below `dir` in this machine's mount table.
    fn mounts_below(dir: &Path) -> Vec<String> {
        let dir = std::fs::canonicalize(dir).unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| Path::new(point).starts_with(&dir))
            .map(str::to_string)
            .collect()
    }

    /// What the replica does: reads its input through one volume, writes its output through
    /// another, finds the read-only one refusing writes, and records its variables.
    const SCRIPT: &str = r#"set -eu
test -d "$MOON_VOLUME_INPUT_PATH"
tr a-z A-Z < "$MOON_VOLUME_INPUT_PATH/input.txt" > "$MOON_VOLUME_OUTPUT_PATH/output.txt"
if echo written > "$MOON_VOLUME_INPUT_PATH/refused.txt" 2>/dev/null; then exit 3; fi
printf '%s\n%s\n' "$MOON_VOLUME_INPUT" "$MOON_VOLUME_OUTPUT_PATH" > "$MOON_VOLUME_OUTPUT_PATH/env.txt"
"#;

    fn volumes_of(system: StorageSystem, dir: &str) -> Vec<Volume> {
        let mut input = Volume::of_store("input", system, &format!("{dir}/in"), "/input");
        input.read_only = true;
        let output = Volume::of_store("output", system, &format!("{dir}/out"), "/output");
        vec![input, output]
    }

    /// Runs the job of [`SCRIPT`] on `system`'s volumes in `dir` of the tenant's store
    /// `store`, and checks what a user would: the output read back through the store, the
    /// read-only volume unchanged, the variables, and no mount left once the job ended.
    async fn read_and_write_through(
        home: &Home,
        client: &moon_core::Client,
        tenant: &str,
        store: &dyn Store,
        system: StorageSystem,
        dir: &str,
    ) {
        let path = |p: &str| StorePath::parse(&format!("{dir}/{p}")).unwrap();
        store
            .put(
                &path("in/input.txt"),
                Bytes::from_static(b"through the volume\n"),
            )
            .await
            .unwrap();
        let name = unique("volumes");
        let spec = job(&name, tenant, SCRIPT, volumes_of(system, dir));
        client.submit(&spec).await.unwrap();
        let done = client
            .wait(tenant, &name, Some(Duration::from_secs(120)))
            .await
            .unwrap();
        let events = client.events(tenant, &name, None).await.unwrap();
        assert_eq!(done.phase, Phase::Succeeded, "{done:?}\n{events:#?}");

        let output = store.get(&path("out/output.txt")).await.unwrap();
        assert_eq!(output.bytes().await.unwrap(), "THROUGH THE VOLUME\n");
        assert!(
            matches!(
                store.head(&path("in/refused.txt")).await,
                Err(moon_core::storage::Error::NotFound { .. })
            ),
            "the read-only volume took a write"
        );
        let env = store.get(&path("out/env.txt")).await.unwrap();
        let env = String::from_utf8(env.bytes().await.unwrap().to_vec()).unwrap();
        let lines: Vec<&str> = env.lines().collect();
        let storage = client.storage(tenant).await.unwrap();
        let expected_url = storage.url_of(system, &format!("{dir}/in")).unwrap();
        assert_eq!(lines[0], expected_url);
        assert!(
            lines[1].starts_with(&home.path().canonicalize().unwrap().display().to_string())
                || lines[1].starts_with(&home.path().display().to_string()),
            "{lines:?}"
        );
        assert!(lines[1].ends_with("/volumes/output"), "{lines:?}");
        assert_eq!(mounts_below(home.path()), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_job_reads_and_writes_through_seaweedfs_volumes() {
        let home = Home::new();
        let client = home.client.clone().with_storage(seaweedfs_servers());
        // Tenant names are fixed: each tenant's collection takes volumes of the bed's budget.
        client
            .apply_tenant(&tenant("bed-volumes", seaweedfs_only()))
            .await
            .unwrap();
        let store = client
            .storage("bed-volumes")
            .await
            .unwrap()
            .seaweedfs()
            .unwrap();
        let dir = unique("jobs");
        read_and_write_through(
            &home,
            &client,
            "bed-volumes",
            store.as_ref(),
            StorageSystem::Seaweedfs,
            &dir,
        )
        .await;
    }

    /// A mount's client outlives an agent killed while the job runs; the agent that comes
    /// back leaves no mount once the job ends.
    #[tokio::test]
    async fn mounts_outlive_a_killed_agent_and_are_gone_when_the_job_ends() {
        let home = Home::new();
        let client = home.client.clone().with_storage(seaweedfs_servers());
        client
            .apply_tenant(&tenant("bed-volumes", seaweedfs_only()))
            .await
            .unwrap();
        let store = client
            .storage("bed-volumes")
            .await
            .unwrap()
            .seaweedfs()
            .unwrap();
        let dir = unique("crash");
        let name = unique("crash");
        let spec = job(
            &name,
            "bed-volumes",
            r#"echo up > "$MOON_VOLUME_OUTPUT_PATH/started.txt"; exec sleep 300"#,
            vec![Volume::of_store(
                "output",
                StorageSystem::Seaweedfs,
                &dir,
                "/output",
            )],
        );
        client.submit(&spec).await.unwrap();
        let started = StorePath::parse(&format!("{dir}/started.txt")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while store.head(&started).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the replica never wrote"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let agent = home.agent_pid().expect("an agent runs");
        // SAFETY: the pid is our own agent's, from its pid file.
        unsafe {
            libc::kill(agent, libc::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            mounts_below(home.path()).len(),
            1,
            "the mount went with the agent"
        );

        // Cancelling starts an agent again, which ends the job.
        client.cancel("bed-volumes", &name).await.unwrap();
        let done = client
            .wait("bed-volumes", &name, Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(done.phase, Phase::Cancelled, "{done:?}");
        assert_eq!(mounts_below(home.path()), Vec::<String>::new());
    }

    /// The bed's host, as gluster wants bricks named.
    fn gluster_host() -> String {
        bed("MOON_TEST_GLUSTER_HOST")
    }

    fn bed_dir() -> PathBuf {
        PathBuf::from(bed("MOON_TEST_STORAGE_DIR"))
    }

    /// Where moon's own gluster mounts (the tenant's store's) go, in the bed's dir.
    fn mount_options() -> GlusterOptions {
        GlusterOptions::default().with_mount_root(bed_dir().join("gluster/mounts"))
    }

    fn volumes_options() -> VolumesOptions {
        VolumesOptions::default().with_glusterd_socket(bed("MOON_TEST_GLUSTER_SOCKET"))
    }

    fn gluster_servers() -> StorageServers {
        StorageServers::default()
            .with_gluster(&format!("gluster://{}", gluster_host()), mount_options())
            .unwrap()
            .with_gluster_volumes(bed_dir().join("gluster/provisioned"), volumes_options())
            .unwrap()
    }

    /// The tenant's gluster volume, which applying the tenant made: unmounted and deleted,
    /// brick and all, when the test ends, pass or fail.
    struct TenantVolume(String);

    impl Drop for TenantVolume {
        fn drop(&mut self) {
            let name = self.0.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(async {
                    let server = Server::parse(&gluster_host(), 24007).unwrap();
                    if let Ok(store) = GlusterStore::new(server, &name, "/", mount_options()) {
                        let _ = store.unmount().await;
                    }
                    let bricks = bed_dir().join("gluster/provisioned");
                    let volumes =
                        GlusterVolumes::new(gluster_host(), bricks, volumes_options()).unwrap();
                    let _ = volumes.delete(&name).await;
                });
            })
            .join()
            .unwrap();
        }
    }

    #[tokio::test]
    async fn a_job_reads_and_writes_through_gluster_volumes_and_a_failed_mount_fails_it() {
        let home = Home::new();
        let client = home.client.clone().with_storage(gluster_servers());
        let tenant_name = "bed-gvolumes";
        let spec = tenant(
            tenant_name,
            StorageSpec {
                gluster: Some(GlusterStorage {
                    size: "64Mi".into(),
                }),
                ..StorageSpec::default()
            },
        );
        let _volume = TenantVolume(moon_spec::storage::gluster_volume(tenant_name));
        client.apply_tenant(&spec).await.unwrap();
        let store = client
            .storage(tenant_name)
            .await
            .unwrap()
            .gluster()
            .unwrap();

        let dir = unique("jobs");
        // Gluster mounts a directory the volume has.
        store
            .put(
                &StorePath::parse(&format!("{dir}/out/.keep")).unwrap(),
                Bytes::new(),
            )
            .await
            .unwrap();
        read_and_write_through(
            &home,
            &client,
            tenant_name,
            store.as_ref(),
            StorageSystem::Gluster,
            &dir,
        )
        .await;

        // A directory the volume lacks: the mount fails, and so does the job, naming the
        // volume and what the server said.
        let name = unique("missing");
        let spec = job(
            &name,
            tenant_name,
            "true",
            vec![Volume::of_store(
                "absent",
                StorageSystem::Gluster,
                &format!("{dir}/absent"),
                "/absent",
            )],
        );
        client.submit(&spec).await.unwrap();
        let done = client
            .wait(tenant_name, &name, Some(Duration::from_secs(120)))
            .await
            .unwrap();
        assert_eq!(done.phase, Phase::Failed, "{done:?}");
        let events = client.events(tenant_name, &name, None).await.unwrap();
        let failed = events
            .iter()
            .find(|event| event.message.contains("volume \"absent\""))
            .unwrap_or_else(|| panic!("no event names the volume: {events:#?}"));
        assert!(
            failed.message.contains("subdirectory for mount"),
            "{failed:?}"
        );
        assert_eq!(mounts_below(home.path()), Vec::<String>::new());
    }
}
