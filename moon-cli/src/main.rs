//! `moon`, the command line of moon: tenants and distributed training jobs.
//!
//! ```text
//! moon [-o table|json|yaml] [--home PATH] [--backend local|kubernetes] [--kubeconfig F] [--context C] COMMAND
//!
//! moon tenant create NAME [--cpus X] [--memory X] [--gpus N] [--jobs N] [--user U]... [--group G]...
//! moon tenant apply -f tenant.yaml          prints created, updated or unchanged
//! moon tenant ls | get NAME
//! moon job submit -f job.yaml [--wait] [--follow] [--timeout SECS]
//! moon job ls [--tenant T]
//! moon job get TENANT/NAME                  or NAME --tenant T, as for every job command
//! moon job logs TENANT/NAME [-f] [--tail N] [--replica worker-1]
//! moon job events TENANT/NAME [-w]
//! moon job cancel TENANT/NAME
//! moon job wait TENANT/NAME [--timeout SECS]
//! moon validate -f spec.yaml
//! moon gpu ls                               this machine's GPUs and their health
//! moon gpu labels                           their node labels, key=value
//! moon fs ls|cat|cp|rm|du URL...            objects in stores (file, seaweedfs, hdfs, ...)
//! moon net check --from A --to B --port P -f policies.yaml --pods pods.yaml
//! moon net matrix TENANT --port P -f policies.yaml --pods pods.yaml
//! ```
//!
//! Exit codes (see [`exit`]): 0 success; 1 the job ended Failed or Cancelled
//! while waited for, or a connection denied (`net check`); 2 invalid input; 3 not found; 4 timed out; 5 refused
//! (quota, permission, name taken, conflicting state); 6 anything else; 7 no
//! GPUs to read (no NVML, or NVML failed, and no `MOON_GPU_INVENTORY`).
//!
//! The same binary is moon's background agent and replica supervisor: the
//! local backend starts it with a hidden first argument.

mod cli;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Started as the agent or a supervisor: that must run before any thread
    // exists, because the agent forks to detach.
    if let Some(code) = moon_core::local::run_hidden_command() {
        std::process::exit(code);
    }
    // clap prints usage errors and exits 2 itself (0 for --help and --version).
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::OTHER);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // Streams' background tasks may still be blocked reading; they are not
    // waited for.
    runtime.shutdown_background();
    exit::finish(result)
}
