//! Deleting jobs and tenants on the local backend, and jobs' time to live:
//! real agent, real processes, and the rows and files that must go.

mod common;

use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Home, shell_job, tenant};
use moon_core::Error;
use moon_core::backend::Phase;
use moon_core::spec::TenantQuota;

const LIMIT: Option<Duration> = Some(Duration::from_secs(60));

/// The job directories under `home/jobs`, by id.
fn job_dirs(home: &Path) -> Vec<i64> {
    let mut ids: Vec<i64> = std::fs::read_dir(home.join("jobs"))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Rows that name job `id`, table by table.
fn rows_of(home: &Path, id: i64) -> Vec<(&'static str, i64)> {
    let db = rusqlite::Connection::open(home.join("state.db")).expect("database");
    [
        ("jobs", "id"),
        ("replicas", "job_id"),
        ("attempts", "job_id"),
        ("events", "job_id"),
    ]
    .into_iter()
    .map(|(table, column)| {
        let count: i64 = db
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1"),
                [id],
                |row| row.get(0),
            )
            .expect("count");
        (table, count)
    })
    .collect()
}

fn no_rows() -> Vec<(&'static str, i64)> {
    vec![("jobs", 0), ("replicas", 0), ("attempts", 0), ("events", 0)]
}

/// Waits until the job's first replica runs, by its events.
async fn until_started(home: &Home, name: &str) {
    let mut events = home.client.watch("team", name, None).await.expect("watch");
    while let Some(event) = events.next().await {
        if event.expect("event").kind == "ReplicaStarted" {
            return;
        }
    }
    panic!("{name} ended before a replica started");
}

fn is_not_found(error: &Error) -> bool {
    matches!(error, Error::NotFound { kind: "job", .. })
}

#[tokio::test]
async fn a_deleted_job_is_gone_with_its_rows_and_files_and_its_name_runs_again() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .submit(&shell_job("again", "echo first run"))
        .await
        .expect("submit");
    home.client
        .wait("team", "again", LIMIT)
        .await
        .expect("wait");
    let [first] = job_dirs(home.path())[..] else {
        panic!("one job directory expected: {:?}", job_dirs(home.path()));
    };
    assert_ne!(rows_of(home.path(), first), no_rows());

    home.client
        .delete_job("team", "again", false)
        .await
        .expect("delete");
    let error = home.client.get_job("team", "again").await.unwrap_err();
    assert!(is_not_found(&error), "{error:?}");
    assert!(is_not_found(
        &home.client.events("team", "again", None).await.unwrap_err()
    ));
    assert_eq!(rows_of(home.path(), first), no_rows());
    assert_eq!(job_dirs(home.path()), Vec::<i64>::new());
    assert!(
        home.client
            .list_jobs(Some("team"))
            .await
            .unwrap()
            .is_empty()
    );
    // Twice is not found.
    let error = home
        .client
        .delete_job("team", "again", false)
        .await
        .unwrap_err();
    assert!(is_not_found(&error), "{error:?}");

    // The name runs again as a new job, with a new id and only its own output.
    home.client
        .submit(&shell_job("again", "echo second run"))
        .await
        .expect("submit again");
    let status = home
        .client
        .wait("team", "again", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    let [second] = job_dirs(home.path())[..] else {
        panic!("one job directory expected: {:?}", job_dirs(home.path()));
    };
    assert!(
        second > first,
        "job ids are never reused: {first} then {second}"
    );
    assert_eq!(home.log_lines("again").await, ["second run"]);
    let events = home.client.events("team", "again", None).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|event| event.kind == "Submitted")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_running_job_is_refused_unless_forced_and_its_follower_ends() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let job = shell_job("long", "echo started; exec sleep 60");
    let (mut follower, first) = home.submit_and_read_first_line(&job).await;
    assert_eq!(first.line, "started");

    let refused = home
        .client
        .delete_job("team", "long", false)
        .await
        .unwrap_err();
    let Error::Conflict(message) = &refused else {
        panic!("expected a conflict, got {refused:?}");
    };
    for part in ["team/long", "Running", "force"] {
        assert!(message.contains(part), "{message}");
    }
    assert_eq!(
        home.client.get_job("team", "long").await.unwrap().phase,
        Phase::Running
    );

    let started = Instant::now();
    home.client
        .delete_job("team", "long", true)
        .await
        .expect("forced delete");
    assert!(started.elapsed() < Duration::from_secs(30));
    let error = home.client.get_job("team", "long").await.unwrap_err();
    assert!(is_not_found(&error), "{error:?}");
    assert_eq!(job_dirs(home.path()), Vec::<i64>::new());
    // The follower ends rather than waiting for a job that is no more.
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(item) = follower.next().await {
            if item.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the log follower of a deleted job hung");
}

#[tokio::test]
async fn a_pending_job_is_deleted_with_force_at_once() {
    let home = Home::new();
    tenant(
        &home.client,
        "team",
        TenantQuota {
            jobs: Some(1),
            ..TenantQuota::default()
        },
    )
    .await;
    home.client
        .submit(&shell_job("first", "exec sleep 60"))
        .await
        .unwrap();
    home.client
        .submit(&shell_job("queued", "true"))
        .await
        .unwrap();
    let queued = home.client.get_job("team", "queued").await.unwrap();
    assert_eq!(queued.phase, Phase::Pending, "{queued:?}");
    let error = home
        .client
        .delete_job("team", "queued", false)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("is Pending"), "{error}");
    home.client
        .delete_job("team", "queued", true)
        .await
        .expect("forced delete");
    assert!(is_not_found(
        &home.client.get_job("team", "queued").await.unwrap_err()
    ));
    home.client.delete_job("team", "first", true).await.unwrap();
}

#[tokio::test]
async fn a_tenant_with_unfinished_jobs_is_refused_unless_forced() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .submit(&shell_job("done", "true"))
        .await
        .unwrap();
    home.client.wait("team", "done", LIMIT).await.unwrap();
    home.client
        .submit(&shell_job("busy", "exec sleep 60"))
        .await
        .unwrap();
    until_started(&home, "busy").await;

    let refused = home.client.delete_tenant("team", false).await.unwrap_err();
    let Error::Conflict(message) = &refused else {
        panic!("expected a conflict, got {refused:?}");
    };
    for part in ["tenant team", "busy Running", "force"] {
        assert!(message.contains(part), "{message}");
    }
    assert_eq!(home.client.list_jobs(Some("team")).await.unwrap().len(), 2);

    home.client
        .delete_tenant("team", true)
        .await
        .expect("forced delete");
    let error = home.client.get_tenant("team").await.unwrap_err();
    assert!(
        matches!(error, Error::NotFound { kind: "tenant", .. }),
        "{error:?}"
    );
    assert!(home.client.list_jobs(None).await.unwrap().is_empty());
    assert_eq!(job_dirs(home.path()), Vec::<i64>::new());
    let error = home.client.delete_tenant("team", false).await.unwrap_err();
    assert!(
        matches!(error, Error::NotFound { kind: "tenant", .. }),
        "{error:?}"
    );

    // Both names are free again.
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .submit(&shell_job("busy", "true"))
        .await
        .unwrap();
    let status = home.client.wait("team", "busy", LIMIT).await.unwrap();
    assert_eq!(status.phase, Phase::Succeeded);
}

/// Waits for a path to disappear, watching the file system, not the client
/// (whose reads would delete an expired job themselves).
fn until_gone(path: &Path, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !path.exists() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn job_dir(home: &Path, id: i64) -> PathBuf {
    home.join("jobs").join(id.to_string())
}

#[tokio::test]
async fn the_agent_deletes_a_job_once_its_time_to_live_has_passed() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let mut job = shell_job("brief", "echo hi");
    job.ttl_seconds_after_finished = Some(3);
    home.client.submit(&job).await.unwrap();
    let status = home.client.wait("team", "brief", LIMIT).await.unwrap();
    let finished_ms = status.finished_ms.expect("finished");
    let [id] = job_dirs(home.path())[..] else {
        panic!("one job directory expected");
    };
    // Kept until its time is up.
    assert_eq!(home.log_lines("brief").await, ["hi"]);

    let path = job_dir(home.path(), id);
    let gone = tokio::task::spawn_blocking(move || until_gone(&path, Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(gone.is_some(), "the agent did not delete the expired job");
    let waited_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - finished_ms;
    assert!(waited_ms >= 3000, "deleted {waited_ms} ms after it ended");
    assert_eq!(rows_of(home.path(), id), no_rows());
    assert!(is_not_found(
        &home.client.get_job("team", "brief").await.unwrap_err()
    ));
}

#[tokio::test]
async fn an_expired_job_is_gone_even_when_the_agent_left_before_its_time() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let mut job = shell_job("brief", "true");
    job.ttl_seconds_after_finished = Some(3);
    home.client.submit(&job).await.unwrap();
    home.client.wait("team", "brief", LIMIT).await.unwrap();
    let [id] = job_dirs(home.path())[..] else {
        panic!("one job directory expected");
    };
    let pid = home.agent_pid().expect("an agent");
    // SAFETY: our own agent's pid.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    // No agent runs now, so nothing wakes for the job: its time runs out unseen.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(job_dir(home.path(), id).exists());
    let listed = home.client.list_jobs(Some("team")).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(rows_of(home.path(), id), no_rows());
    assert!(!job_dir(home.path(), id).exists());
    // Its name is free.
    job.ttl_seconds_after_finished = None;
    home.client.submit(&job).await.expect("submit again");
    home.client.wait("team", "brief", LIMIT).await.unwrap();
}
