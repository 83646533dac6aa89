//! `moon job submit|ls|get|logs|events|cancel|wait|delete`.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use futures::StreamExt;
use moon_core::spec::job_from_yaml;
use moon_core::{Client, Error, Event, JobStatus, LogOptions, Phase};

use super::{Context, parse_ref, read_spec};
use crate::cli::{DeleteArgs, EventsArgs, JobCommand, LogsArgs, SubmitArgs, WaitArgs};
use crate::exit::CliError;
use crate::output::{
    Out, Table, exit_cell, format_age, format_duration, format_utc, key_values, now_ms, or_dash,
    render_row,
};

/// Runs one `moon job` command.
pub async fn run(context: &Context, command: JobCommand) -> Result<(), CliError> {
    let out = context.out;
    match command {
        JobCommand::Submit(args) => submit(context, args).await,
        JobCommand::Ls { tenant } => {
            let client = context.client()?;
            if let Some(tenant) = &tenant {
                // An unknown tenant is an error rather than an empty list,
                // which would hide a misspelt name.
                client.get_tenant(tenant).await?;
            }
            let jobs = client.list_jobs(tenant.as_deref()).await?;
            if out.is_table() {
                out.text(&job_table(&jobs, now_ms()))?;
            } else {
                out.document(&jobs)?;
            }
            Ok(())
        }
        JobCommand::Get(job) => {
            let (tenant, name) = parse_ref("job", &job)?;
            let status = context.client()?.get_job(&tenant, &name).await?;
            if out.is_table() {
                out.text(&job_details(&status, now_ms()))?;
            } else {
                out.document(&status)?;
            }
            Ok(())
        }
        JobCommand::Logs(args) => logs(context, "job", args).await,
        JobCommand::Events(args) => events(context, "job", args).await,
        JobCommand::Cancel(job) => {
            let (tenant, name) = parse_ref("job", &job)?;
            let status = context.client()?.cancel(&tenant, &name).await?;
            if out.is_table() {
                let done = if status.phase == Phase::Cancelled {
                    "cancelled"
                } else {
                    "cancel requested"
                };
                out.text(&format!("job {} {done}", status.key()))?;
            } else {
                out.document(&status)?;
            }
            Ok(())
        }
        JobCommand::Delete(DeleteArgs { job, force }) => {
            let (tenant, name) = parse_ref("job", &job)?;
            context.client()?.delete_job(&tenant, &name, force).await?;
            super::report_deleted(out, "job", &format!("{tenant}/{name}"))
        }
        JobCommand::Wait(WaitArgs { job, timeout }) => {
            let (tenant, name) = parse_ref("job", &job)?;
            let client = context.client()?;
            let key = format!("{tenant}/{name}");
            let progress = std::io::stderr().is_terminal();
            let status = within(
                timeout,
                &key,
                wait_for_end(&client, &tenant, &name, progress),
            )
            .await?;
            report_end(out, status, false)
        }
    }
}

async fn submit(context: &Context, args: SubmitArgs) -> Result<(), CliError> {
    let out = context.out;
    // Parsed and validated before the backend is opened, so that a bad spec creates nothing.
    let job = job_from_yaml(&read_spec(&args.file)?)?;
    let client = context.client()?;
    let status = client.submit(&job).await?;
    let key = status.key();
    if !args.wait && !args.follow {
        if out.is_table() {
            out.text(&format!("job {key} submitted"))?;
        } else {
            out.document(&status)?;
        }
        return Ok(());
    }
    if out.is_table() {
        out.text(&format!("job {key} submitted"))?;
    }
    let (tenant, name) = (status.tenant, status.name);
    let progress = !args.follow && std::io::stderr().is_terminal();
    let work = async {
        if args.follow {
            let options = LogOptions {
                follow: true,
                ..LogOptions::default()
            };
            print_logs(out, &client, &tenant, &name, options, true).await?;
        }
        // The log stream ends with the job; this also covers a backend
        // whose stream stops a moment before the final status is recorded.
        Ok::<_, CliError>(wait_for_end(&client, &tenant, &name, progress).await?)
    };
    let status = within(args.timeout, &key, work).await?;
    report_end(out, status, args.follow)
}

/// Runs `work`, giving up after `timeout` with moon's own `Timeout` error.
async fn within<T, E>(
    timeout: Option<Duration>,
    key: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, CliError>
where
    CliError: From<E>,
{
    let Some(limit) = timeout else {
        return Ok(work.await?);
    };
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout {
            what: format!("job {key}"),
            seconds: limit.as_secs_f64(),
        }
        .into()),
    }
}

/// Waits for the job to end; with `progress`, prints its phase changes to
/// stderr meanwhile. Progress is best effort: the wait decides the outcome.
async fn wait_for_end(
    client: &Client,
    tenant: &str,
    name: &str,
    progress: bool,
) -> moon_core::Result<JobStatus> {
    let waiting = client.wait(tenant, name, None);
    if !progress {
        return waiting.await;
    }
    let printing = print_progress(client, tenant, name);
    tokio::pin!(waiting, printing);
    let mut still_printing = true;
    loop {
        tokio::select! {
            status = &mut waiting => return status,
            () = &mut printing, if still_printing => still_printing = false,
        }
    }
}

async fn print_progress(client: &Client, tenant: &str, name: &str) {
    let Ok(mut events) = client.watch(tenant, name, None).await else {
        return;
    };
    let mut last: Option<(Phase, String)> = None;
    while let Some(Ok(event)) = events.next().await {
        // Phase changes, and while pending each new reason for waiting.
        let shown = match &last {
            Some((phase, message)) => {
                *phase != event.phase
                    || (event.phase == Phase::Pending && *message != event.message)
            }
            None => true,
        };
        if shown {
            let _ = writeln!(std::io::stderr().lock(), "{}", progress_line(&event));
            last = Some((event.phase, event.message.clone()));
        }
    }
}

fn progress_line(event: &Event) -> String {
    if event.message.is_empty() {
        format!("{}/{}: {}", event.tenant, event.job, event.phase)
    } else {
        format!(
            "{}/{}: {} ({})",
            event.tenant, event.job, event.phase, event.message
        )
    }
}

/// Prints how a waited-for job ended and turns Failed or Cancelled into
/// `JobFailed`. In table mode a failure is reported on stderr only, by the
/// error; `streaming` keeps JSON output one object per line after logs.
fn report_end(out: Out, status: JobStatus, streaming: bool) -> Result<(), CliError> {
    if out.is_table() {
        if !matches!(status.phase, Phase::Failed | Phase::Cancelled) {
            out.text(&end_line(&status))?;
        }
    } else if streaming {
        out.item(&status)?;
    } else {
        out.document(&status)?;
    }
    status.into_result()?;
    Ok(())
}

/// `job vision/xgb succeeded in 42s`.
fn end_line(status: &JobStatus) -> String {
    let mut line = format!(
        "job {} {}",
        status.key(),
        status.phase.as_str().to_lowercase()
    );
    if let (Some(started), Some(finished)) = (status.started_ms, status.finished_ms) {
        line.push_str(&format!(" in {}", format_duration(finished - started)));
    }
    line
}

/// `moon job logs` and `moon svc logs`: every replica's output, prefixed
/// with its name unless one replica is asked for.
pub(super) async fn logs(context: &Context, kind: &str, args: LogsArgs) -> Result<(), CliError> {
    let (tenant, name) = parse_ref(kind, &args.target)?;
    let client = context.client()?;
    let prefixed = args.replica.is_none();
    let options = LogOptions {
        follow: args.follow,
        tail: args.tail,
        replica: args.replica,
    };
    print_logs(context.out, &client, &tenant, &name, options, prefixed).await
}

async fn print_logs(
    out: Out,
    client: &Client,
    tenant: &str,
    name: &str,
    options: LogOptions,
    prefixed: bool,
) -> Result<(), CliError> {
    let mut lines = client.logs(tenant, name, options).await?;
    while let Some(line) = lines.next().await {
        out.log_line(&line?, prefixed)?;
    }
    Ok(())
}

const EVENT_HEADERS: [&str; 5] = ["TIME", "KIND", "PHASE", "REPLICA", "MESSAGE"];
/// Column widths for `events --watch`, whose rows are printed as they come:
/// a timestamp, then room for the longest kind, phase and usual replica names.
const EVENT_WIDTHS: [usize; 4] = [20, 15, 9, 10];

fn event_row(event: &Event) -> Vec<String> {
    vec![
        format_utc(event.time_ms),
        event.kind.clone(),
        event.phase.to_string(),
        or_dash(event.replica.as_deref()),
        event.message.clone(),
    ]
}

/// `moon job events` and `moon svc events`: a table, or with `--watch`
/// rows as they come.
pub(super) async fn events(
    context: &Context,
    kind: &str,
    args: EventsArgs,
) -> Result<(), CliError> {
    let out = context.out;
    let (tenant, name) = parse_ref(kind, &args.target)?;
    let client = context.client()?;
    if !args.watch {
        let events = client.events(&tenant, &name, None).await?;
        if out.is_table() {
            out.text(&event_table(&events))?;
        } else {
            for event in &events {
                out.item(event)?;
            }
        }
        return Ok(());
    }
    let mut events = client.watch(&tenant, &name, None).await?;
    if out.is_table() {
        out.text(&render_row(&EVENT_HEADERS.map(String::from), &EVENT_WIDTHS))?;
    }
    while let Some(event) = events.next().await {
        let event = event?;
        if out.is_table() {
            out.text(&render_row(&event_row(&event), &EVENT_WIDTHS))?;
        } else {
            out.item(&event)?;
        }
    }
    Ok(())
}

fn event_table(events: &[Event]) -> String {
    let mut table = Table::new(&EVENT_HEADERS);
    for event in events {
        table.row(event_row(event));
    }
    table.render()
}

/// `moon job ls`.
fn job_table(jobs: &[JobStatus], now_ms: i64) -> String {
    let mut table = Table::new(&[
        "TENANT",
        "NAME",
        "FRAMEWORK",
        "PHASE",
        "RESTARTS",
        "AGE",
        "REASON",
        "MESSAGE",
    ]);
    for job in jobs {
        table.row(vec![
            job.tenant.clone(),
            job.name.clone(),
            job.framework.to_string(),
            job.phase.to_string(),
            job.restarts.to_string(),
            format_age(job.created_ms, now_ms),
            or_dash(job.reason.as_deref()),
            or_dash(job.message.as_deref()),
        ]);
    }
    table.render()
}

/// `moon job get`: the job, then a table of its replicas.
fn job_details(job: &JobStatus, now_ms: i64) -> String {
    let moment = |ms: Option<i64>| match ms {
        Some(ms) => format!("{} ({} ago)", format_utc(ms), format_age(ms, now_ms)),
        None => "-".into(),
    };
    let duration = match (job.started_ms, job.finished_ms) {
        (Some(started), Some(finished)) => format_duration(finished - started),
        (Some(started), None) => format!("{} so far", format_duration(now_ms - started)),
        _ => "-".into(),
    };
    let mut text = key_values(&[
        ("Job", job.key()),
        ("Framework", job.framework.to_string()),
        ("Phase", job.phase.to_string()),
        ("Reason", or_dash(job.reason.as_deref())),
        ("Message", or_dash(job.message.as_deref())),
        ("Restarts", job.restarts.to_string()),
        ("Created", moment(Some(job.created_ms))),
        ("Started", moment(job.started_ms)),
        ("Finished", moment(job.finished_ms)),
        ("Duration", duration),
    ]);
    text.push('\n');
    let mut table = Table::new(&["ROLE", "INDEX", "PHASE", "ATTEMPTS", "EXIT"]);
    for replica in &job.replicas {
        table.row(vec![
            replica.role.clone(),
            replica.index.to_string(),
            replica.phase.as_str().to_string(),
            replica.attempts.to_string(),
            exit_cell(replica.exit_code, replica.signal),
        ]);
    }
    text.push_str(&table.render());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use moon_core::spec::Framework;
    use moon_core::{ReplicaPhase, ReplicaStatus};

    const T0: i64 = 1_740_830_400_000; // 2025-03-01T12:00:00Z

    fn replica(
        role: &str,
        index: u32,
        phase: ReplicaPhase,
        exit_code: Option<i32>,
        signal: Option<i32>,
    ) -> ReplicaStatus {
        ReplicaStatus {
            role: role.into(),
            index,
            phase,
            attempts: 1,
            exit_code,
            signal,
        }
    }

    fn status(name: &str, phase: Phase) -> JobStatus {
        JobStatus {
            tenant: "vision".into(),
            name: name.into(),
            framework: Framework::Pytorch,
            phase,
            reason: None,
            message: None,
            created_ms: T0,
            started_ms: None,
            finished_ms: None,
            restarts: 0,
            replicas: Vec::new(),
        }
    }

    #[test]
    fn ls_is_one_aligned_row_per_job() {
        let mut pending = status("bert-large", Phase::Pending);
        pending.reason = Some("Quota".into());
        pending.message = Some("tenant vision: gpus 4 of 4 in use, job asks 2".into());
        let mut running = status("resnet", Phase::Running);
        running.restarts = 2;
        assert_eq!(
            job_table(&[running, pending], T0 + 192_000),
            "\
TENANT  NAME        FRAMEWORK  PHASE    RESTARTS  AGE    REASON  MESSAGE
vision  resnet      pytorch    Running  2         3m12s  -       -
vision  bert-large  pytorch    Pending  0         3m12s  Quota   tenant vision: gpus 4 of 4 in use, job asks 2
"
        );
    }

    #[test]
    fn get_shows_the_job_then_its_replicas() {
        let mut job = status("resnet", Phase::Failed);
        job.reason = Some("BackoffLimitExceeded".into());
        job.message = Some("worker-1 exited 1".into());
        job.started_ms = Some(T0 + 1_000);
        job.finished_ms = Some(T0 + 43_000);
        job.replicas = vec![
            replica("master", 0, ReplicaPhase::Stopped, None, Some(15)),
            replica("worker", 0, ReplicaPhase::Succeeded, Some(0), None),
            replica("worker", 1, ReplicaPhase::Failed, Some(1), None),
        ];
        assert_eq!(
            job_details(&job, T0 + 60_000),
            "\
Job:        vision/resnet
Framework:  pytorch
Phase:      Failed
Reason:     BackoffLimitExceeded
Message:    worker-1 exited 1
Restarts:   0
Created:    2025-03-01T12:00:00Z (1m ago)
Started:    2025-03-01T12:00:01Z (59s ago)
Finished:   2025-03-01T12:00:43Z (17s ago)
Duration:   42s

ROLE    INDEX  PHASE      ATTEMPTS  EXIT
master  0      Stopped    1         SIGTERM
worker  0      Succeeded  1         0
worker  1      Failed     1         1
"
        );
    }

    #[test]
    fn a_running_job_has_no_end_yet() {
        let mut job = status("resnet", Phase::Running);
        job.started_ms = Some(T0);
        job.replicas = vec![replica("master", 0, ReplicaPhase::Running, None, None)];
        let text = job_details(&job, T0 + 5_000);
        assert!(
            text.contains("Finished:   -\nDuration:   5s so far\n"),
            "{text}"
        );
        assert!(
            text.ends_with("master  0      Running  1         -\n"),
            "{text}"
        );
    }

    fn event(seq: u64, kind: &str, phase: Phase, replica: Option<&str>, message: &str) -> Event {
        Event {
            seq,
            time_ms: T0 + seq as i64 * 1000,
            tenant: "vision".into(),
            job: "resnet".into(),
            kind: kind.into(),
            phase,
            replica: replica.map(String::from),
            message: message.into(),
        }
    }

    #[test]
    fn events_are_a_table() {
        let events = [
            event(1, "Submitted", Phase::Pending, None, "submitted"),
            event(
                2,
                "ReplicaStarted",
                Phase::Running,
                Some("worker-0"),
                "attempt 1",
            ),
        ];
        assert_eq!(
            event_table(&events),
            "\
TIME                  KIND            PHASE    REPLICA   MESSAGE
2025-03-01T12:00:01Z  Submitted       Pending  -         submitted
2025-03-01T12:00:02Z  ReplicaStarted  Running  worker-0  attempt 1
"
        );
    }

    #[test]
    fn watched_events_line_up_with_their_header() {
        let header = render_row(&EVENT_HEADERS.map(String::from), &EVENT_WIDTHS);
        let row = render_row(
            &event_row(&event(
                3,
                "CancelRequested",
                Phase::Cancelled,
                Some("worker-10"),
                "by user",
            )),
            &EVENT_WIDTHS,
        );
        assert_eq!(header.find("MESSAGE"), row.find("by user"));
        assert_eq!(header.find("REPLICA"), row.find("worker-10"));
    }

    #[test]
    fn progress_names_the_job_and_its_phase() {
        assert_eq!(
            progress_line(&event(2, "Admitted", Phase::Running, None, "admitted")),
            "vision/resnet: Running (admitted)"
        );
        assert_eq!(
            progress_line(&event(2, "Succeeded", Phase::Succeeded, None, "")),
            "vision/resnet: Succeeded"
        );
    }

    #[test]
    fn the_end_line_says_how_long_it_ran() {
        let mut job = status("resnet", Phase::Succeeded);
        job.started_ms = Some(T0);
        job.finished_ms = Some(T0 + 42_000);
        assert_eq!(end_line(&job), "job vision/resnet succeeded in 42s");
    }
}
