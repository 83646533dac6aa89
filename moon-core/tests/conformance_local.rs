//! The conformance suite (`conformance/mod.rs`) against the local backend:
//! every case in a MOON_HOME of its own, with its own agent.

mod common;
mod conformance;

use common::Home;
use conformance::Profile;

/// One test per case, `test_name: case,`, and the list of the cases they run.
macro_rules! cases {
    ($($test:ident: $case:ident,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                let home = Home::new();
                conformance::$case(&*home.client, &Profile::LOCAL, "conformance").await;
            }
        )*

        const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}

cases! {
    local_tenant_apply_is_idempotent: tenant_apply_is_idempotent,
    local_an_unknown_tenant_is_not_found: an_unknown_tenant_is_not_found,
    local_a_tenant_is_deleted_with_its_jobs_only_by_force: a_tenant_is_deleted_with_its_jobs_only_by_force,
    local_apply_submits_a_job: apply_submits_a_job,
    local_jobs_are_listed_oldest_first: jobs_are_listed_oldest_first,
    local_a_job_that_succeeds_ends_succeeded: a_job_that_succeeds_ends_succeeded,
    local_events_come_in_order: events_come_in_order,
    local_a_failing_job_ends_failed: a_failing_job_ends_failed,
    local_wait_with_a_short_timeout_times_out: wait_with_a_short_timeout_times_out,
    local_an_invalid_job_is_refused: an_invalid_job_is_refused,
    local_an_unknown_job_is_not_found: an_unknown_job_is_not_found,
    local_a_duplicate_submit_is_already_exists: a_duplicate_submit_is_already_exists,
    local_cancel_ends_a_job_cancelled: cancel_ends_a_job_cancelled,
    local_cancel_after_the_end_is_conflict: cancel_after_the_end_is_conflict,
    local_delete_of_an_unfinished_job_needs_force: delete_of_an_unfinished_job_needs_force,
    local_a_finished_job_is_deleted: a_finished_job_is_deleted,
    local_a_full_jobs_quota_holds_the_next_job: a_full_jobs_quota_holds_the_next_job,
    local_secrets_are_applied_listed_and_deleted: secrets_are_applied_listed_and_deleted,
    local_deleting_a_missing_secret_is_not_found: deleting_a_missing_secret_is_not_found,
    local_logs_follow_a_job_to_its_end: logs_follow_a_job_to_its_end,
    local_logs_of_one_replica: logs_of_one_replica,
    local_a_service_is_served_scaled_and_deleted: a_service_is_served_scaled_and_deleted,
    local_an_unknown_service_is_not_found: an_unknown_service_is_not_found,
}

#[test]
fn every_case_runs_locally() {
    assert_eq!(CASES, conformance::cases());
}
