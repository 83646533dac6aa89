//! Following a job on the cluster: its events, its end and its replicas'
//! pods through the namespace's [informer](super::informer), and its
//! replicas' logs.
//!
//! Errors that retrying cannot cure (the job gone, permission refused) end
//! a stream with the error; everything else (an API server restarting) the
//! informer's watches ride out.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, LogParams};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::api::{Target, api_error, is_not_found};
use super::informer::{Informers, Subscription};
use super::record::Recorder;
use crate::backend::{Event, JobStatus, LogLine, LogOptions, Stream, stream_channel};
use crate::error::{ClusterError, Error, Result};
use moon_spec::kubernetes::status::{self, Derived, Observed};
use moon_spec::kubernetes::{REPLICA_INDEX_LABEL, ROLE_LABEL};

/// The job's events after `after`, then new ones as the watches see them,
/// until the job's terminal event.
pub(super) fn events(
    client: kube::Client,
    informers: Arc<Informers>,
    tenant: &str,
    name: &str,
    after: Option<u64>,
) -> Stream<Event> {
    let (sender, stream) = stream_channel(64);
    let (tenant, name) = (tenant.to_string(), name.to_string());
    tokio::spawn(async move {
        if let Err(error) = follow_events(&client, &informers, &tenant, &name, after, &sender).await
        {
            let _ = sender.send(Err(error)).await;
        }
    });
    stream
}

/// One job as its namespace's informer shows it: each call to
/// [`JobWatch::next`] waits for the job to change and returns it derived
/// afresh, its conclusion recorded when it has one and this reader may.
pub(super) struct JobWatch {
    client: kube::Client,
    subscription: Subscription,
    recorder: Recorder,
}

impl JobWatch {
    pub(super) fn new(
        client: &kube::Client,
        informers: &Informers,
        tenant: &str,
        name: &str,
    ) -> JobWatch {
        JobWatch {
            client: client.clone(),
            subscription: informers.subscribe(client, tenant, name),
            recorder: Recorder::reading(),
        }
    }

    /// The job after its next change (at once the first time).
    pub(super) async fn next(&mut self) -> Result<Option<Derived>> {
        let observed = self.subscription.next().await?;
        let derived = status::derive(&observed)?;
        self.recorder
            .record(&self.client, &observed, &derived)
            .await?;
        Ok(Some(derived))
    }
}

async fn follow_events(
    client: &kube::Client,
    informers: &Informers,
    tenant: &str,
    name: &str,
    after: Option<u64>,
    sender: &mpsc::Sender<Result<Event>>,
) -> Result<()> {
    let mut watch = JobWatch::new(client, informers, tenant, name);
    // Events are told apart by what they say; the first snapshot's are
    // numbered as `events()` numbers them, later ones continue from there.
    let mut seen: HashSet<(String, Option<String>, String)> = HashSet::new();
    let mut last_seq = 0;
    let mut first = true;
    while let Some(derived) = watch.next().await? {
        let ended = derived.status.phase.is_terminal();
        for mut event in derived.events {
            let identity = (
                event.kind.clone(),
                event.replica.clone(),
                event.message.clone(),
            );
            if !seen.insert(identity) {
                continue;
            }
            if first {
                last_seq = event.seq;
                if event.seq <= after.unwrap_or(0) {
                    continue;
                }
            } else {
                last_seq += 1;
                event.seq = last_seq;
            }
            if sender.send(Ok(event)).await.is_err() {
                return Ok(());
            }
        }
        first = false;
        if ended {
            return Ok(());
        }
    }
    Ok(())
}

/// Waits for the job to end and returns its final status, as the watches
/// saw it: no read after the end that an unreachable apiserver could fail.
pub(super) async fn until_ended(
    client: &kube::Client,
    informers: &Informers,
    tenant: &str,
    name: &str,
) -> Result<JobStatus> {
    let mut watch = JobWatch::new(client, informers, tenant, name);
    while let Some(derived) = watch.next().await? {
        if derived.status.phase.is_terminal() {
            return Ok(derived.status);
        }
    }
    Err(Error::Cluster(ClusterError::moon(
        "WatchEnded",
        format!("the watches of job {tenant}/{name} ended"),
        true,
    )))
}

/// Replica output: each replica's latest pod, lines prefixed by the replica.
/// Without `follow`, what the pods have logged so far, in time order; with
/// it, each replica's lines as they come, from the pod that is running or
/// the first one to start, until the job ends. `observed` and `derived`
/// are the job as the caller just read it.
pub(super) fn logs(
    client: kube::Client,
    informers: Arc<Informers>,
    observed: Observed,
    derived: Derived,
    options: LogOptions,
) -> Stream<LogLine> {
    let (sender, stream) = stream_channel(256);
    tokio::spawn(async move {
        let read = read_logs(&client, informers, &observed, &derived, &options, &sender);
        if let Err(error) = read.await {
            let _ = sender.send(Err(error)).await;
        }
    });
    stream
}

async fn read_logs(
    client: &kube::Client,
    informers: Arc<Informers>,
    observed: &Observed,
    derived: &Derived,
    options: &LogOptions,
    sender: &mpsc::Sender<Result<LogLine>>,
) -> Result<()> {
    let (tenant, name) = (derived.spec.tenant.as_str(), derived.spec.name.as_str());
    let replicas: Vec<(String, String, u32)> = derived
        .status
        .replicas
        .iter()
        .filter(|r| {
            options
                .replica
                .as_ref()
                .is_none_or(|wanted| *wanted == r.name())
        })
        .map(|r| (r.name(), r.role.clone(), r.index))
        .collect();
    let pods = Api::<core::Pod>::namespaced(client.clone(), tenant);

    if !options.follow {
        let mut lines = Vec::new();
        for (replica, role, index) in &replicas {
            let Some(pod) = latest_started_pod(&observed.pods, role, *index) else {
                continue;
            };
            lines.extend(read_pod(&pods, &pod, replica, role, options).await?);
        }
        lines.sort_by_key(|line| line.time_ms);
        for line in lines {
            if sender.send(Ok(line)).await.is_err() {
                break;
            }
        }
        return Ok(());
    }

    let mut readers = JoinSet::new();
    for (replica, role, index) in replicas {
        let subscription = informers.subscribe(client, tenant, name);
        let (pods, sender, options) = (pods.clone(), sender.clone(), options.clone());
        readers.spawn(async move {
            let pod = first_started_pod(subscription, &role, index).await?;
            follow_pod(&pods, &pod, &replica, &role, &options, &sender).await
        });
    }
    // Replicas that never start end with the job: wait for its end, then
    // give the readers a moment to drain what the last pods wrote.
    let mut job_events = events(client.clone(), informers, tenant, name, None);
    let ended = async {
        while let Some(event) = job_events.next().await {
            if event?.phase.is_terminal() {
                break;
            }
        }
        Ok::<(), Error>(())
    };
    tokio::pin!(ended);
    loop {
        tokio::select! {
            finished = readers.join_next() => match finished {
                None => return Ok(()),
                Some(Ok(result)) => result?,
                Some(Err(join)) => return Err(Error::Cluster(ClusterError::moon("LogReader", format!("log reader: {join}"), false))),
            },
            result = &mut ended => {
                result?;
                let deadline = tokio::time::sleep(Duration::from_secs(5));
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        finished = readers.join_next() => match finished {
                            None => return Ok(()),
                            Some(Ok(result)) => result?,
                            Some(Err(_)) => {}
                        },
                        _ = &mut deadline => {
                            readers.abort_all();
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

fn replica_pods<'a>(
    pods: &'a [core::Pod],
    role: &'a str,
    index: u32,
) -> impl Iterator<Item = &'a core::Pod> + 'a {
    let index = index.to_string();
    pods.iter().filter(move |pod| {
        let labels = pod.metadata.labels.as_ref();
        labels.and_then(|l| l.get(ROLE_LABEL)).map(String::as_str) == Some(role)
            && labels.and_then(|l| l.get(REPLICA_INDEX_LABEL)) == Some(&index)
    })
}

fn started(pod: &core::Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Running" | "Succeeded" | "Failed"))
}

fn latest_started_pod(pods: &[core::Pod], role: &str, index: u32) -> Option<String> {
    replica_pods(pods, role, index)
        .filter(|pod| started(pod))
        .max_by_key(|pod| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .and_then(|pod| pod.metadata.name.clone())
}

/// The replica's pod that is running (or ran), as soon as one has started.
async fn first_started_pod(
    mut subscription: Subscription,
    role: &str,
    index: u32,
) -> Result<String> {
    loop {
        let observed = subscription.next().await?;
        if let Some(pod) = latest_started_pod(&observed.pods, role, index) {
            return Ok(pod);
        }
    }
}

async fn read_pod(
    pods: &Api<core::Pod>,
    pod: &str,
    replica: &str,
    role: &str,
    options: &LogOptions,
) -> Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    let mut reader = match pods.log_stream(pod, &log_params(role, options)).await {
        Ok(reader) => reader.lines(),
        Err(error) if pod_gone(&error) => return Ok(lines),
        Err(error) => return Err(log_error(error, pod)),
    };
    while let Some(line) = reader.next().await {
        let line = line.map_err(|error| {
            Error::Cluster(ClusterError::unreachable(format!(
                "reading the log of pod {pod}: {error}"
            )))
        })?;
        lines.push(log_line(replica, &line));
    }
    Ok(lines)
}

async fn follow_pod(
    pods: &Api<core::Pod>,
    pod: &str,
    replica: &str,
    role: &str,
    options: &LogOptions,
    sender: &mpsc::Sender<Result<LogLine>>,
) -> Result<()> {
    let mut reader = match pods.log_stream(pod, &log_params(role, options)).await {
        Ok(reader) => reader.lines(),
        Err(error) if pod_gone(&error) => return Ok(()),
        Err(error) => return Err(log_error(error, pod)),
    };
    while let Some(line) = reader.next().await {
        let line = line.map_err(|error| {
            Error::Cluster(ClusterError::unreachable(format!(
                "reading the log of pod {pod}: {error}"
            )))
        })?;
        if sender.send(Ok(log_line(replica, &line))).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// `LogParams` for one replica's container.
fn log_params(role: &str, options: &LogOptions) -> LogParams {
    LogParams {
        container: Some(role.to_string()),
        follow: options.follow,
        tail_lines: options.tail.map(|tail| tail as i64),
        timestamps: true,
        ..LogParams::default()
    }
}

/// Whether a log request failed because the pod is gone.
fn pod_gone(error: &kube::Error) -> bool {
    is_not_found(error)
}

fn log_error(error: kube::Error, pod: &str) -> Error {
    let target = Target {
        kind: "pod",
        name: pod,
    };
    api_error(error, target)
}

/// A line as the API server sends it with `timestamps=true`:
/// `2026-11-29T20:00:00.123456789Z text`. Kubernetes merges a container's
/// stdout and stderr into one log, so the stream is `combined`.
fn log_line(replica: &str, raw: &str) -> LogLine {
    let (time_ms, line) = match raw.split_once(' ') {
        Some((stamp, rest)) => match stamp.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(time) => (time.as_millisecond(), rest),
            Err(_) => (0, raw),
        },
        None => match raw.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(time) => (time.as_millisecond(), ""),
            Err(_) => (0, raw),
        },
    };
    LogLine {
        replica: replica.to_string(),
        stream: "combined".to_string(),
        time_ms,
        line: line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_keep_the_servers_timestamp() {
        let line = log_line(
            "worker-1",
            "2026-11-29T20:00:00.250000000Z epoch 1: loss 0.5",
        );
        assert_eq!(line.replica, "worker-1");
        assert_eq!(line.time_ms, 1_795_982_400_250);
        assert_eq!(line.line, "epoch 1: loss 0.5");
        let bare = log_line("worker-0", "no stamp here");
        assert_eq!((bare.time_ms, bare.line.as_str()), (0, "no stamp here"));
    }
}
