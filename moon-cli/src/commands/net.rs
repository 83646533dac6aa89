//! `moon net check|matrix`: the network-policy evaluator over policy files
//! and a description of the pods, with the deciding rule in plain words.

use moon_core::net::policy::{Cluster, Evaluator, Peer, PolicySet, Protocol, Traffic, compile};
use serde::Deserialize;

use super::{Context, read_spec};
use crate::cli::{NetCheckArgs, NetCommand, NetInputs, NetMatrixArgs};
use crate::exit::CliError;

/// Runs `moon net ...`.
pub fn run(context: &Context, command: NetCommand) -> Result<(), CliError> {
    match command {
        NetCommand::Check(args) => check(context, &args),
        NetCommand::Matrix(args) => matrix(context, &args),
    }
}

/// The evaluator over the inputs' policies and pods, and the traffic asked.
fn evaluator(inputs: &NetInputs) -> Result<(Evaluator, Traffic), CliError> {
    let protocol = match Protocol::parse(&inputs.protocol) {
        Some(p @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp)) => p,
        _ => {
            return Err(CliError::Input(format!(
                "--protocol {:?}: must be tcp, udp or sctp",
                inputs.protocol
            )));
        }
    };
    let mut set = PolicySet::default();
    let mut index = 0;
    for path in &inputs.files {
        let text = read_spec(path)?;
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document).map_err(|e| {
                CliError::Input(format!("{}: not YAML or JSON: {e}", path.display()))
            })?;
            set.push_document(value, &mut index)
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
        }
    }
    let pods_text = read_spec(&inputs.pods)?;
    let cluster: Cluster = serde_yaml_ng::from_str(&pods_text)
        .map_err(|e| CliError::Input(format!("{}: {e}", inputs.pods.display())))?;
    let compiled = compile(&set).map_err(moon_core::Error::from)?;
    let evaluator = Evaluator::new(cluster, compiled).map_err(moon_core::Error::from)?;
    Ok((
        evaluator,
        Traffic {
            protocol,
            port: inputs.port,
        },
    ))
}

fn peer(evaluator: &Evaluator, name: &str, flag: &str) -> Result<Peer, CliError> {
    evaluator
        .peer(name)
        .map_err(|e| CliError::Input(format!("--{flag}: {e}")))
}

fn check(context: &Context, args: &NetCheckArgs) -> Result<(), CliError> {
    let (evaluator, traffic) = evaluator(&args.inputs)?;
    let from = peer(&evaluator, &args.from, "from")?;
    let to = peer(&evaluator, &args.to, "to")?;
    let verdict = evaluator.check(from, to, traffic);
    if context.out.is_table() {
        context.out.text(&verdict.explain(&args.from, &args.to))?;
    } else {
        context.out.document(&verdict)?;
    }
    if verdict.allowed {
        Ok(())
    } else {
        Err(CliError::Denied)
    }
}

/// What `moon net matrix -o json` prints.
#[derive(serde::Serialize)]
struct Matrix {
    protocol: String,
    port: u16,
    from: Vec<String>,
    to: Vec<String>,
    /// Rows: from; columns: to.
    allowed: Vec<Vec<bool>>,
}

fn matrix(context: &Context, args: &NetMatrixArgs) -> Result<(), CliError> {
    let (evaluator, traffic) = evaluator(&args.inputs)?;
    let pods = &evaluator.cluster().pods;
    let from: Vec<Peer> = (0..pods.len()).map(Peer::Pod).collect();
    let to: Vec<Peer> = (0..pods.len())
        .filter(|&i| pods[i].namespace == args.tenant)
        .map(Peer::Pod)
        .collect();
    if to.is_empty() {
        return Err(CliError::Input(format!(
            "no pod of tenant {:?} in {}",
            args.tenant,
            args.inputs.pods.display()
        )));
    }
    let allowed = evaluator.matrix(&from, &to, traffic);
    let names =
        |peers: &[Peer]| -> Vec<String> { peers.iter().map(|&p| evaluator.peer_name(p)).collect() };
    let table = Matrix {
        protocol: traffic.protocol.to_string(),
        port: traffic.port,
        from: names(&from),
        to: names(&to),
        allowed,
    };
    if !context.out.is_table() {
        context.out.document(&table)?;
        return Ok(());
    }
    let width = table.from.iter().map(String::len).max().unwrap_or(0);
    let mut text = format!(
        "{}/{} into {} ('.' allowed, 'X' denied)\n{:width$}  {}\n",
        table.protocol,
        table.port,
        args.tenant,
        "",
        table.to.join("  ")
    );
    for (name, row) in table.from.iter().zip(&table.allowed) {
        text.push_str(&format!("{name:>width$}"));
        for (cell, column) in row.iter().zip(&table.to) {
            let mark = if *cell { "." } else { "X" };
            text.push_str(&format!("  {mark:^w$}", w = column.len()));
        }
        text.push('\n');
    }
    context.out.text(&text)?;
    Ok(())
}
