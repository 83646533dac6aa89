//! The local backend end to end: real agent, real supervisors, real processes.

mod common;

use futures::StreamExt;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Home, shell_job, tenant};
use moon_core::backend::{ApplyOutcome, LogOptions, Phase, ReplicaPhase};
use moon_core::spec::{EnvFrom, Framework, Job, Quantity, RestartPolicy, Role, TenantQuota};
use moon_core::{Error, SecretData};

const LIMIT: Option<Duration> = Some(Duration::from_secs(60));

#[tokio::test]
async fn a_job_runs_to_success_and_its_output_is_logged() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let job = shell_job("hello", "echo hello from $MOON_REPLICA; echo to stderr >&2");
    home.client.submit(&job).await.expect("submit");
    let status = home
        .client
        .wait("team", "hello", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.replicas[0].exit_code, Some(0));
    let mut logs = home
        .client
        .logs("team", "hello", LogOptions::default())
        .await
        .expect("logs");
    let mut lines = Vec::new();
    while let Some(line) = logs.next().await {
        let line = line.expect("line");
        lines.push((line.stream, line.line));
    }
    assert!(
        lines.contains(&("stdout".into(), "hello from main-0".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("stderr".into(), "to stderr".into())),
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_agent_that_ships_has_no_crash_points() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.arm_fault("before-spawn");
    home.arm_fault("exit-observed");
    home.client
        .submit(&shell_job("armed", "exit 0"))
        .await
        .expect("submit");
    let agent = home.agent_pid().expect("agent pid");
    let status = home
        .client
        .wait("team", "armed", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.replicas[0].attempts, 1);
    // moon-agent passed both points without looking for their files.
    assert_eq!(home.agent_pid(), Some(agent), "the agent was replaced");
    for point in ["before-spawn", "exit-observed"] {
        assert!(home.path().join("faults").join(point).exists(), "{point}");
    }
}

#[tokio::test]
async fn a_failing_replica_fails_the_job_with_its_exit_code() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .submit(&shell_job("boom", "exit 3"))
        .await
        .expect("submit");
    let status = home.client.wait("team", "boom", LIMIT).await.expect("wait");
    assert_eq!(status.phase, Phase::Failed);
    assert_eq!(status.reason.as_deref(), Some("ReplicaFailed"));
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or("")
            .contains("exited with code 3"),
        "{status:?}"
    );
    assert_eq!(status.replicas[0].exit_code, Some(3));
    match status.into_result().map_err(Error::from) {
        Err(Error::JobFailed { phase, .. }) => assert_eq!(phase, "failed"),
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn on_failure_restarts_with_backoff_until_success() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let marker = home.path().join("tries");
    let script = format!(
        "echo $$ >> {m}; test $(wc -l < {m}) -ge 3 || exit 7",
        m = marker.display()
    );
    let mut job = shell_job("flaky", &script);
    job.restart_policy = RestartPolicy::OnFailure;
    job.backoff_limit = 3;
    home.client.submit(&job).await.expect("submit");
    let status = home
        .client
        .wait("team", "flaky", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.restarts, 2);
    assert_eq!(status.replicas[0].attempts, 3);
    let tries = std::fs::read_to_string(&marker).expect("marker");
    assert_eq!(tries.lines().count(), 3);
    let events = home
        .client
        .events("team", "flaky", None)
        .await
        .expect("events");
    let restarts: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "Restarting")
        .collect();
    assert_eq!(restarts.len(), 2);
    // Backoff doubles: the second restart waits longer than the first.
    assert!(
        restarts[0].message.contains("in 1.0s"),
        "{}",
        restarts[0].message
    );
    assert!(
        restarts[1].message.contains("in 2.0s"),
        "{}",
        restarts[1].message
    );
}

#[tokio::test]
async fn the_backoff_limit_ends_retries() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let mut job = shell_job("hopeless", "exit 5");
    job.restart_policy = RestartPolicy::OnFailure;
    job.backoff_limit = 1;
    home.client.submit(&job).await.expect("submit");
    let status = home
        .client
        .wait("team", "hopeless", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Failed);
    assert_eq!(status.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(status.replicas[0].attempts, 2);
}

#[tokio::test]
async fn the_active_deadline_stops_a_job() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let mut job = shell_job("slow", "sleep 30");
    job.active_deadline_seconds = Some(1);
    home.client.submit(&job).await.expect("submit");
    let status = home.client.wait("team", "slow", LIMIT).await.expect("wait");
    assert_eq!(status.phase, Phase::Failed);
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(status.replicas[0].phase, ReplicaPhase::Stopped);
}

#[tokio::test]
async fn cancel_kills_the_whole_group_even_a_child_that_ignores_sigterm() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let pids = home.path().join("pids");
    let script = format!(
        // "started" once both pids are written: under load the child may
        // not have run yet when the parent prints.
        "sh -c 'trap \"\" TERM; echo $$ >> {p}; while true; do sleep 0.1; done' & echo $$ >> {p}; \
         while [ \"$(wc -l < {p})\" -lt 2 ]; do sleep 0.01; done; echo started; wait",
        p = pids.display()
    );
    let (_logs, first) = home
        .submit_and_read_first_line(&shell_job("stubborn", &script))
        .await;
    assert_eq!(first.line, "started");
    let status = home
        .client
        .cancel("team", "stubborn")
        .await
        .expect("cancel");
    assert!(!status.phase.is_terminal() || status.phase == Phase::Cancelled);
    let status = home
        .client
        .wait("team", "stubborn", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Cancelled);
    let recorded = std::fs::read_to_string(&pids).expect("pids");
    let pids: Vec<i32> = recorded
        .lines()
        .map(|pid| pid.parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 2, "{recorded}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived the cancel"
        );
    }
}

#[tokio::test]
async fn a_job_waits_for_quota_with_the_numbers_and_starts_when_it_frees() {
    let home = Home::with_config("capacity: {cpus: 8, memory: 16Gi}\n");
    let quota = TenantQuota {
        cpus: Some(Quantity::Int(2)),
        ..TenantQuota::default()
    };
    tenant(&home.client, "team", quota).await;
    let mut first = shell_job("first", "sleep 2");
    first.roles[0].cpus = Quantity::Int(2);
    let mut second = shell_job("second", "true");
    second.roles[0].cpus = Quantity::Int(1);
    home.client.submit(&first).await.expect("submit");
    home.client.submit(&second).await.expect("submit");
    let mut events = home
        .client
        .watch("team", "second", None)
        .await
        .expect("watch");
    let mut pending_message = None;
    while let Some(event) = events.next().await {
        let event = event.expect("event");
        if event.kind == "Pending" {
            pending_message = Some(event.message.clone());
        }
        if event.phase == Phase::Running {
            break;
        }
    }
    assert_eq!(
        pending_message.as_deref(),
        Some("tenant team: cpus 2 of 2 in use, job asks 1")
    );
    let first = home.client.get_job("team", "first").await.expect("get");
    assert!(
        first.phase.is_terminal(),
        "second started before first ended: {first:?}"
    );
    let second = home
        .client
        .wait("team", "second", LIMIT)
        .await
        .expect("wait");
    assert_eq!(second.phase, Phase::Succeeded);
}

#[tokio::test]
async fn a_job_larger_than_the_quota_is_refused_with_the_numbers() {
    let home = Home::new();
    let quota = TenantQuota {
        gpus: Some(4),
        ..TenantQuota::default()
    };
    tenant(&home.client, "team", quota).await;
    let mut job = shell_job("greedy", "true");
    job.roles[0].gpus = moon_core::spec::Gpus::any(8);
    match home.client.submit(&job).await {
        Err(Error::QuotaExceeded(refusal)) => {
            assert_eq!(
                refusal.to_string(),
                "tenant team: job asks gpus 8, quota is gpus 4"
            );
            assert_eq!(
                (refusal.resource.as_str(), refusal.asked.as_str()),
                ("gpus", "8")
            );
            assert_eq!(refusal.limit, "4");
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn two_distributed_jobs_run_at_once_on_different_ports() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let script = "echo $MASTER_ADDR:$MASTER_PORT rank=$RANK world=$WORLD_SIZE; sleep 1";
    for name in ["one", "two"] {
        let mut job = Job::new(
            name,
            "team",
            Framework::Pytorch,
            vec![
                Role::new("master", 1, &["sh", "-c", script]),
                Role::new("worker", 2, &["sh", "-c", script]),
            ],
        );
        for role in &mut job.roles {
            role.cpus = Quantity::Text("100m".into());
        }
        home.client.submit(&job).await.expect("submit");
    }
    let mut seen = BTreeMap::new();
    for name in ["one", "two"] {
        let status = home.client.wait("team", name, LIMIT).await.expect("wait");
        assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
        let mut lines = home.log_lines(name).await;
        lines.sort();
        let address = lines[0].split(' ').next().expect("address").to_string();
        assert!(
            lines.iter().all(|line| line.starts_with(&address)),
            "{lines:?}"
        );
        assert!(lines.iter().any(|line| line.ends_with("rank=0 world=3")));
        assert!(lines.iter().any(|line| line.ends_with("rank=2 world=3")));
        seen.insert(name, address);
    }
    assert_ne!(
        seen["one"], seen["two"],
        "two jobs got the same rendezvous port"
    );
    let one = home.client.get_job("team", "one").await.expect("get");
    let two = home.client.get_job("team", "two").await.expect("get");
    assert!(
        one.started_ms < two.finished_ms && two.started_ms < one.finished_ms,
        "the jobs did not overlap"
    );
}

#[tokio::test]
async fn tenants_take_turns_when_the_machine_is_full() {
    let home = Home::with_config("capacity: {cpus: 1, memory: 16Gi}\n");
    for name in ["alpha", "beta"] {
        let spec = moon_core::spec::Tenant {
            name: name.into(),
            ..Default::default()
        };
        home.client.apply_tenant(&spec).await.expect("tenant");
    }
    let mut order = Vec::new();
    for (tenant, name) in [
        ("alpha", "a1"),
        ("alpha", "a2"),
        ("beta", "b1"),
        ("beta", "b2"),
    ] {
        let mut job = shell_job(name, "sleep 0.3");
        job.tenant = tenant.into();
        home.client.submit(&job).await.expect("submit");
        order.push((tenant, name));
    }
    let mut started = Vec::new();
    for (tenant, name) in order {
        let status = home.client.wait(tenant, name, LIMIT).await.expect("wait");
        assert_eq!(status.phase, Phase::Succeeded);
        started.push((status.started_ms, name));
    }
    started.sort();
    let names: Vec<_> = started.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, vec!["a1", "b1", "a2", "b2"]);
    let b2 = home
        .client
        .events("beta", "b2", None)
        .await
        .expect("events");
    assert!(
        b2.iter()
            .any(|event| event.message.starts_with("machine: ")),
        "b2 never said it waited for the machine: {b2:?}"
    );
}

#[tokio::test]
async fn cancel_sends_sigterm_first_so_replicas_can_clean_up() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let script = "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done";
    let (mut logs, first) = home
        .submit_and_read_first_line(&shell_job("polite", script))
        .await;
    assert_eq!(first.line, "ready");
    home.client.cancel("team", "polite").await.expect("cancel");
    let mut rest = Vec::new();
    while let Some(line) = logs.next().await {
        rest.push(line.expect("line").line);
    }
    // The whole group gets SIGTERM, so the shell may also report its `sleep` "Terminated".
    assert!(rest.iter().any(|line| line == "got TERM"), "{rest:?}");
    let status = home
        .client
        .wait("team", "polite", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Cancelled);
    assert_eq!(status.replicas[0].exit_code, Some(0), "{status:?}");
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|window| window == needle)
        {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn a_secret_reaches_only_the_role_that_names_it_and_no_file_but_its_own() {
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    let value = format!(
        "s3cr3t-{}-{:?}",
        std::process::id(),
        std::time::Instant::now()
    );
    let data = SecretData::new(BTreeMap::from([("TOKEN".to_string(), value.clone())]));
    assert_eq!(
        home.client
            .apply_secret("team", "api", &data)
            .await
            .expect("secret"),
        ApplyOutcome::Created
    );
    let out = tempfile::tempdir().expect("temp dir");
    let role = |name: &str| {
        let script = format!("printf %s \"${{TOKEN:-none}}\" > \"$OUT/{name}\"");
        let mut role = Role::new(name, 1, &["sh", "-c", &script]);
        role.env
            .insert("OUT".into(), out.path().display().to_string());
        role
    };
    let mut reader = role("reader");
    reader.env_from.push(EnvFrom {
        secret: "api".into(),
    });
    let job = Job::new(
        "reads",
        "team",
        Framework::Custom,
        vec![reader, role("other")],
    );
    home.client.submit(&job).await.expect("submit");
    let status = home
        .client
        .wait("team", "reads", LIMIT)
        .await
        .expect("wait");
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).expect("output");
    assert_eq!(read("reader"), value);
    assert_eq!(read("other"), "none");
    assert_eq!(
        files_holding(home.path(), value.as_bytes()),
        [home.path().join("secrets/team/api.json")]
    );

    let mut missing = shell_job("orphan", "true");
    missing.roles[0].env_from.push(EnvFrom {
        secret: "nope".into(),
    });
    match home.client.submit(&missing).await {
        Err(Error::NotFound {
            kind: "secret",
            name,
        }) => assert_eq!(name, "team/nope"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}
