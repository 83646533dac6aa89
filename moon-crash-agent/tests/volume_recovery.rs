//! A job's volumes survive no crash of the agent as stale mounts: killed after it recorded the
//! job's end and before it unmounted its volumes, the agent that comes back unmounts them.
//!
//! On the storage test bed's SeaweedFS (`scripts/storage/up.sh --only seaweedfs --dir DIR`,
//! `source DIR/env.sh`), as root, with `MOON_WEED_BIN=$MOON_TEST_SEAWEEDFS_WEED` and
//! `MOON_SEAWEEDFS_FILER_GRPC_PORT=$MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT`: the storage tier of
//! `scripts/test.sh` runs it; the rust tier skips it by its module's name.

#[path = "../../moon-core/tests/common/mod.rs"]
mod common;

mod on_the_storage_bed {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use moon_core::backend::Phase;
    use moon_core::spec::{
        Framework, Job, Role, SeaweedStorage, StorageSystem, Tenant, TenantStorage, Volume,
    };
    use moon_core::storage::StorageServers;

    use super::common::Home;

    fn bed(variable: &str) -> String {
        std::env::var(variable).unwrap_or_else(|_| {
            panic!(
                "{variable} is not set: start the storage test bed (scripts/storage/up.sh \
                 --only seaweedfs --dir DIR, then `source DIR/env.sh`) and set MOON_WEED_BIN, \
                 or run scripts/test.sh --only storage"
            )
        })
    }

    fn mounts_below(dir: &Path) -> usize {
        let dir = std::fs::canonicalize(dir).unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| Path::new(point).starts_with(&dir))
            .count()
    }

    #[tokio::test]
    async fn killed_before_unmounting_an_ended_jobs_volumes() {
        let address = |url: String| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        };
        let filer = address(bed("MOON_TEST_SEAWEEDFS_FILER"));
        bed("MOON_WEED_BIN");
        let servers = StorageServers::default()
            .with_seaweedfs(&format!("seaweedfs://{filer}"))
            .unwrap();
        let home = Home::new();
        let client = home.client.clone().with_storage(servers);
        let tenant = Tenant {
            name: "bed-volumes".into(),
            storage: TenantStorage {
                seaweedfs: Some(SeaweedStorage::default()),
                ..TenantStorage::default()
            },
            ..Tenant::default()
        };
        client.apply_tenant(&tenant).await.unwrap();

        home.arm_fault("before-unmount");
        let mut job = Job::new(
            "crashed-unmount",
            "bed-volumes",
            Framework::Custom,
            vec![Role::new(
                "main",
                1,
                &["sh", "-c", r#"test -d "$MOON_VOLUME_SCRATCH_PATH""#],
            )],
        );
        job.volumes = vec![Volume::of_store(
            "scratch",
            StorageSystem::Seaweedfs,
            "crash-tests",
            "/scratch",
        )];
        client.submit(&job).await.unwrap();
        let limit = Some(Duration::from_secs(60));
        // Read from the state database, without a watch that would start an agent again.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = client
                .get_job("bed-volumes", "crashed-unmount")
                .await
                .unwrap();
            let fired = !home.path().join("faults/before-unmount").exists();
            if status.phase.is_terminal() && fired {
                assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{status:?}, crash point fired: {fired}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The agent recorded the end and died: the volume is still mounted.
        assert_eq!(mounts_below(home.path()), 1);

        // Anything that starts an agent again: it unmounts what no running job holds.
        client
            .submit(&Job::new(
                "after",
                "bed-volumes",
                Framework::Custom,
                vec![Role::new("main", 1, &["true"])],
            ))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while mounts_below(home.path()) > 0 {
            assert!(
                Instant::now() < deadline,
                "the new agent left the volume mounted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let after = client.wait("bed-volumes", "after", limit).await.unwrap();
        assert_eq!(after.phase, Phase::Succeeded, "{after:?}");
    }
}
