//! The conformance suite (`conformance/mod.rs`) against the Kubernetes
//! backend, on the test cluster of `scripts/k8s/up.sh` (its `env.sh` sets
//! `MOON_TEST_KUBECONFIG_ADMIN`): `scripts/test.sh --only kubernetes` runs
//! it. Without that cluster every test fails, saying how to start one.
//!
//! Each test has a tenant of its own, so that they run in parallel; a
//! tenant left by an earlier run on the same cluster is deleted first.

mod conformance;

use std::path::PathBuf;

use moon_core::Error;
use moon_core::backend::Backend;
use moon_core::kubernetes::{KubernetesBackend, KubernetesConfig, parse_tolerations};

use conformance::Profile;

/// The taint every fake node of the test cluster carries.
const KWOK_TAINT: &str = "kwok.x-k8s.io/node:NoSchedule";

/// The test cluster as its administrator; never `KUBECONFIG`, which may
/// name a real cluster.
fn test_cluster() -> KubernetesBackend {
    let kubeconfig = std::env::var_os("MOON_TEST_KUBECONFIG_ADMIN")
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "MOON_TEST_KUBECONFIG_ADMIN is not set: start the test cluster \
                 (scripts/k8s/up.sh --dir DIR, then `source DIR/env.sh`) or run \
                 ./scripts/test.sh --only kubernetes"
            )
        });
    KubernetesBackend::new(KubernetesConfig {
        kubeconfig: Some(PathBuf::from(kubeconfig)),
        tolerations: parse_tolerations(KWOK_TAINT).expect("the KWOK taint"),
        ..KubernetesConfig::default()
    })
}

/// Makes sure `tenant` does not exist, whatever an earlier run left.
async fn without(backend: &dyn Backend, tenant: &str) {
    match backend.delete_tenant(tenant, true).await {
        Ok(()) | Err(Error::NotFound { .. }) => {}
        Err(error) => panic!("deleting what an earlier run left of tenant {tenant}: {error}"),
    }
}

/// One test per case, `test_name: case in "tenant",`, and the list of the
/// cases they run.
macro_rules! cases {
    ($($test:ident: $case:ident in $tenant:literal,)*) => {
        /// The tests that need the cluster, apart: the rust tier of
        /// scripts/test.sh skips this module by its name.
        mod on_the_test_cluster {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = test_cluster();
                    without(&backend, $tenant).await;
                    conformance::$case(&backend, &Profile::KUBERNETES, $tenant).await;
                }
            )*
        }

        const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}

cases! {
    kubernetes_tenant_apply_is_idempotent: tenant_apply_is_idempotent in "conf-tenant",
    kubernetes_an_unknown_tenant_is_not_found: an_unknown_tenant_is_not_found in "conf-absent",
    kubernetes_a_tenant_is_deleted_with_its_jobs_only_by_force: a_tenant_is_deleted_with_its_jobs_only_by_force in "conf-tenant-gone",
    kubernetes_apply_submits_a_job: apply_submits_a_job in "conf-apply",
    kubernetes_jobs_are_listed_oldest_first: jobs_are_listed_oldest_first in "conf-listed",
    kubernetes_a_job_that_succeeds_ends_succeeded: a_job_that_succeeds_ends_succeeded in "conf-succeeds",
    kubernetes_events_come_in_order: events_come_in_order in "conf-events",
    kubernetes_a_failing_job_ends_failed: a_failing_job_ends_failed in "conf-fails",
    kubernetes_wait_with_a_short_timeout_times_out: wait_with_a_short_timeout_times_out in "conf-timeout",
    kubernetes_an_invalid_job_is_refused: an_invalid_job_is_refused in "conf-invalid",
    kubernetes_an_unknown_job_is_not_found: an_unknown_job_is_not_found in "conf-unknown",
    kubernetes_a_duplicate_submit_is_already_exists: a_duplicate_submit_is_already_exists in "conf-duplicate",
    kubernetes_cancel_ends_a_job_cancelled: cancel_ends_a_job_cancelled in "conf-cancel",
    kubernetes_cancel_after_the_end_is_conflict: cancel_after_the_end_is_conflict in "conf-cancel-late",
    kubernetes_delete_of_an_unfinished_job_needs_force: delete_of_an_unfinished_job_needs_force in "conf-delete-force",
    kubernetes_a_finished_job_is_deleted: a_finished_job_is_deleted in "conf-delete",
    kubernetes_a_full_jobs_quota_holds_the_next_job: a_full_jobs_quota_holds_the_next_job in "conf-quota",
    kubernetes_secrets_are_applied_listed_and_deleted: secrets_are_applied_listed_and_deleted in "conf-secrets",
    kubernetes_deleting_a_missing_secret_is_not_found: deleting_a_missing_secret_is_not_found in "conf-no-secret",
    kubernetes_logs_follow_a_job_to_its_end: logs_follow_a_job_to_its_end in "conf-logs",
    kubernetes_logs_of_one_replica: logs_of_one_replica in "conf-replica-logs",
}

#[test]
fn every_case_runs_on_the_cluster() {
    assert_eq!(CASES, conformance::cases());
}
