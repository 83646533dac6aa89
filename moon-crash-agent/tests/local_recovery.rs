//! The local backend survives SIGKILL of its agent at the three points
//! where a crash could lose or repeat work. Each replica appends its pid to
//! a marker file, so a replica that ran twice leaves two lines. Two of the
//! points are crash points armed by a file, which only this package's agent
//! (`moon-crash-agent`) has; hence these tests live here, beside it.

#[path = "../../moon-core/tests/common/mod.rs"]
mod common;

use futures::StreamExt;
use std::time::Duration;

use common::{Home, tenant};
use moon_core::backend::{Phase, ReplicaPhase};
use moon_core::spec::{Framework, Job, Role, TenantQuota};

const LIMIT: Option<Duration> = Some(Duration::from_secs(60));

fn marked_job(name: &str, marker: &std::path::Path, roles: &[(&str, &str)]) -> Job {
    let roles = roles
        .iter()
        .map(|(role, rest)| {
            let script = format!("echo $MOON_REPLICA $$ >> {}; {rest}", marker.display());
            Role::new(role, 1, &["sh", "-c", &script])
        })
        .collect();
    Job::new(name, "team", Framework::Custom, roles)
}

fn marker_lines(marker: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(marker)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn killed_after_recording_an_attempt_but_before_starting_it() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let marker = home.path().join("marker");
    home.arm_fault("before-spawn");
    let job = marked_job("once", &marker, &[("main", "exit 0")]);
    home.client.submit(&job).await.expect("submit");
    // The wait reconnects to a new agent, which finds the attempt unclaimed,
    // abandons it and starts the replica exactly once.
    let status = home.client.wait("team", "once", LIMIT).await.expect("wait");
    assert!(
        !home.path().join("faults/before-spawn").exists(),
        "the crash point never fired"
    );
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(
        marker_lines(&marker).len(),
        1,
        "{:?}",
        marker_lines(&marker)
    );
    assert_eq!(status.replicas[0].attempts, 1);
}

#[tokio::test]
async fn killed_while_replicas_run() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let marker = home.path().join("marker");
    let job = marked_job(
        "busy",
        &marker,
        &[("fine", "sleep 1; exit 0"), ("broken", "sleep 2; exit 3")],
    );
    home.client.submit(&job).await.expect("submit");
    let mut events = home
        .client
        .watch("team", "busy", None)
        .await
        .expect("watch");
    let mut started = 0;
    while started < 2 {
        let event = events.next().await.expect("event").expect("event");
        if event.kind == "ReplicaStarted" {
            started += 1;
        }
    }
    let agent = home.agent_pid().expect("agent pid");
    // SAFETY: kill with the pid of this test's own agent.
    unsafe {
        libc::kill(agent, libc::SIGKILL);
    }
    let status = home.client.wait("team", "busy", LIMIT).await.expect("wait");
    assert_ne!(home.agent_pid(), Some(agent), "no new agent took over");
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    let codes: Vec<_> = status
        .replicas
        .iter()
        .map(|replica| (replica.role.as_str(), replica.exit_code))
        .collect();
    assert_eq!(codes, vec![("fine", Some(0)), ("broken", Some(3))]);
    assert_eq!(
        marker_lines(&marker).len(),
        2,
        "{:?}",
        marker_lines(&marker)
    );
}

#[tokio::test]
async fn killed_while_a_replica_exits() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let marker = home.path().join("marker");
    home.arm_fault("exit-observed");
    let job = marked_job("ending", &marker, &[("main", "exit 3")]);
    home.client.submit(&job).await.expect("submit");
    let status = home
        .client
        .wait("team", "ending", LIMIT)
        .await
        .expect("wait");
    assert!(
        !home.path().join("faults/exit-observed").exists(),
        "the crash point never fired"
    );
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(status.replicas[0].exit_code, Some(3));
    assert_eq!(status.replicas[0].phase, ReplicaPhase::Failed);
    assert_eq!(
        marker_lines(&marker).len(),
        1,
        "{:?}",
        marker_lines(&marker)
    );
}
