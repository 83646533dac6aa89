//! `moon svc create|ls|get|scale|logs|events|delete`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use moon_core::spec::service_from_yaml;
use moon_core::{Client, Error, Phase, ServiceStatus};

use super::job::{events, logs};
use super::{Context, parse_ref, read_spec};
use crate::cli::{ServeArgs, ServiceCommand};
use crate::exit::CliError;
use crate::output::{Table, format_age, format_utc, key_values, now_ms, or_dash};

/// How often `create --wait` looks at the service.
const POLL: Duration = Duration::from_millis(200);

/// Runs one `moon svc` command.
pub async fn run(context: &Context, command: ServiceCommand) -> Result<(), CliError> {
    let out = context.out;
    match command {
        ServiceCommand::Create(args) => create(context, args).await,
        ServiceCommand::Ls { tenant } => {
            let client = context.client()?;
            if let Some(tenant) = &tenant {
                // An unknown tenant is an error rather than an empty list.
                client.get_tenant(tenant).await?;
            }
            let services = client.list_services(tenant.as_deref()).await?;
            if out.is_table() {
                out.text(&service_table(&services, now_ms()))?;
            } else {
                out.document(&services)?;
            }
            Ok(())
        }
        ServiceCommand::Get(named) => {
            let (tenant, name) = parse_ref("service", &named)?;
            let status = context.client()?.get_service(&tenant, &name).await?;
            if out.is_table() {
                out.text(&service_details(&status, now_ms()))?;
            } else {
                out.document(&status)?;
            }
            Ok(())
        }
        ServiceCommand::Scale { service, replicas } => {
            let (tenant, name) = parse_ref("service", &service)?;
            let status = context
                .client()?
                .scale_service(&tenant, &name, replicas)
                .await?;
            if out.is_table() {
                out.text(&format!("service {} scaled to {replicas}", status.key()))?;
            } else {
                out.document(&status)?;
            }
            Ok(())
        }
        ServiceCommand::Logs(args) => logs(context, "service", args).await,
        ServiceCommand::Events(args) => events(context, "service", args).await,
        ServiceCommand::Delete(named) => {
            let (tenant, name) = parse_ref("service", &named)?;
            context.client()?.delete_service(&tenant, &name).await?;
            super::report_deleted(out, "service", &format!("{tenant}/{name}"))
        }
    }
}

async fn create(context: &Context, args: ServeArgs) -> Result<(), CliError> {
    let out = context.out;
    // Parsed and validated before the backend is opened, so that a bad spec creates nothing.
    let service = service_from_yaml(&read_spec(&args.file)?)?;
    let client = context.client()?;
    let outcome = client.apply_service(&service).await?;
    let key = format!("{}/{}", service.tenant, service.name);
    if out.is_table() {
        out.text(&format!("service {key} {}", super::outcome_word(outcome)))?;
    }
    if !args.wait {
        if !out.is_table() {
            out.document(&client.get_service(&service.tenant, &service.name).await?)?;
        }
        return Ok(());
    }
    let progress = std::io::stderr().is_terminal();
    let waiting = wait_ready(&client, &service.tenant, &service.name, progress);
    let status = match args.timeout {
        None => waiting.await?,
        Some(limit) => {
            tokio::time::timeout(limit, waiting)
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("service {key} to be ready"),
                    seconds: limit.as_secs_f64(),
                })??
        }
    };
    if out.is_table() {
        out.text(status.url.as_deref().unwrap_or("-"))?;
    } else {
        out.document(&status)?;
    }
    Ok(())
}

/// Waits until every replica the service should have is ready and it has a
/// URL; with `progress`, prints each change of the ready count to stderr.
async fn wait_ready(
    client: &Client,
    tenant: &str,
    name: &str,
    progress: bool,
) -> moon_core::Result<ServiceStatus> {
    let mut last = None;
    loop {
        let status = client.get_service(tenant, name).await?;
        if status.phase.is_terminal() {
            return Err(Error::Conflict(format!(
                "service {} is {}: {}",
                status.key(),
                status.phase,
                status.message.as_deref().unwrap_or("it ended")
            )));
        }
        if status.phase == Phase::Running
            && status.url.is_some()
            && status.ready_replicas >= status.desired_replicas
        {
            return Ok(status);
        }
        let line = progress_line(&status);
        if progress && last.as_ref() != Some(&line) {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
            last = Some(line);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `vision/mnist: 1/2 ready`, or the reason it waits.
fn progress_line(status: &ServiceStatus) -> String {
    match (&status.phase, &status.message) {
        (Phase::Pending, Some(message)) => format!("{}: Pending ({message})", status.key()),
        _ => format!(
            "{}: {}/{} ready",
            status.key(),
            status.ready_replicas,
            status.desired_replicas
        ),
    }
}

/// `moon svc ls`.
fn service_table(services: &[ServiceStatus], now_ms: i64) -> String {
    let mut table = Table::new(&["TENANT", "NAME", "PHASE", "READY", "URL", "AGE", "MESSAGE"]);
    for service in services {
        table.row(vec![
            service.tenant.clone(),
            service.name.clone(),
            service.phase.to_string(),
            format!("{}/{}", service.ready_replicas, service.desired_replicas),
            or_dash(service.url.as_deref()),
            format_age(service.created_ms, now_ms),
            or_dash(service.message.as_deref()),
        ]);
    }
    table.render()
}

/// `moon svc get`: the service, then a table of its replicas.
fn service_details(service: &ServiceStatus, now_ms: i64) -> String {
    let mut text = key_values(&[
        ("Service", service.key()),
        ("Phase", service.phase.to_string()),
        ("Reason", or_dash(service.reason.as_deref())),
        ("Message", or_dash(service.message.as_deref())),
        ("URL", or_dash(service.url.as_deref())),
        (
            "Replicas",
            format!(
                "{} desired, {} ready",
                service.desired_replicas, service.ready_replicas
            ),
        ),
        (
            "Created",
            format!(
                "{} ({} ago)",
                format_utc(service.created_ms),
                format_age(service.created_ms, now_ms)
            ),
        ),
    ]);
    text.push('\n');
    let mut table = Table::new(&[
        "REPLICA",
        "PHASE",
        "READY",
        "ADDRESS",
        "ATTEMPTS",
        "IN-FLIGHT",
        "REQUESTS",
    ]);
    for replica in &service.replicas {
        table.row(vec![
            replica.name.clone(),
            replica.phase.as_str().to_string(),
            if replica.ready { "yes" } else { "no" }.to_string(),
            or_dash(replica.address.as_deref()),
            replica.attempts.to_string(),
            replica.in_flight.to_string(),
            replica.requests.to_string(),
        ]);
    }
    text.push_str(&table.render());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use moon_core::{ReplicaPhase, ServiceReplicaStatus};

    const T0: i64 = 1_740_830_400_000; // 2025-03-01T12:00:00Z

    fn status(name: &str, ready: u32, desired: u32) -> ServiceStatus {
        ServiceStatus {
            tenant: "vision".into(),
            name: name.into(),
            phase: Phase::Running,
            reason: None,
            message: None,
            url: Some("http://127.0.0.1:40123".into()),
            desired_replicas: desired,
            ready_replicas: ready,
            created_ms: T0,
            replicas: Vec::new(),
        }
    }

    #[test]
    fn ls_is_one_aligned_row_per_service() {
        let mut waiting = status("bert", 0, 2);
        waiting.phase = Phase::Pending;
        waiting.url = None;
        waiting.message = Some("tenant vision: gpus 4 of 4 in use, job asks 2".into());
        assert_eq!(
            service_table(&[status("mnist", 2, 2), waiting], T0 + 65_000),
            "\
TENANT  NAME   PHASE    READY  URL                     AGE   MESSAGE
vision  mnist  Running  2/2    http://127.0.0.1:40123  1m5s  -
vision  bert   Pending  0/2    -                       1m5s  tenant vision: gpus 4 of 4 in use, job asks 2
"
        );
    }

    #[test]
    fn get_shows_the_service_then_its_replicas() {
        let mut service = status("mnist", 1, 2);
        service.replicas = vec![
            ServiceReplicaStatus {
                name: "replica-0".into(),
                phase: ReplicaPhase::Running,
                ready: true,
                address: Some("127.0.0.1:40177".into()),
                attempts: 1,
                in_flight: 3,
                requests: 1200,
            },
            ServiceReplicaStatus {
                name: "replica-1".into(),
                phase: ReplicaPhase::Pending,
                ready: false,
                address: None,
                attempts: 0,
                in_flight: 0,
                requests: 0,
            },
        ];
        assert_eq!(
            service_details(&service, T0 + 60_000),
            "\
Service:   vision/mnist
Phase:     Running
Reason:    -
Message:   -
URL:       http://127.0.0.1:40123
Replicas:  2 desired, 1 ready
Created:   2025-03-01T12:00:00Z (1m ago)

REPLICA    PHASE    READY  ADDRESS          ATTEMPTS  IN-FLIGHT  REQUESTS
replica-0  Running  yes    127.0.0.1:40177  1         3          1200
replica-1  Pending  no     -                0         0          0
"
        );
    }

    #[test]
    fn progress_counts_ready_replicas_or_says_why_it_waits() {
        assert_eq!(
            progress_line(&status("mnist", 1, 2)),
            "vision/mnist: 1/2 ready"
        );
        let mut waiting = status("mnist", 0, 2);
        waiting.phase = Phase::Pending;
        waiting.message = Some("tenant vision: gpus 4 of 4 in use".into());
        assert_eq!(
            progress_line(&waiting),
            "vision/mnist: Pending (tenant vision: gpus 4 of 4 in use)"
        );
    }
}
