//! `moon secret create|ls|delete`. No value a user gives is ever printed,
//! not even in an error: errors name keys, flags and line numbers.

use std::collections::BTreeMap;

use moon_core::backend::ApplyOutcome;
use moon_core::secret::{SecretData, SecretInfo};
use moon_core::spec::validate_secret;
use serde::Serialize;

use super::{Context, read_spec};
use crate::cli::{SecretCommand, SecretCreateArgs};
use crate::exit::CliError;
use crate::output::Table;

/// Runs one `moon secret` command.
pub async fn run(context: &Context, command: SecretCommand) -> Result<(), CliError> {
    match command {
        SecretCommand::Create(args) => create(context, args).await,
        SecretCommand::Ls { tenant } => {
            let secrets = context.client()?.list_secrets(&tenant).await?;
            if context.out.is_table() {
                context.out.text(secret_table(&secrets).trim_end())?;
            } else {
                context.out.document(&secrets)?;
            }
            Ok(())
        }
        SecretCommand::Delete { name, tenant } => {
            context.client()?.delete_secret(&tenant, &name).await?;
            if context.out.is_table() {
                context
                    .out
                    .text(&format!("secret {tenant}/{name} deleted"))?;
            } else {
                context.out.document(&Done {
                    kind: "secret",
                    name: &format!("{tenant}/{name}"),
                    outcome: "deleted",
                })?;
            }
            Ok(())
        }
    }
}

/// What create and delete print with `-o json|yaml`.
#[derive(Serialize)]
struct Done<'a> {
    kind: &'static str,
    name: &'a str,
    outcome: &'a str,
}

async fn create(context: &Context, args: SecretCreateArgs) -> Result<(), CliError> {
    let data = match &args.env_file {
        Some(file) => SecretData::from_env_file(&read_spec(file)?)?,
        None if args.literals.is_empty() => {
            return Err(CliError::Input(
                "give the secret's keys with --from-literal KEY=VALUE or --from-env-file FILE"
                    .to_string(),
            ));
        }
        None => literals(&args.literals)?,
    };
    // Checked before the backend is opened, so that a bad secret creates nothing.
    validate_secret(&args.name, &data)?;
    let outcome = context
        .client()?
        .apply_secret(&args.tenant, &args.name, &data)
        .await?;
    let word = match outcome {
        ApplyOutcome::Created => "created",
        ApplyOutcome::Updated => "updated",
        ApplyOutcome::Unchanged => "unchanged",
    };
    let name = format!("{}/{}", args.tenant, args.name);
    if context.out.is_table() {
        context.out.text(&format!("secret {name} {word}"))?;
    } else {
        context.out.document(&Done {
            kind: "secret",
            name: &name,
            outcome: word,
        })?;
    }
    Ok(())
}

/// `KEY=VALUE` flags as data; a flag without `=` is named by its position,
/// since its text may be a value typed in the wrong place.
fn literals(flags: &[String]) -> Result<SecretData, CliError> {
    let mut data = BTreeMap::new();
    for (i, flag) in flags.iter().enumerate() {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(CliError::Input(format!(
                "--from-literal number {} must be KEY=VALUE",
                i + 1
            )));
        };
        data.insert(key.to_string(), value.to_string());
    }
    Ok(SecretData::new(data))
}

fn secret_table(secrets: &[SecretInfo]) -> String {
    let mut table = Table::new(&["NAME", "KEYS"]);
    for secret in secrets {
        table.row(vec![secret.name.clone(), secret.keys.join(",")]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_without_equals_is_named_by_position_not_text() {
        let Err(CliError::Input(message)) = literals(&["A=1".into(), "hunter2".into()]) else {
            panic!("accepted");
        };
        assert_eq!(message, "--from-literal number 2 must be KEY=VALUE");
    }

    #[test]
    fn literals_keep_everything_after_the_first_equals() {
        let data = literals(&["TOKEN=a=b".into()]).unwrap();
        assert_eq!(data.expose()["TOKEN"], "a=b");
    }
}
