//! A job's status on Kubernetes, derived from what the cluster holds: its
//! anchor, its replicas' Jobs and pods, and the warnings the Job controller
//! recorded. Pure, so that every rule is tested without a cluster; the
//! backend feeds it what its watches see.
//!
//! The cluster is the only state: no moon process runs there. Whoever
//! derives a terminal phase that the anchor does not record yet (a waiting
//! client, `moon job get`) gets a [`Conclusion`] back, and the backend writes
//! it to the anchor's annotations and stops the replicas still running, so
//! the outcome survives the pods and every later reader agrees on it.
//!
//! # Phases
//!
//! - **Pending** until every replica has had a pod start: a distributed job
//!   makes no progress with part of its replicas, so a replica held by the
//!   quota or the scheduler holds the job, with that replica's reason.
//! - **Running** from then on, restarts included.
//! - **Succeeded** once every replica of the roles that decide success (the
//!   framework's role table) has a complete Job.
//! - **Failed** when a replica's Job fails (its pod failed with no restarts
//!   left, or its deadline passed), or when the restarts of all replicas
//!   together exceed the spec's `backoffLimit`, which per-replica Jobs cannot
//!   count for each other.
//! - **Cancelled** only as recorded on the anchor by `cancel`.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::job::{SPEC_KEY, XGBOOST_TRACKER_PORT, replica_name};
use super::meta::{REPLICA_INDEX_LABEL, ROLE_LABEL, SUBMITTED_ANNOTATION};
use crate::error::{Error, Result};
use crate::rendezvous;
use crate::spec::{Job, RestartPolicy};
use crate::status::{Event, JobStatus, Phase, ReplicaPhase, ReplicaStatus};

/// The anchor annotation that records a job's terminal phase.
pub const PHASE_ANNOTATION: &str = "moon.dev/phase";
/// The anchor annotation with the terminal phase's short reason.
pub const REASON_ANNOTATION: &str = "moon.dev/reason";
/// The anchor annotation with the terminal phase's sentence.
pub const MESSAGE_ANNOTATION: &str = "moon.dev/message";
/// The anchor annotation with when the job ended, in milliseconds since the epoch.
pub const FINISHED_ANNOTATION: &str = "moon.dev/finished-ms";

/// What the cluster holds of one job.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The anchor ConfigMap, which holds the spec.
    pub anchor: core::ConfigMap,
    /// The replicas' batch Jobs.
    pub jobs: Vec<batch::Job>,
    /// Their pods, every attempt.
    pub pods: Vec<core::Pod>,
    /// Warnings about the replicas' Jobs (`FailedCreate`: refused by a quota).
    pub warnings: Vec<core::Event>,
}

/// A terminal phase the anchor does not record yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conclusion {
    /// Succeeded or Failed.
    pub phase: Phase,
    /// `Completed`, `ReplicaFailed`, `BackoffLimitExceeded`, `DeadlineExceeded`.
    pub reason: String,
    /// For people.
    pub message: String,
    /// When it ended.
    pub finished_ms: i64,
}

impl Conclusion {
    /// The anchor annotations that record it.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                PHASE_ANNOTATION.to_string(),
                self.phase.as_str().to_string(),
            ),
            (REASON_ANNOTATION.to_string(), self.reason.clone()),
            (MESSAGE_ANNOTATION.to_string(), self.message.clone()),
            (
                FINISHED_ANNOTATION.to_string(),
                self.finished_ms.to_string(),
            ),
        ])
    }
}

/// A job's status and history as the cluster shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The job's spec, as stored in its anchor.
    pub spec: Job,
    /// Its status.
    pub status: JobStatus,
    /// Its history, oldest first, numbered from 1.
    pub events: Vec<Event>,
    /// Set when the job has ended and the anchor does not say so yet.
    pub conclusion: Option<Conclusion>,
    /// Replica Jobs to stop: not finished, while the job has ended.
    pub to_stop: Vec<String>,
}

/// The spec stored in a job's anchor.
pub fn anchor_spec(anchor: &core::ConfigMap) -> Result<Job> {
    let name = anchor.metadata.name.clone().unwrap_or_default();
    let text = anchor
        .data
        .as_ref()
        .and_then(|data| data.get(SPEC_KEY))
        .ok_or_else(|| Error::Malformed(format!("ConfigMap {name} holds no {SPEC_KEY}")))?;
    serde_json::from_str(text).map_err(|error| {
        Error::Malformed(format!(
            "ConfigMap {name}: {SPEC_KEY} is not a job spec: {error}"
        ))
    })
}

/// Derives a job's status, history and what is left to do from what the
/// cluster holds. See the [module docs](self).
pub fn derive(observed: &Observed) -> Result<Derived> {
    let spec = anchor_spec(&observed.anchor)?;
    let hidden = rendezvous::hidden_roles(&spec, "0.0.0.0", XGBOOST_TRACKER_PORT);
    let mut replicas = Vec::new();
    for (hidden_role, role) in hidden
        .iter()
        .map(|role| (true, role))
        .chain(spec.roles.iter().map(|role| (false, role)))
    {
        for index in 0..role.replicas {
            replicas.push(observe_replica(
                observed,
                &spec,
                &role.name,
                index,
                hidden_role,
            ));
        }
    }

    let created_ms = created_ms(&observed.anchor);
    let restarts: u32 = replicas.iter().map(Replica::restarts).sum();
    let all_started = replicas
        .iter()
        .all(|replica| replica.first_start_ms.is_some());
    let started_ms = if all_started {
        replicas.iter().filter_map(|r| r.first_start_ms).max()
    } else {
        None
    };

    let recorded = recorded_phase(&observed.anchor);
    let derived_end = if recorded.is_some() {
        None
    } else {
        conclude(&spec, &replicas, restarts)
    };
    let (phase, reason, message, finished_ms) = match (&recorded, &derived_end) {
        (Some(end), _) | (None, Some(end)) => (
            end.phase,
            Some(end.reason.clone()),
            Some(end.message.clone()),
            Some(end.finished_ms),
        ),
        (None, None) if all_started => (Phase::Running, None, None, None),
        (None, None) => {
            let (reason, message) = pending_reason(observed, &replicas);
            (Phase::Pending, Some(reason), Some(message), None)
        }
    };

    let to_stop = if phase.is_terminal() {
        replicas
            .iter()
            .filter(|replica| replica.job_active)
            .map(|replica| replica.job_name.clone())
            .collect()
    } else {
        Vec::new()
    };
    let statuses = replicas
        .iter()
        .map(|replica| replica.status(phase.is_terminal()))
        .collect();
    let status = JobStatus {
        tenant: spec.tenant.clone(),
        name: spec.name.clone(),
        framework: spec.framework,
        phase,
        reason,
        message,
        created_ms,
        started_ms,
        finished_ms,
        restarts,
        replicas: statuses,
    };
    let events = history(observed, &status, &replicas);
    Ok(Derived {
        spec,
        status,
        events,
        conclusion: derived_end,
        to_stop,
    })
}

/// One replica as its Job and pods show it.
#[derive(Debug)]
struct Replica {
    name: String,
    role: String,
    index: u32,
    hidden: bool,
    job_name: String,
    complete: Option<i64>,
    /// When its Job failed, and the controller's reason.
    failed: Option<(i64, String)>,
    /// Its Job exists, is not suspended and has not finished.
    job_active: bool,
    suspended: bool,
    /// Its pods, oldest first.
    pods: Vec<PodView>,
    first_start_ms: Option<i64>,
}

#[derive(Debug)]
struct PodView {
    name: String,
    node: Option<String>,
    phase: String,
    start_ms: Option<i64>,
    exit: Option<Exit>,
    unschedulable: Option<(i64, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Exit {
    code: i32,
    signal: Option<i32>,
    at_ms: i64,
}

impl Exit {
    fn how(self) -> String {
        match self.signal {
            Some(signal) => format!("was killed by signal {signal}"),
            None => format!("exited with code {}", self.code),
        }
    }
}

impl Replica {
    fn attempts(&self) -> u32 {
        self.pods
            .iter()
            .filter(|pod| pod.start_ms.is_some())
            .count() as u32
    }

    /// Pods that failed and were replaced.
    fn restarts(&self) -> u32 {
        let failed = self.pods.iter().filter(|pod| pod.phase == "Failed").count() as u32;
        if self.failed.is_some() {
            failed.saturating_sub(1)
        } else {
            failed.min(self.pods.len().saturating_sub(1) as u32)
        }
    }

    fn latest(&self) -> Option<&PodView> {
        self.pods.last()
    }

    fn phase(&self, job_ended: bool) -> ReplicaPhase {
        if self.complete.is_some() {
            ReplicaPhase::Succeeded
        } else if self.failed.is_some() {
            ReplicaPhase::Failed
        } else if self.suspended || (job_ended && self.first_start_ms.is_some()) {
            ReplicaPhase::Stopped
        } else if self.latest().is_some_and(|pod| pod.phase == "Running") {
            ReplicaPhase::Running
        } else {
            ReplicaPhase::Pending
        }
    }

    fn status(&self, job_ended: bool) -> ReplicaStatus {
        let exit = self.latest().and_then(|pod| pod.exit);
        ReplicaStatus {
            role: self.role.clone(),
            index: self.index,
            phase: self.phase(job_ended),
            attempts: self.attempts(),
            exit_code: exit
                .filter(|exit| exit.signal.is_none())
                .map(|exit| exit.code),
            signal: exit.and_then(|exit| exit.signal),
        }
    }
}

fn observe_replica(
    observed: &Observed,
    spec: &Job,
    role: &str,
    index: u32,
    hidden: bool,
) -> Replica {
    let job_name = replica_name(spec, role, index);
    let job = observed
        .jobs
        .iter()
        .find(|job| job.metadata.name.as_deref() == Some(job_name.as_str()));
    let condition = |kind: &str| {
        job.and_then(|job| job.status.as_ref())
            .and_then(|status| status.conditions.as_ref())
            .and_then(|conditions| {
                conditions
                    .iter()
                    .find(|condition| condition.type_ == kind && condition.status == "True")
            })
    };
    let complete =
        condition("Complete").map(|c| millis(c.last_transition_time.as_ref()).unwrap_or(0));
    let failed = condition("Failed").map(|c| {
        (
            millis(c.last_transition_time.as_ref()).unwrap_or(0),
            c.reason.clone().unwrap_or_else(|| "Failed".to_string()),
        )
    });
    let suspended = job
        .and_then(|job| job.spec.as_ref())
        .and_then(|spec| spec.suspend)
        .unwrap_or(false);
    let index_text = index.to_string();
    let mut pods: Vec<&core::Pod> = observed
        .pods
        .iter()
        .filter(|pod| {
            let labels = pod.metadata.labels.as_ref();
            labels.and_then(|l| l.get(ROLE_LABEL)).map(String::as_str) == Some(role)
                && labels.and_then(|l| l.get(REPLICA_INDEX_LABEL)) == Some(&index_text)
        })
        .collect();
    pods.sort_by_key(|pod| {
        (
            millis(pod.metadata.creation_timestamp.as_ref()),
            pod.metadata.name.clone(),
        )
    });
    let pods: Vec<PodView> = pods.into_iter().map(|pod| view_pod(pod, role)).collect();
    let first_start_ms = pods.iter().filter_map(|pod| pod.start_ms).min();
    Replica {
        name: format!("{role}-{index}"),
        role: role.to_string(),
        index,
        hidden,
        job_name,
        job_active: job.is_some() && complete.is_none() && failed.is_none() && !suspended,
        complete,
        failed,
        suspended,
        pods,
        first_start_ms,
    }
}

fn view_pod(pod: &core::Pod, role: &str) -> PodView {
    let status = pod.status.clone().unwrap_or_default();
    let phase = status
        .phase
        .clone()
        .unwrap_or_else(|| "Pending".to_string());
    // The replica's own container is named after its role; init containers
    // (the XGBoost workers' wait for the tracker) do not count as a start.
    let container = status
        .container_statuses
        .as_ref()
        .and_then(|all| all.iter().find(|c| c.name == role).or(all.first()));
    let state = container.and_then(|c| c.state.as_ref());
    let running_since = state
        .and_then(|s| s.running.as_ref())
        .and_then(|running| millis(running.started_at.as_ref()));
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let exit = terminated.map(|t| Exit {
        code: t.exit_code,
        signal: t.signal,
        at_ms: millis(t.finished_at.as_ref()).unwrap_or(0),
    });
    let started_at = terminated.and_then(|t| millis(t.started_at.as_ref()));
    let start_ms = running_since
        .or(started_at)
        .or_else(|| match phase.as_str() {
            "Running" | "Succeeded" | "Failed" => millis(status.start_time.as_ref()),
            _ => None,
        });
    let unschedulable = status
        .conditions
        .as_ref()
        .and_then(|conditions| {
            conditions.iter().find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        })
        .map(|c| {
            (
                millis(c.last_transition_time.as_ref()).unwrap_or(0),
                c.message.clone().unwrap_or_default(),
            )
        });
    PodView {
        name: pod.metadata.name.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|spec| spec.node_name.clone()),
        phase,
        start_ms,
        exit,
        unschedulable,
    }
}

/// The terminal phase the replicas add up to, if they do.
fn conclude(spec: &Job, replicas: &[Replica], restarts: u32) -> Option<Conclusion> {
    let failed = replicas
        .iter()
        .filter_map(|replica| replica.failed.as_ref().map(|failed| (replica, failed)))
        .min_by_key(|(_, (at, _))| *at);
    if let Some((replica, (at, reason))) = failed {
        let how = replica
            .latest()
            .and_then(|pod| pod.exit)
            .map(Exit::how)
            .unwrap_or_else(|| "failed".to_string());
        let (reason, message) = match reason.as_str() {
            "DeadlineExceeded" => (
                "DeadlineExceeded".to_string(),
                format!(
                    "active deadline of {}s exceeded",
                    spec.active_deadline_seconds.unwrap_or_default()
                ),
            ),
            _ if spec.restart_policy == RestartPolicy::OnFailure => (
                "BackoffLimitExceeded".to_string(),
                format!(
                    "replica {} {how} after {restarts} restart{}",
                    replica.name,
                    if restarts == 1 { "" } else { "s" }
                ),
            ),
            _ => (
                "ReplicaFailed".to_string(),
                format!("replica {} {how}", replica.name),
            ),
        };
        return Some(Conclusion {
            phase: Phase::Failed,
            reason,
            message,
            finished_ms: *at,
        });
    }
    if spec.restart_policy == RestartPolicy::OnFailure && restarts > spec.backoff_limit {
        let latest_failure = replicas
            .iter()
            .flat_map(|replica| replica.pods.iter().filter_map(|pod| pod.exit))
            .map(|exit| exit.at_ms)
            .max()
            .unwrap_or(0);
        return Some(Conclusion {
            phase: Phase::Failed,
            reason: "BackoffLimitExceeded".to_string(),
            message: format!(
                "{restarts} restarts across the job's replicas, more than its backoffLimit of {}",
                spec.backoff_limit
            ),
            finished_ms: latest_failure,
        });
    }
    let deciders: Vec<&Replica> = replicas
        .iter()
        .filter(|replica| !replica.hidden && spec.framework.decides_success(&replica.role))
        .collect();
    if !deciders.is_empty() && deciders.iter().all(|replica| replica.complete.is_some()) {
        return Some(Conclusion {
            phase: Phase::Succeeded,
            reason: "Completed".to_string(),
            message: "every replica that decides success exited 0".to_string(),
            finished_ms: deciders
                .iter()
                .filter_map(|r| r.complete)
                .max()
                .unwrap_or(0),
        });
    }
    None
}

/// The terminal phase the anchor records, if any.
fn recorded_phase(anchor: &core::ConfigMap) -> Option<Conclusion> {
    let annotations = anchor.metadata.annotations.as_ref()?;
    let phase = Phase::parse(annotations.get(PHASE_ANNOTATION)?)?;
    Some(Conclusion {
        phase,
        reason: annotations
            .get(REASON_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        message: annotations
            .get(MESSAGE_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        finished_ms: annotations
            .get(FINISHED_ANNOTATION)
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0),
    })
}

/// Why a job that has not started yet waits: the first replica that has not
/// started, with the cluster's own words (the quota's message, the
/// scheduler's) when it has them.
fn pending_reason(observed: &Observed, replicas: &[Replica]) -> (String, String) {
    let waiting: Vec<&Replica> = replicas
        .iter()
        .filter(|replica| replica.first_start_ms.is_none())
        .collect();
    for replica in &waiting {
        if let Some(warning) = latest_warning(observed, &replica.job_name) {
            let message = warning.message.clone().unwrap_or_default();
            let reason = if message.contains("exceeded quota") {
                "Quota"
            } else {
                "FailedCreate"
            };
            return (reason.to_string(), format!("{}: {message}", replica.name));
        }
        if let Some((_, message)) = replica.latest().and_then(|pod| pod.unschedulable.clone()) {
            return (
                "Unschedulable".to_string(),
                format!("{}: {message}", replica.name),
            );
        }
    }
    let names: Vec<&str> = waiting.iter().map(|r| r.name.as_str()).collect();
    (
        "Starting".to_string(),
        format!(
            "waiting for {} of {} replicas to start: {}",
            waiting.len(),
            replicas.len(),
            names.join(", ")
        ),
    )
}

/// The newest warning about a replica's Job, if its pod has not been made since.
fn latest_warning<'a>(observed: &'a Observed, job_name: &str) -> Option<&'a core::Event> {
    observed
        .warnings
        .iter()
        .filter(|event| event.involved_object.name.as_deref() == Some(job_name))
        .max_by_key(|event| event_time(event))
}

fn event_time(event: &core::Event) -> i64 {
    millis(event.last_timestamp.as_ref())
        .or_else(|| event.event_time.as_ref().map(|t| t.0.as_millisecond()))
        .or_else(|| millis(event.first_timestamp.as_ref()))
        .or_else(|| millis(event.metadata.creation_timestamp.as_ref()))
        .unwrap_or(0)
}

/// The job's history, rebuilt from the cluster's timestamps. Kubernetes
/// records them to the second, so events of one second are put in the
/// order they must have happened in.
fn history(observed: &Observed, status: &JobStatus, replicas: &[Replica]) -> Vec<Event> {
    // (time, rank within a second, replica, kind, phase, message)
    let mut items: Vec<(i64, u8, String, &'static str, Phase, String)> = Vec::new();
    let namespace = status.tenant.as_str();
    // The cluster's own second, not the status's `created_ms`, which the
    // submitter's clock refines within it: every other event here is
    // counted in the cluster's whole seconds, and a refined time would put
    // the submission after what followed it in the same second.
    let submitted_ms = millis(observed.anchor.metadata.creation_timestamp.as_ref()).unwrap_or(0);
    items.push((
        submitted_ms,
        0,
        String::new(),
        "Submitted",
        Phase::Pending,
        format!("submitted to namespace {namespace}"),
    ));
    let mut pending_messages: Vec<String> = Vec::new();
    for replica in replicas {
        for warning in observed.warnings.iter().filter(|event| {
            event.involved_object.name.as_deref() == Some(replica.job_name.as_str())
        }) {
            let message = format!(
                "{}: {}",
                replica.name,
                warning.message.clone().unwrap_or_default()
            );
            if !pending_messages.contains(&message) {
                pending_messages.push(message.clone());
                items.push((
                    event_time(warning),
                    1,
                    replica.name.clone(),
                    "Pending",
                    Phase::Pending,
                    message,
                ));
            }
        }
        for pod in &replica.pods {
            if let Some((at, text)) = &pod.unschedulable {
                let message = format!("{}: {text}", replica.name);
                if !pending_messages.contains(&message) {
                    pending_messages.push(message.clone());
                    items.push((
                        *at,
                        1,
                        replica.name.clone(),
                        "Pending",
                        Phase::Pending,
                        message,
                    ));
                }
            }
        }
    }

    let mut starts: Vec<(i64, &Replica, usize, &PodView)> = Vec::new();
    for replica in replicas {
        for (attempt, pod) in replica.pods.iter().enumerate() {
            if let Some(at) = pod.start_ms {
                starts.push((at, replica, attempt + 1, pod));
            }
            if let Some(exit) = pod.exit {
                items.push((
                    exit.at_ms,
                    4,
                    replica.name.clone(),
                    "ReplicaExited",
                    Phase::Running,
                    format!("{} {}", replica.name, exit.how()),
                ));
            }
        }
    }
    starts.sort_by_key(|(at, replica, attempt, _)| (*at, *attempt, replica.name.clone()));
    for (at, replica, attempt, pod) in starts {
        // A first start leaves the job Pending: the `Running` event below
        // marks the moment all replicas have started, whatever order the
        // watches saw the starts in.
        let phase = if attempt == 1 {
            Phase::Pending
        } else {
            Phase::Running
        };
        let node = pod.node.as_deref().unwrap_or("a node");
        items.push((
            at,
            2,
            replica.name.clone(),
            "ReplicaStarted",
            phase,
            format!(
                "{} started on {node} as pod {} (attempt {attempt})",
                replica.name, pod.name
            ),
        ));
    }
    if let Some(started) = status.started_ms {
        items.push((
            started,
            3,
            String::new(),
            "Running",
            Phase::Running,
            format!("all {} replicas started", replicas.len()),
        ));
    }
    items.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));

    if status.phase.is_terminal() {
        items.push((
            status.finished_ms.unwrap_or(0),
            5,
            String::new(),
            status.phase.as_str(),
            status.phase,
            status.message.clone().unwrap_or_default(),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, (time_ms, _, replica, kind, phase, message))| Event {
            seq: i as u64 + 1,
            time_ms,
            tenant: status.tenant.clone(),
            job: status.name.clone(),
            kind: kind.to_string(),
            phase,
            replica: (!replica.is_empty()).then_some(replica),
            message,
        })
        .collect()
}

/// When a job was created: the cluster's creation time, which counts whole
/// seconds, refined by the submitting client's milliseconds
/// ([`SUBMITTED_ANNOTATION`]) within that second. The cluster's clock
/// decides the second, so a client whose clock is off cannot move a job
/// out of it; the client's decides the order of the jobs of one second.
fn created_ms(anchor: &core::ConfigMap) -> i64 {
    let Some(second) = millis(anchor.metadata.creation_timestamp.as_ref()) else {
        return 0;
    };
    let submitted = anchor
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(SUBMITTED_ANNOTATION))
        .and_then(|value| value.parse::<i64>().ok());
    match submitted {
        Some(submitted) => submitted.clamp(second, second + 999),
        None => second,
    }
}

fn millis(time: Option<&Time>) -> Option<i64> {
    time.map(|time| time.0.as_millisecond())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::*;
    use crate::kubernetes::{RenderOptions, render_job};
    use crate::spec::Role;

    const T0: &str = "2026-11-29T20:00:00Z";

    fn spec(restart_policy: RestartPolicy) -> Job {
        let mut job = Job::new(
            "mnist",
            "vision",
            crate::spec::Framework::Pytorch,
            vec![
                Role::new("master", 1, &["python", "train.py"]),
                Role::new("worker", 2, &["python", "train.py"]),
            ],
        );
        job.restart_policy = restart_policy;
        job.backoff_limit = 1;
        job
    }

    fn anchor(job: &Job, annotations: &[(&str, &str)]) -> core::ConfigMap {
        let rendered = render_job(job, &RenderOptions::default()).unwrap();
        let Some(crate::kubernetes::Object::ConfigMap(anchor)) = rendered.first().cloned() else {
            panic!("the anchor comes first");
        };
        let mut anchor = *anchor;
        anchor.metadata.creation_timestamp = Some(time(T0));
        if !annotations.is_empty() {
            anchor.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        anchor
    }

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    fn at(second: u32) -> String {
        format!("2026-11-29T20:00:{second:02}Z")
    }

    fn replica_job(role: &str, index: u32, condition: Option<(&str, &str, u32)>) -> batch::Job {
        let conditions = condition.map(|(kind, reason, second)| {
            json!([{"type": kind, "status": "True", "reason": reason, "lastTransitionTime": at(second)}])
        });
        serde_json::from_value(json!({
            "metadata": {"name": format!("mnist-{role}-{index}")},
            "spec": {"template": {}},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    /// A pod of a replica: `started` and `exit` (code, second) as the kubelet reports them.
    fn pod(
        role: &str,
        index: u32,
        n: u32,
        started: Option<u32>,
        exit: Option<(i32, u32)>,
    ) -> core::Pod {
        let phase = match (started, exit) {
            (_, Some((0, _))) => "Succeeded",
            (_, Some(_)) => "Failed",
            (Some(_), None) => "Running",
            (None, None) => "Pending",
        };
        let state = match (started, exit) {
            (Some(start), Some((code, end))) => {
                json!({"terminated": {"exitCode": code, "startedAt": at(start), "finishedAt": at(end)}})
            }
            (Some(start), None) => json!({"running": {"startedAt": at(start)}}),
            _ => json!({"waiting": {"reason": "ContainerCreating"}}),
        };
        serde_json::from_value(json!({
            "metadata": {
                "name": format!("mnist-{role}-{index}-{n}"),
                "creationTimestamp": at(started.unwrap_or(0) + n),
                "labels": {ROLE_LABEL: role, REPLICA_INDEX_LABEL: index.to_string()},
            },
            "spec": {"containers": [{"name": role}], "nodeName": "cpu-0"},
            "status": {"phase": phase, "containerStatuses": [{"name": role, "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": state}]},
        }))
        .unwrap()
    }

    fn observed(job: &Job, jobs: Vec<batch::Job>, pods: Vec<core::Pod>) -> Observed {
        Observed {
            anchor: anchor(job, &[]),
            jobs,
            pods,
            warnings: Vec::new(),
        }
    }

    fn all_jobs(
        condition: impl Fn(&str, u32) -> Option<(&'static str, &'static str, u32)>,
    ) -> Vec<batch::Job> {
        [("master", 0), ("worker", 0), ("worker", 1)]
            .into_iter()
            .map(|(role, index)| replica_job(role, index, condition(role, index)))
            .collect()
    }

    #[test]
    fn created_is_the_clusters_second_refined_by_the_submitters_milliseconds() {
        let job = spec(RestartPolicy::Never);
        let second = time(T0).0.as_millisecond();
        let cases = [
            // The client's milliseconds within the cluster's second.
            (Some(second + 250), second + 250),
            // A client clock behind or ahead stays within the second.
            (Some(second - 400), second),
            (Some(second + 1_700), second + 999),
            // Anchors that older clients made.
            (None, second),
        ];
        for (submitted, created) in cases {
            let written = submitted.map(|ms| ms.to_string());
            let annotations: Vec<(&str, &str)> = written
                .iter()
                .map(|ms| (SUBMITTED_ANNOTATION, ms.as_str()))
                .collect();
            let mut seen = observed(&job, all_jobs(|_, _| None), Vec::new());
            seen.anchor = anchor(&job, &annotations);
            let derived = derive(&seen).unwrap();
            assert_eq!(derived.status.created_ms, created, "{submitted:?}");
        }
        let mut seen = observed(&job, all_jobs(|_, _| None), Vec::new());
        seen.anchor = anchor(&job, &[(SUBMITTED_ANNOTATION, "soon")]);
        assert_eq!(derive(&seen).unwrap().status.created_ms, second);
    }

    #[test]
    fn the_submission_comes_first_among_the_events_of_its_second() {
        let job = spec(RestartPolicy::Never);
        let pods = vec![
            pod("master", 0, 0, Some(0), None),
            pod("worker", 0, 0, Some(0), None),
            pod("worker", 1, 0, Some(0), None),
        ];
        let mut seen = observed(&job, all_jobs(|_, _| None), pods);
        let second = time(T0).0.as_millisecond();
        let submitted = (second + 700).to_string();
        seen.anchor = anchor(&job, &[(SUBMITTED_ANNOTATION, submitted.as_str())]);
        let derived = derive(&seen).unwrap();
        assert_eq!(derived.status.created_ms, second + 700);
        let kinds: Vec<&str> = derived.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Submitted",
                "ReplicaStarted",
                "ReplicaStarted",
                "ReplicaStarted",
                "Running"
            ]
        );
        // In the cluster's clock, as every other event is.
        assert_eq!(derived.events[0].time_ms, second);
    }

    #[test]
    fn a_job_is_pending_until_every_replica_has_started() {
        let job = spec(RestartPolicy::Never);
        let pods = vec![
            pod("master", 0, 0, Some(1), None),
            pod("worker", 0, 0, Some(1), None),
        ];
        let derived = derive(&observed(&job, all_jobs(|_, _| None), pods)).unwrap();
        assert_eq!(derived.status.phase, Phase::Pending);
        assert_eq!(derived.status.reason.as_deref(), Some("Starting"));
        assert_eq!(
            derived.status.message.as_deref(),
            Some("waiting for 1 of 3 replicas to start: worker-1")
        );
        assert_eq!(derived.status.replicas[0].phase, ReplicaPhase::Running);
        assert_eq!(derived.conclusion, None);
    }

    #[test]
    fn the_quotas_refusal_holds_the_job_with_its_own_words() {
        let job = spec(RestartPolicy::Never);
        let mut seen = observed(&job, all_jobs(|_, _| None), Vec::new());
        let refusal = "pods \"mnist-worker-1-x\" is forbidden: exceeded quota: moon-quota, requested: requests.nvidia.com/gpu=4, used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=2";
        seen.warnings.push(
            serde_json::from_value(json!({
                "metadata": {"name": "w1"},
                "involvedObject": {"kind": "Job", "name": "mnist-worker-1"},
                "reason": "FailedCreate",
                "message": refusal,
                "lastTimestamp": at(2),
            }))
            .unwrap(),
        );
        let derived = derive(&seen).unwrap();
        assert_eq!(derived.status.phase, Phase::Pending);
        assert_eq!(derived.status.reason.as_deref(), Some("Quota"));
        assert_eq!(derived.status.message, Some(format!("worker-1: {refusal}")));
        let pending: Vec<&Event> = derived
            .events
            .iter()
            .filter(|e| e.kind == "Pending")
            .collect();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].replica.as_deref(), Some("worker-1"));
    }

    #[test]
    fn the_schedulers_message_explains_an_unschedulable_replica() {
        let job = spec(RestartPolicy::Never);
        let mut waiting = pod("master", 0, 0, None, None);
        waiting.status.as_mut().unwrap().conditions = Some(vec![core::PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some("0/7 nodes are available: 7 Insufficient nvidia.com/gpu.".into()),
            last_transition_time: Some(time(&at(1))),
            ..core::PodCondition::default()
        }]);
        let derived = derive(&observed(&job, all_jobs(|_, _| None), vec![waiting])).unwrap();
        assert_eq!(derived.status.reason.as_deref(), Some("Unschedulable"));
        assert_eq!(
            derived.status.message.as_deref(),
            Some("master-0: 0/7 nodes are available: 7 Insufficient nvidia.com/gpu.")
        );
    }

    #[test]
    fn success_is_concluded_once_the_deciding_replicas_complete() {
        let job = spec(RestartPolicy::Never);
        let pods = vec![
            pod("master", 0, 0, Some(1), Some((0, 3))),
            pod("worker", 0, 0, Some(1), Some((0, 4))),
            pod("worker", 1, 0, Some(2), Some((0, 5))),
        ];
        let jobs = all_jobs(|_, index| Some(("Complete", "", 4 + index)));
        let derived = derive(&observed(&job, jobs, pods)).unwrap();
        assert_eq!(derived.status.phase, Phase::Succeeded);
        let conclusion = derived.conclusion.unwrap();
        assert_eq!(conclusion.reason, "Completed");
        assert_eq!(conclusion.finished_ms, time(&at(5)).0.as_millisecond());
        assert_eq!(
            derived.status.started_ms,
            Some(time(&at(2)).0.as_millisecond())
        );
        let kinds: Vec<(&str, Phase)> = derived
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.phase))
            .collect();
        assert_eq!(
            kinds,
            [
                ("Submitted", Phase::Pending),
                ("ReplicaStarted", Phase::Pending),
                ("ReplicaStarted", Phase::Pending),
                ("ReplicaStarted", Phase::Pending),
                ("Running", Phase::Running),
                ("ReplicaExited", Phase::Running),
                ("ReplicaExited", Phase::Running),
                ("ReplicaExited", Phase::Running),
                ("Succeeded", Phase::Succeeded),
            ]
        );
        let seqs: Vec<u64> = derived.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_replica_fails_the_job_and_stops_the_rest() {
        let job = spec(RestartPolicy::Never);
        let pods = vec![
            pod("master", 0, 0, Some(1), None),
            pod("worker", 0, 0, Some(1), None),
            pod("worker", 1, 0, Some(1), Some((1, 3))),
        ];
        let jobs = all_jobs(|role, index| {
            (role == "worker" && index == 1).then_some(("Failed", "BackoffLimitExceeded", 3))
        });
        let derived = derive(&observed(&job, jobs, pods)).unwrap();
        assert_eq!(derived.status.phase, Phase::Failed);
        let conclusion = derived.conclusion.as_ref().unwrap();
        assert_eq!(conclusion.reason, "ReplicaFailed");
        assert_eq!(conclusion.message, "replica worker-1 exited with code 1");
        assert_eq!(derived.to_stop, ["mnist-master-0", "mnist-worker-0"]);
        let phases: Vec<ReplicaPhase> = derived.status.replicas.iter().map(|r| r.phase).collect();
        assert_eq!(
            phases,
            [
                ReplicaPhase::Stopped,
                ReplicaPhase::Stopped,
                ReplicaPhase::Failed
            ]
        );
    }

    #[test]
    fn restarts_of_all_replicas_count_against_one_backoff_limit() {
        let job = spec(RestartPolicy::OnFailure);
        // Each worker failed once and was replaced: 2 restarts, over the limit of 1.
        let pods = vec![
            pod("master", 0, 0, Some(1), None),
            pod("worker", 0, 0, Some(1), Some((1, 2))),
            pod("worker", 0, 1, Some(3), None),
            pod("worker", 1, 0, Some(1), Some((1, 4))),
            pod("worker", 1, 1, Some(5), None),
        ];
        let derived = derive(&observed(&job, all_jobs(|_, _| None), pods)).unwrap();
        assert_eq!(derived.status.restarts, 2);
        assert_eq!(derived.status.phase, Phase::Failed);
        let conclusion = derived.conclusion.unwrap();
        assert_eq!(conclusion.reason, "BackoffLimitExceeded");
        assert_eq!(
            conclusion.message,
            "2 restarts across the job's replicas, more than its backoffLimit of 1"
        );
        assert_eq!(derived.status.replicas[1].attempts, 2);
    }

    #[test]
    fn a_recorded_phase_is_final_whatever_the_replicas_say() {
        let job = spec(RestartPolicy::Never);
        let recorded = Conclusion {
            phase: Phase::Cancelled,
            reason: "Cancelled".into(),
            message: "cancelled by a user".into(),
            finished_ms: 42,
        };
        let annotations = recorded.annotations();
        let pairs: Vec<(&str, &str)> = annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut seen = observed(
            &job,
            all_jobs(|_, _| None),
            vec![pod("master", 0, 0, Some(1), None)],
        );
        seen.anchor = anchor(&job, &pairs);
        let derived = derive(&seen).unwrap();
        assert_eq!(derived.status.phase, Phase::Cancelled);
        assert_eq!(derived.status.finished_ms, Some(42));
        assert_eq!(derived.conclusion, None, "already recorded");
        assert_eq!(
            derived.to_stop.len(),
            3,
            "every replica still active is stopped"
        );
        assert_eq!(derived.events.last().unwrap().kind, "Cancelled");
    }

    #[test]
    fn an_anchor_without_a_spec_is_malformed() {
        let anchor = core::ConfigMap {
            metadata: ObjectMeta {
                name: Some("mnist".into()),
                ..ObjectMeta::default()
            },
            ..core::ConfigMap::default()
        };
        let error = anchor_spec(&anchor).unwrap_err();
        assert_eq!(
            error,
            Error::Malformed("ConfigMap mnist holds no job.json".into())
        );
    }
}
