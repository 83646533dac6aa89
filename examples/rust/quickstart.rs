//! A tenant and a two-replica distributed job on the local backend, with
//! live logs: `cargo run -p moon-examples --example quickstart`.
//!
//! The job uses PyTorch's rendezvous variables (MASTER_ADDR, RANK, ...) but
//! runs a shell command, so it needs nothing installed.

use std::time::Duration;

use futures::StreamExt;
use moon_core::backend::LogOptions;
use moon_core::spec::{Framework, Job, Quantity, Role, Tenant, TenantQuota};
use moon_core::{Client, Phase};

fn main() {
    // This program is also moon's agent and replica supervisor when the
    // local backend starts it as one; that must be decided before anything else.
    if let Some(code) = moon_core::local::run_hidden_command() {
        std::process::exit(code);
    }
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    if let Err(error) = runtime.block_on(quickstart()) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn quickstart() -> moon_core::Result<()> {
    let client = Client::local()?;
    let tenant = Tenant {
        name: "quickstart".into(),
        quota: TenantQuota {
            cpus: Some(Quantity::Int(2)),
            memory: Some(Quantity::from("4Gi")),
            gpus: Some(0),
            jobs: Some(4),
        },
        ..Tenant::default()
    };
    println!(
        "tenant quickstart: {:?}",
        client.apply_tenant(&tenant).await?
    );

    let script = "echo rank $RANK of $WORLD_SIZE, rendezvous at $MASTER_ADDR:$MASTER_PORT; sleep 1; echo rank $RANK done";
    let mut roles = vec![
        Role::new("master", 1, &["sh", "-c", script]),
        Role::new("worker", 1, &["sh", "-c", script]),
    ];
    for role in &mut roles {
        role.cpus = Quantity::from("500m");
        role.memory = Quantity::from("256Mi");
    }
    let name = format!("hello-{}", std::process::id());
    let job = Job::new(&name, "quickstart", Framework::Pytorch, roles);
    let submitted = client.submit(&job).await?;
    println!("submitted {} ({})", submitted.key(), submitted.phase);

    let mut logs = client
        .logs(
            "quickstart",
            &name,
            LogOptions {
                follow: true,
                ..LogOptions::default()
            },
        )
        .await?;
    while let Some(line) = logs.next().await {
        let line = line?;
        println!("[{}] {}", line.replica, line.line);
    }

    let status = client
        .wait("quickstart", &name, Some(Duration::from_secs(120)))
        .await?;
    println!("{} {}", status.key(), status.phase);
    for replica in &status.replicas {
        println!(
            "  {:<10} {:<10} exit {:?}",
            replica.name(),
            replica.phase.as_str(),
            replica.exit_code
        );
    }
    if status.phase != Phase::Succeeded {
        status.into_result()?;
    }
    Ok(())
}
