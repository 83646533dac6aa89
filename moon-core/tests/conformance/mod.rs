//! The conformance suite of the [`Backend`] trait: what a user of any
//! backend can count on, one idea per function, each run against a
//! `&dyn Backend` by a test target of its own (`conformance_local.rs`,
//! `conformance_kubernetes.rs`).
//!
//! Every case gets a tenant name that does not exist yet and makes the
//! tenant itself. Where backends differ today, and say so in their docs,
//! the case asks the [`Profile`] what to expect rather than leaving the
//! behaviour untested on one of them.

// Each test target uses the profile of its own backend only.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;

use moon_core::backend::{ApplyOutcome, Backend, Event, LogOptions, Phase, ReplicaPhase};
use moon_core::spec::{
    Framework, Job, Quantity, Role, Service, Spec, Tenant, TenantQuota, service_from_yaml,
};
use moon_core::{Error, JobStatus, Result, SecretData, ServiceStatus};

/// How long a case waits for a job that should end by itself: long enough
/// for a loaded machine or a cluster's scheduler, short of hanging a run.
const WAIT: Duration = Duration::from_secs(120);

/// How long a job meant to outlive the case runs unless it is stopped.
const LONG: Duration = Duration::from_secs(300);

/// The lines a job of the logs cases prints from every replica.
const PRINTED: [&str; 2] = ["conformance says hello", "conformance says goodbye"];

/// What a replica of a case's job does.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Exits 0 at once.
    Succeed,
    /// Exits 1 at once.
    Fail,
    /// Runs for this long, then exits 0.
    Run(Duration),
    /// Prints [`PRINTED`], one line after the other, and exits 0.
    Print,
}

/// What one more job does when its tenant's `jobs` quota is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullJobsQuota {
    /// It is accepted and waits Pending (reason `Quota`) until a running
    /// job of the tenant ends.
    Queues,
    /// The submission is refused with `QuotaExceeded`, and nothing is made.
    Refused,
}

/// Today's documented differences between backends, as the cases need them.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// See [`FullJobsQuota`].
    pub full_jobs_quota: FullJobsQuota,
    /// Whether logs carry what the replicas printed; on the test cluster the
    /// fake nodes serve lines of their own for every container.
    pub logs_carry_output: bool,
    /// Makes a role behave so: its command and environment.
    pub behave: fn(&mut Role, Behaviour),
}

impl Profile {
    /// The local backend: real processes, which do what their command says.
    pub const LOCAL: Profile = Profile {
        full_jobs_quota: FullJobsQuota::Queues,
        logs_carry_output: true,
        behave: run_the_command,
    };

    /// The Kubernetes backend on the test cluster of `scripts/k8s/up.sh`,
    /// whose fake nodes end a pod 1-2 s after it runs, Failed when its
    /// container's env has `MOON_TEST_FAIL=1`, and keep it running for
    /// `MOON_TEST_DURATION` when that is set.
    pub const KUBERNETES: Profile = Profile {
        full_jobs_quota: FullJobsQuota::Refused,
        logs_carry_output: false,
        behave: tell_the_fake_nodes,
    };
}

fn script(behaviour: Behaviour) -> String {
    match behaviour {
        Behaviour::Succeed => "true".to_string(),
        Behaviour::Fail => "exit 1".to_string(),
        Behaviour::Run(duration) => format!("sleep {}", duration.as_secs()),
        Behaviour::Print => PRINTED.map(|line| format!("echo '{line}'")).join("; "),
    }
}

fn run_the_command(role: &mut Role, behaviour: Behaviour) {
    role.command = ["sh", "-c", &script(behaviour)].map(String::from).to_vec();
}

/// The same command, which a real cluster's container would run, and the
/// env the test cluster's fake nodes act on instead.
fn tell_the_fake_nodes(role: &mut Role, behaviour: Behaviour) {
    run_the_command(role, behaviour);
    match behaviour {
        Behaviour::Fail => {
            role.env.insert("MOON_TEST_FAIL".into(), "1".into());
        }
        Behaviour::Run(duration) => {
            role.env.insert(
                "MOON_TEST_DURATION".into(),
                format!("{}s", duration.as_secs()),
            );
        }
        Behaviour::Succeed | Behaviour::Print => {}
    }
}

/// The cases of this file, in order, so that each test target can check
/// that it runs every one.
pub fn cases() -> Vec<&'static str> {
    include_str!("mod.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("pub async fn "))
        .filter_map(|rest| rest.split('(').next())
        .collect()
}

// --------------------------------------------------------------------------- helpers

fn tenant_spec(name: &str) -> Tenant {
    Tenant {
        name: name.to_string(),
        quota: TenantQuota {
            cpus: Some(Quantity::Int(8)),
            memory: Some(Quantity::Text("8Gi".into())),
            ..TenantQuota::default()
        },
        ..Tenant::default()
    }
}

async fn make_tenant(backend: &dyn Backend, tenant: &str) {
    backend
        .apply_tenant(&tenant_spec(tenant))
        .await
        .unwrap_or_else(|error| panic!("applying tenant {tenant}: {error}"));
}

/// A PyTorch job: a master and `workers` workers, small enough for any
/// machine, every replica behaving so.
fn job(profile: &Profile, tenant: &str, name: &str, behaviour: Behaviour, workers: u32) -> Job {
    let role = |name: &str, replicas: u32| {
        let mut role = Role::new(name, replicas, &[]);
        role.cpus = Quantity::Text("100m".into());
        role.memory = Quantity::Text("64Mi".into());
        (profile.behave)(&mut role, behaviour);
        role
    };
    Job::new(
        name,
        tenant,
        Framework::Pytorch,
        vec![role("master", 1), role("worker", workers)],
    )
}

async fn submit(backend: &dyn Backend, job: &Job) {
    backend
        .submit(job)
        .await
        .unwrap_or_else(|error| panic!("submitting {}/{}: {error}", job.tenant, job.name));
}

/// Submits a job of [`job`]'s making.
async fn start(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
    name: &str,
    behaviour: Behaviour,
    workers: u32,
) {
    submit(backend, &job(profile, tenant, name, behaviour, workers)).await;
}

async fn wait(backend: &dyn Backend, tenant: &str, name: &str) -> JobStatus {
    backend
        .wait(tenant, name, Some(WAIT))
        .await
        .unwrap_or_else(|error| panic!("waiting for {tenant}/{name}: {error}"))
}

/// Follows the job's events until one says it runs.
async fn until_running(backend: &dyn Backend, tenant: &str, name: &str) {
    let mut events = backend.watch(tenant, name, None).await.expect("watch");
    let running = async {
        while let Some(event) = events.next().await {
            let event = event.expect("event");
            if event.phase == Phase::Running {
                return;
            }
            assert!(
                !event.phase.is_terminal(),
                "{tenant}/{name} ended before it ran: {event:?}"
            );
        }
        panic!("the events of {tenant}/{name} ended before it ran");
    };
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap_or_else(|_| panic!("{tenant}/{name} did not run within {WAIT:?}"));
}

/// Stops a job a case left running, so that nothing outlives the case.
async fn stop(backend: &dyn Backend, tenant: &str, name: &str) {
    backend.cancel(tenant, name).await.expect("cancel");
    assert_eq!(wait(backend, tenant, name).await.phase, Phase::Cancelled);
}

/// The name a `NotFound` answer gives its `kind` of thing; a panic, naming
/// `what` was asked, for any other answer.
#[track_caller]
fn not_found<T: std::fmt::Debug>(answer: Result<T>, kind: &str, what: &str) -> String {
    match answer {
        Err(Error::NotFound { kind: found, name }) if found == kind => name,
        other => panic!("{what}: expected NotFound for a {kind}, got {other:?}"),
    }
}

/// The message of a `Conflict` answer; a panic, naming `what` was asked,
/// for any other answer.
#[track_caller]
fn conflict<T: std::fmt::Debug>(answer: Result<T>, what: &str) -> String {
    match answer {
        Err(Error::Conflict(message)) => message,
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

fn replicas_of(status: &JobStatus) -> Vec<(String, ReplicaPhase, Option<i32>)> {
    status
        .replicas
        .iter()
        .map(|replica| (replica.name(), replica.phase, replica.exit_code))
        .collect()
}

// --------------------------------------------------------------------------- tenants

/// Applying a tenant creates it, applying it again changes nothing, and a
/// changed spec updates it; get and list report what was applied last.
pub async fn tenant_apply_is_idempotent(backend: &dyn Backend, _: &Profile, tenant: &str) {
    let spec = Spec::Tenant(tenant_spec(tenant));
    assert_eq!(
        backend.apply(&spec).await.expect("apply"),
        ApplyOutcome::Created
    );
    assert_eq!(
        backend.apply(&spec).await.expect("apply"),
        ApplyOutcome::Unchanged
    );

    let mut changed = tenant_spec(tenant);
    changed.quota.jobs = Some(50);
    let outcome = backend.apply(&Spec::Tenant(changed.clone())).await;
    assert_eq!(outcome.expect("apply"), ApplyOutcome::Updated);
    assert_eq!(
        backend.apply_tenant(&changed).await.expect("apply"),
        ApplyOutcome::Unchanged
    );

    let got = backend.get_tenant(tenant).await.expect("get tenant");
    assert_eq!(got.spec.name, tenant);
    assert_eq!(got.spec.quota, changed.quota);
    assert_eq!((got.running_jobs, got.pending_jobs), (0, 0));
    let listed = backend.list_tenants().await.expect("list tenants");
    let ours: Vec<_> = listed.iter().filter(|t| t.spec.name == tenant).collect();
    assert_eq!(ours.len(), 1, "{listed:?}");
    assert_eq!(ours[0].spec.quota, changed.quota);
}

/// A tenant that was never made is not found, and takes no jobs.
pub async fn an_unknown_tenant_is_not_found(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    let name = not_found(backend.get_tenant(tenant).await, "tenant", "get");
    assert_eq!(name, tenant);
    let listed = backend.list_tenants().await.expect("list tenants");
    assert!(listed.iter().all(|t| t.spec.name != tenant), "{listed:?}");
    let orphan = job(profile, tenant, "orphan", Behaviour::Succeed, 1);
    not_found(backend.submit(&orphan).await, "tenant", "submit");
}

/// A tenant whose jobs have not all ended is deleted only by force
/// (`Conflict` naming them otherwise); then it is gone with every job it
/// had, and its name and its jobs' names are free again.
pub async fn a_tenant_is_deleted_with_its_jobs_only_by_force(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    let done = job(profile, tenant, "done", Behaviour::Succeed, 1);
    submit(backend, &done).await;
    wait(backend, tenant, "done").await;
    start(backend, profile, tenant, "busy", Behaviour::Run(LONG), 1).await;
    until_running(backend, tenant, "busy").await;

    let message = conflict(backend.delete_tenant(tenant, false).await, "delete");
    let says = format!("tenant {tenant} has 1 unfinished job (busy Running)");
    assert!(
        message.contains(&says) && message.contains("force"),
        "{message}"
    );
    let jobs = backend.list_jobs(Some(tenant)).await.expect("list jobs");
    assert_eq!(jobs.len(), 2, "{jobs:?}");

    backend
        .delete_tenant(tenant, true)
        .await
        .expect("delete with force");
    not_found(
        backend.get_tenant(tenant).await,
        "tenant",
        "get after the delete",
    );
    let tenants = backend.list_tenants().await.expect("list tenants");
    assert!(tenants.iter().all(|t| t.spec.name != tenant), "{tenants:?}");
    match backend.get_job(tenant, "done").await {
        // The job, or its tenant, depending on what the backend reads first.
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound for its job, got {other:?}"),
    }

    make_tenant(backend, tenant).await;
    submit(backend, &done).await;
    assert_eq!(wait(backend, tenant, "done").await.phase, Phase::Succeeded);
}

// --------------------------------------------------------------------------- jobs

/// `apply` with a job's spec submits it: the job is there to get and list
/// at once, and runs.
pub async fn apply_submits_a_job(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    let spec = job(profile, tenant, "applied", Behaviour::Succeed, 1);
    let outcome = backend
        .apply(&Spec::Job(spec.clone()))
        .await
        .expect("apply");
    assert_eq!(outcome, ApplyOutcome::Created);

    let status = backend.get_job(tenant, "applied").await.expect("get job");
    assert_eq!(
        (status.tenant.as_str(), status.name.as_str()),
        (tenant, "applied")
    );
    assert_eq!(status.framework, Framework::Pytorch);
    let listed = backend.list_jobs(Some(tenant)).await.expect("list jobs");
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["applied"]
    );
    assert_eq!(
        wait(backend, tenant, "applied").await.phase,
        Phase::Succeeded
    );
}

/// Jobs are listed oldest first, whatever their names, in a tenant's list
/// and in the list of all jobs.
pub async fn jobs_are_listed_oldest_first(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    // Submitted in the same second, most likely, and against the order of
    // their names.
    let submitted = ["zeta", "alpha"];
    for name in submitted {
        start(backend, profile, tenant, name, Behaviour::Succeed, 1).await;
    }
    let names = |jobs: Vec<JobStatus>| -> Vec<String> {
        jobs.into_iter()
            .filter(|status| status.tenant == tenant)
            .map(|status| status.name)
            .collect()
    };
    let of_tenant = backend.list_jobs(Some(tenant)).await.expect("list jobs");
    assert_eq!(names(of_tenant), submitted);
    let of_all = backend.list_jobs(None).await.expect("list all jobs");
    assert_eq!(names(of_all), submitted);
    for name in submitted {
        wait(backend, tenant, name).await;
    }
}

/// A job whose replicas all exit 0 ends Succeeded, every replica with it,
/// and `into_result` passes it on.
pub async fn a_job_that_succeeds_ends_succeeded(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "ok", Behaviour::Succeed, 2).await;
    let status = wait(backend, tenant, "ok").await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    let succeeded = |name: &str| (name.to_string(), ReplicaPhase::Succeeded, Some(0));
    assert_eq!(
        replicas_of(&status),
        [
            succeeded("master-0"),
            succeeded("worker-0"),
            succeeded("worker-1")
        ]
    );
    let (started, finished) = (status.started_ms, status.finished_ms);
    assert!(
        started.is_some() && finished >= started,
        "started {started:?}, finished {finished:?}"
    );
    let status = status.into_result().expect("a succeeded job is Ok");
    assert_eq!(
        backend.get_job(tenant, "ok").await.expect("get job").phase,
        status.phase
    );
}

/// A job's events tell its story in order: Submitted first, Succeeded last,
/// each replica's start between; the history reads the same afterwards,
/// and from any position on.
pub async fn events_come_in_order(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "story", Behaviour::Succeed, 1).await;
    let watched: Vec<Event> = backend
        .watch(tenant, "story", None)
        .await
        .expect("watch")
        .map(|event| event.expect("event"))
        .collect()
        .await;
    let kinds: Vec<&str> = watched.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"Submitted"), "{kinds:?}");
    assert_eq!(watched[0].phase, Phase::Pending);
    let last = watched.last().expect("events");
    assert_eq!(
        (last.kind.as_str(), last.phase),
        ("Succeeded", Phase::Succeeded)
    );
    let started: BTreeSet<&str> = watched
        .iter()
        .filter(|e| e.kind == "ReplicaStarted")
        .filter_map(|e| e.replica.as_deref())
        .collect();
    assert_eq!(
        started,
        BTreeSet::from(["master-0", "worker-0"]),
        "{kinds:?}"
    );
    // Strictly increasing: resuming after a seq must miss nothing.
    let seqs: Vec<u64> = watched.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    assert!(
        watched
            .iter()
            .all(|e| e.tenant == tenant && e.job == "story"),
        "{watched:?}"
    );

    let listed = backend.events(tenant, "story", None).await.expect("events");
    assert_eq!(listed[0].kind, "Submitted");
    assert_eq!(listed.last().map(|e| e.kind.as_str()), Some("Succeeded"));
    let after_first = backend
        .events(tenant, "story", Some(listed[0].seq))
        .await
        .expect("events after");
    assert_eq!(after_first, listed[1..]);
    let resumed: Vec<Event> = backend
        .watch(tenant, "story", Some(listed[0].seq))
        .await
        .expect("watch after")
        .map(|event| event.expect("event"))
        .collect()
        .await;
    assert_eq!(resumed.first().map(|e| e.seq), listed.get(1).map(|e| e.seq));
    assert_eq!(resumed.last().map(|e| e.kind.as_str()), Some("Succeeded"));
}

/// A job whose replica exits 1 ends Failed with the reason, and
/// `into_result` turns it into `JobFailed`.
pub async fn a_failing_job_ends_failed(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "fails", Behaviour::Fail, 1).await;
    let status = wait(backend, tenant, "fails").await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(
        status.reason.as_deref(),
        Some("ReplicaFailed"),
        "{status:?}"
    );
    let message = status.message.clone().unwrap_or_default();
    assert!(message.contains("exited with code 1"), "{message}");
    assert!(
        status
            .replicas
            .iter()
            .any(|r| r.phase == ReplicaPhase::Failed && r.exit_code == Some(1)),
        "{status:?}"
    );
    match status.into_result().map_err(Error::from) {
        Err(Error::JobFailed { job, phase, reason }) => {
            assert_eq!(job, format!("{tenant}/fails"));
            assert_eq!(phase, "failed");
            assert!(reason.contains("exited with code 1"), "{reason}");
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

/// Waiting less than a job takes is `Timeout`, soon after the limit, and
/// leaves the job running.
pub async fn wait_with_a_short_timeout_times_out(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "slow", Behaviour::Run(LONG), 1).await;
    let limit = Duration::from_secs(2);
    let asked = Instant::now();
    match backend.wait(tenant, "slow", Some(limit)).await {
        Err(Error::Timeout { what, seconds }) => {
            assert!(what.contains(&format!("{tenant}/slow")), "{what}");
            assert_eq!(seconds, limit.as_secs_f64());
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    let took = asked.elapsed();
    assert!(took >= limit && took < limit * 5, "the wait took {took:?}");
    let status = backend.get_job(tenant, "slow").await.expect("get job");
    assert!(!status.phase.is_terminal(), "{status:?}");
    stop(backend, tenant, "slow").await;
}

/// A job that breaks a rule is refused with the rule and the field's path,
/// and nothing of it is made.
pub async fn an_invalid_job_is_refused(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    let mut invalid = job(profile, tenant, "invalid", Behaviour::Succeed, 1);
    invalid.roles[1].replicas = 0;
    for refused in [
        backend.submit(&invalid).await.map(drop),
        backend.apply(&Spec::Job(invalid.clone())).await.map(drop),
    ] {
        match refused {
            Err(Error::InvalidSpec { kind, errors }) => {
                assert_eq!(kind, "job");
                let found: Vec<(&str, &str)> = errors
                    .0
                    .iter()
                    .map(|e| (e.path.as_str(), e.rule.as_str()))
                    .collect();
                assert_eq!(found, [("roles[1].replicas", "range")], "{errors}");
            }
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }
    not_found(backend.get_job(tenant, "invalid").await, "job", "get");
}

/// Every operation on a job that does not exist is `NotFound`, naming it.
pub async fn an_unknown_job_is_not_found(backend: &dyn Backend, _: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    let (absent, key) = ("no-such-job", format!("{tenant}/no-such-job"));
    let answers = [
        ("get", backend.get_job(tenant, absent).await.map(drop)),
        (
            "events",
            backend.events(tenant, absent, None).await.map(drop),
        ),
        ("watch", backend.watch(tenant, absent, None).await.map(drop)),
        (
            "wait",
            backend.wait(tenant, absent, Some(WAIT)).await.map(drop),
        ),
        (
            "logs",
            backend
                .logs(tenant, absent, LogOptions::default())
                .await
                .map(drop),
        ),
        ("cancel", backend.cancel(tenant, absent).await.map(drop)),
        ("delete", backend.delete_job(tenant, absent, false).await),
        (
            "delete --force",
            backend.delete_job(tenant, absent, true).await,
        ),
    ];
    for (operation, answer) in answers {
        assert_eq!(not_found(answer, "job", operation), key, "{operation}");
    }
}

/// A second job of a name in use is refused, whether submitted or applied,
/// and the first one runs on untouched.
pub async fn a_duplicate_submit_is_already_exists(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    let first = job(profile, tenant, "unique", Behaviour::Succeed, 1);
    submit(backend, &first).await;
    let mut second = job(profile, tenant, "unique", Behaviour::Fail, 1);
    second.labels.insert("attempt".into(), "second".into());
    for refused in [
        backend.submit(&second).await.map(drop),
        backend.apply(&Spec::Job(second.clone())).await.map(drop),
    ] {
        match refused {
            Err(Error::AlreadyExists { kind: "job", name }) => {
                assert_eq!(name, format!("{tenant}/unique"));
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
    }
    assert_eq!(
        wait(backend, tenant, "unique").await.phase,
        Phase::Succeeded
    );
    let events = backend
        .events(tenant, "unique", None)
        .await
        .expect("events");
    let submitted = events.iter().filter(|e| e.kind == "Submitted").count();
    assert_eq!(submitted, 1, "{events:?}");
}

/// Cancelling a running job ends it Cancelled, its replicas stopped, and
/// `into_result` reports it as `JobFailed`.
pub async fn cancel_ends_a_job_cancelled(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "long", Behaviour::Run(LONG), 1).await;
    until_running(backend, tenant, "long").await;
    // Asked, not necessarily done: replicas get a grace period to stop.
    let asked = backend.cancel(tenant, "long").await.expect("cancel");
    assert!(
        matches!(asked.phase, Phase::Running | Phase::Cancelled),
        "{asked:?}"
    );
    let status = wait(backend, tenant, "long").await;
    assert_eq!(status.phase, Phase::Cancelled, "{status:?}");
    assert!(
        status
            .replicas
            .iter()
            .all(|r| matches!(r.phase, ReplicaPhase::Stopped | ReplicaPhase::Failed)),
        "{status:?}"
    );
    match status.into_result().map_err(Error::from) {
        Err(Error::JobFailed { phase, .. }) => assert_eq!(phase, "cancelled"),
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

/// A job that has ended cannot be cancelled: `Conflict`, and it keeps its
/// outcome.
pub async fn cancel_after_the_end_is_conflict(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "done", Behaviour::Succeed, 1).await;
    assert_eq!(wait(backend, tenant, "done").await.phase, Phase::Succeeded);
    let message = conflict(backend.cancel(tenant, "done").await, "cancel");
    assert!(message.contains("already ended Succeeded"), "{message}");
    let status = backend.get_job(tenant, "done").await.expect("get job");
    assert_eq!(status.phase, Phase::Succeeded);
}

/// A job that has not ended is not deleted without force (`Conflict`, and
/// it runs on); with force it is gone, and its name runs a new job.
pub async fn delete_of_an_unfinished_job_needs_force(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "busy", Behaviour::Run(LONG), 1).await;
    until_running(backend, tenant, "busy").await;
    let message = conflict(backend.delete_job(tenant, "busy", false).await, "delete");
    assert!(
        message.contains(&format!("job {tenant}/busy is Running")) && message.contains("force"),
        "{message}"
    );
    let status = backend.get_job(tenant, "busy").await.expect("get job");
    assert_eq!(status.phase, Phase::Running);

    backend
        .delete_job(tenant, "busy", true)
        .await
        .expect("delete with force");
    not_found(
        backend.get_job(tenant, "busy").await,
        "job",
        "get after the delete",
    );
    let listed = backend.list_jobs(Some(tenant)).await.expect("list jobs");
    assert!(listed.iter().all(|s| s.name != "busy"), "{listed:?}");

    start(backend, profile, tenant, "busy", Behaviour::Succeed, 1).await;
    assert_eq!(wait(backend, tenant, "busy").await.phase, Phase::Succeeded);
    // A new job: its own history, not the old one's.
    let events = backend.events(tenant, "busy", None).await.expect("events");
    let submitted = events.iter().filter(|e| e.kind == "Submitted").count();
    assert_eq!(submitted, 1, "{events:?}");
}

/// A job that has ended is deleted without force, with its events and
/// logs; deleting it again is `NotFound`.
pub async fn a_finished_job_is_deleted(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "finished", Behaviour::Succeed, 1).await;
    wait(backend, tenant, "finished").await;
    backend
        .delete_job(tenant, "finished", false)
        .await
        .expect("delete");
    let events = backend.events(tenant, "finished", None).await;
    not_found(events, "job", "events after the delete");
    let again = backend.delete_job(tenant, "finished", false).await;
    not_found(again, "job", "a second delete");
}

// --------------------------------------------------------------------------- quotas

/// One job more than the tenant's `jobs` quota: queued until a running job
/// ends, or refused at submit with the numbers, as the backend documents.
/// Either way it runs once the first job has ended.
pub async fn a_full_jobs_quota_holds_the_next_job(
    backend: &dyn Backend,
    profile: &Profile,
    tenant: &str,
) {
    let mut spec = tenant_spec(tenant);
    spec.quota.jobs = Some(1);
    backend.apply_tenant(&spec).await.expect("tenant");
    start(backend, profile, tenant, "first", Behaviour::Run(LONG), 1).await;
    until_running(backend, tenant, "first").await;

    let next = job(profile, tenant, "next", Behaviour::Succeed, 1);
    match profile.full_jobs_quota {
        FullJobsQuota::Queues => {
            let status = backend.submit(&next).await.expect("submit");
            assert_eq!(status.phase, Phase::Pending, "{status:?}");
            let mut events = backend.watch(tenant, "next", None).await.expect("watch");
            let held = async {
                while let Some(event) = events.next().await {
                    let event = event.expect("event");
                    assert_eq!(event.phase, Phase::Pending, "{event:?}");
                    if event.kind == "Pending" {
                        return event.message;
                    }
                }
                panic!("the events of {tenant}/next ended");
            };
            let message = tokio::time::timeout(WAIT, held)
                .await
                .expect("a Pending event");
            assert!(message.contains("jobs 1 of 1"), "{message}");
            let status = backend.get_job(tenant, "next").await.expect("get job");
            assert_eq!(status.phase, Phase::Pending);
            assert_eq!(status.reason.as_deref(), Some("Quota"), "{status:?}");
            stop(backend, tenant, "first").await;
        }
        FullJobsQuota::Refused => {
            match backend.submit(&next).await {
                Err(Error::QuotaExceeded(refusal)) => {
                    assert_eq!(refusal.scope, format!("tenant {tenant}"));
                    assert_eq!(refusal.resource, "jobs");
                    let numbers = (refusal.used.as_str(), refusal.asked.as_str());
                    assert_eq!((numbers, refusal.limit.as_str()), (("1", "1"), "1"));
                    assert!(refusal.message.contains("jobs 1 of 1"), "{refusal:?}");
                }
                other => panic!("expected QuotaExceeded, got {other:?}"),
            }
            let refused = backend.get_job(tenant, "next").await;
            not_found(refused, "job", "get of the refused job");
            stop(backend, tenant, "first").await;
            submit(backend, &next).await;
        }
    }
    assert_eq!(wait(backend, tenant, "next").await.phase, Phase::Succeeded);
}

// --------------------------------------------------------------------------- secrets

/// A secret is created, applied again unchanged, updated; listed with its
/// keys and never its values; and deleted.
pub async fn secrets_are_applied_listed_and_deleted(
    backend: &dyn Backend,
    _: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    let value = "conformance-secret-value";
    let data = |pairs: &[(&str, &str)]| {
        SecretData::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let first = data(&[("TOKEN", value)]);
    let apply = |data: SecretData| async move {
        backend
            .apply_secret(tenant, "registry", &data)
            .await
            .expect("apply secret")
    };
    assert_eq!(apply(first.clone()).await, ApplyOutcome::Created);
    assert_eq!(apply(first).await, ApplyOutcome::Unchanged);
    let second = data(&[("TOKEN", value), ("USER", "conformance")]);
    assert_eq!(apply(second).await, ApplyOutcome::Updated);

    let listed = backend.list_secrets(tenant).await.expect("list secrets");
    let shown: Vec<(&str, &str, Vec<&str>)> = listed
        .iter()
        .map(|s| {
            let keys = s.keys.iter().map(String::as_str).collect();
            (s.tenant.as_str(), s.name.as_str(), keys)
        })
        .collect();
    assert_eq!(shown, [(tenant, "registry", vec!["TOKEN", "USER"])]);
    assert!(!format!("{listed:?}").contains(value), "{listed:?}");

    backend
        .delete_secret(tenant, "registry")
        .await
        .expect("delete secret");
    assert_eq!(backend.list_secrets(tenant).await.expect("list"), []);
}

/// Deleting a secret that does not exist is `NotFound`, naming it.
pub async fn deleting_a_missing_secret_is_not_found(
    backend: &dyn Backend,
    _: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    let deleted = backend.delete_secret(tenant, "no-such-secret").await;
    let name = not_found(deleted, "secret", "delete");
    assert!(name.contains("no-such-secret"), "{name}");
}

// --------------------------------------------------------------------------- logs

/// Following a job's logs gives lines of each of its replicas, what they
/// printed where the backend has it, and ends after the job does.
pub async fn logs_follow_a_job_to_its_end(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "talks", Behaviour::Print, 1).await;
    let options = LogOptions {
        follow: true,
        ..LogOptions::default()
    };
    let followed = backend
        .logs(tenant, "talks", options)
        .await
        .expect("logs")
        .map(|line| line.expect("line"))
        .collect::<Vec<_>>();
    let lines = tokio::time::timeout(WAIT, followed)
        .await
        .expect("the logs end after the job");
    let status = backend.get_job(tenant, "talks").await.expect("get job");
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");

    let mut by_replica: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in &lines {
        by_replica
            .entry(line.replica.as_str())
            .or_default()
            .push(line.line.as_str());
    }
    let replicas: Vec<&str> = by_replica.keys().copied().collect();
    assert_eq!(replicas, ["master-0", "worker-0"], "{lines:?}");
    if profile.logs_carry_output {
        for (replica, printed) in &by_replica {
            assert_eq!(printed, &PRINTED, "{replica}: {lines:?}");
        }
    }
}

/// The logs of one replica are its own lines only, and `tail` keeps the
/// last of them; a replica the job does not have is `NotFound`.
pub async fn logs_of_one_replica(backend: &dyn Backend, profile: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    start(backend, profile, tenant, "talks", Behaviour::Print, 2).await;
    wait(backend, tenant, "talks").await;
    let options = LogOptions {
        tail: Some(1),
        replica: Some("worker-1".into()),
        ..LogOptions::default()
    };
    let lines: Vec<_> = backend
        .logs(tenant, "talks", options)
        .await
        .expect("logs")
        .map(|line| line.expect("line"))
        .collect()
        .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].replica, "worker-1");
    if profile.logs_carry_output {
        assert_eq!(lines[0].line, PRINTED[PRINTED.len() - 1]);
    }

    let absent = LogOptions {
        replica: Some("worker-7".into()),
        ..LogOptions::default()
    };
    let answer = backend.logs(tenant, "talks", absent).await.map(drop);
    let name = not_found(answer, "replica", "logs of worker-7");
    assert!(name.ends_with("worker-7"), "{name}");
}

// --------------------------------------------------------------------------- services

/// A service of `replicas` replicas, each an HTTP server on its `PORT` (a
/// real one on this machine; on the test cluster the fake nodes make its
/// pods ready).
fn service(tenant: &str, name: &str, replicas: u32) -> Service {
    service_from_yaml(&format!(
        "kind: Service\nname: {name}\ntenant: {tenant}\n\
         command: [sh, -c, 'exec python3 -m http.server --bind 127.0.0.1 \"$PORT\"']\n\
         replicas: {replicas}\ncpus: 100m\nmemory: 64Mi\n"
    ))
    .expect("a valid service")
}

/// Polls the service until `wanted` says yes; its status then.
async fn service_until(
    backend: &dyn Backend,
    tenant: &str,
    name: &str,
    what: &str,
    wanted: impl Fn(&ServiceStatus) -> bool,
) -> ServiceStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = backend
            .get_service(tenant, name)
            .await
            .unwrap_or_else(|error| panic!("reading service {tenant}/{name}: {error}"));
        if wanted(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{tenant}/{name}: not {what} within {WAIT:?}: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A service is created once (applied again, nothing changes), becomes ready
/// at a URL with every replica listed, scales up and down, and once deleted
/// is not found.
pub async fn a_service_is_served_scaled_and_deleted(
    backend: &dyn Backend,
    _: &Profile,
    tenant: &str,
) {
    make_tenant(backend, tenant).await;
    let spec = service(tenant, "web", 2);
    assert_eq!(
        backend.apply_service(&spec).await.unwrap(),
        ApplyOutcome::Created
    );
    assert_eq!(
        backend.apply_service(&spec).await.unwrap(),
        ApplyOutcome::Unchanged
    );
    let ready = |n: u32| {
        move |s: &ServiceStatus| {
            s.url.is_some()
                && s.desired_replicas == n
                && s.ready_replicas == n
                && s.replicas.len() == n as usize
        }
    };
    let status = service_until(backend, tenant, "web", "2 ready", ready(2)).await;
    assert_eq!(status.phase, Phase::Running);
    assert!(
        status.replicas.iter().all(|r| r.address.is_some()),
        "{status:#?}"
    );
    let listed = backend.list_services(Some(tenant)).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["web"]
    );

    let scaled = backend.scale_service(tenant, "web", 3).await.unwrap();
    assert_eq!(scaled.desired_replicas, 3);
    service_until(backend, tenant, "web", "3 ready", ready(3)).await;
    backend.scale_service(tenant, "web", 1).await.unwrap();
    service_until(backend, tenant, "web", "down to 1", ready(1)).await;

    backend.delete_service(tenant, "web").await.unwrap();
    not_found(
        backend.get_service(tenant, "web").await,
        "service",
        "get after delete",
    );
}

/// Reading, scaling or deleting a service that does not exist is `NotFound`.
pub async fn an_unknown_service_is_not_found(backend: &dyn Backend, _: &Profile, tenant: &str) {
    make_tenant(backend, tenant).await;
    let name = not_found(backend.get_service(tenant, "ghost").await, "service", "get");
    assert_eq!(name, format!("{tenant}/ghost"));
    not_found(
        backend.scale_service(tenant, "ghost", 2).await,
        "service",
        "scale",
    );
    not_found(
        backend.delete_service(tenant, "ghost").await,
        "service",
        "delete",
    );
}
