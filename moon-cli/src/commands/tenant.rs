//! `moon tenant create|apply|ls|get|delete`.

use moon_core::backend::{ApplyOutcome, TenantStatus};
use moon_core::spec::{
    Quantity, Tenant, TenantQuota, format_bytes, format_cpus, tenant_from_yaml, validate_tenant,
};
use serde::Serialize;

use super::{Context, read_spec};
use crate::cli::{TenantCommand, TenantCreateArgs};
use crate::exit::CliError;
use crate::output::{Table, key_values, or_dash};

/// Runs one `moon tenant` command.
pub async fn run(context: &Context, command: TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Create(args) => apply(context, tenant_from_flags(args)).await,
        TenantCommand::Apply(args) => {
            let tenant = tenant_from_yaml(&read_spec(&args.file)?)?;
            apply(context, tenant).await
        }
        TenantCommand::Ls => {
            let tenants = context.client()?.list_tenants().await?;
            if context.out.is_table() {
                context.out.text(&tenant_table(&tenants))?;
            } else {
                context.out.document(&tenants)?;
            }
            Ok(())
        }
        TenantCommand::Delete { name, force } => {
            context.client()?.delete_tenant(&name, force).await?;
            super::report_deleted(context.out, "tenant", &name)
        }
        TenantCommand::Get { name } => {
            let tenant = context.client()?.get_tenant(&name).await?;
            if context.out.is_table() {
                context.out.text(&tenant_details(&tenant))?;
            } else {
                context.out.document(&tenant)?;
            }
            Ok(())
        }
    }
}

fn tenant_from_flags(args: TenantCreateArgs) -> Tenant {
    Tenant {
        name: args.name,
        quota: TenantQuota {
            cpus: args.cpus,
            memory: args.memory,
            gpus: args.gpus,
            jobs: args.jobs,
        },
        users: args.users,
        groups: args.groups,
        ..Tenant::default()
    }
}

/// What `apply` prints with `-o json|yaml`.
#[derive(Serialize)]
struct Applied<'a> {
    kind: &'static str,
    name: &'a str,
    outcome: ApplyOutcome,
}

async fn apply(context: &Context, tenant: Tenant) -> Result<(), CliError> {
    // Checked before the backend is opened, so that a bad spec creates nothing.
    validate_tenant(&tenant)?;
    let outcome = context.client()?.apply_tenant(&tenant).await?;
    if context.out.is_table() {
        context.out.text(&format!(
            "tenant {} {}",
            tenant.name,
            super::outcome_word(outcome)
        ))?;
    } else {
        context.out.document(&Applied {
            kind: "tenant",
            name: &tenant.name,
            outcome,
        })?;
    }
    Ok(())
}

/// A quota limit as people read it; `-` when unlimited.
fn cpus_limit(limit: Option<&Quantity>) -> String {
    match limit {
        None => "-".into(),
        Some(quantity) => quantity
            .millicores()
            .map_or_else(|_| quantity.to_string(), format_cpus),
    }
}

fn memory_limit(limit: Option<&Quantity>) -> String {
    match limit {
        None => "-".into(),
        Some(quantity) => quantity
            .bytes()
            .map_or_else(|_| quantity.to_string(), format_bytes),
    }
}

fn count_limit(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-".into(), |limit| limit.to_string())
}

/// (resource, used, limit) for each quota, in the order tables show them.
fn usage(tenant: &TenantStatus) -> [(&'static str, String, String); 4] {
    let quota = &tenant.spec.quota;
    [
        (
            "cpus",
            format_cpus(tenant.used_millicores),
            cpus_limit(quota.cpus.as_ref()),
        ),
        (
            "memory",
            format_bytes(tenant.used_bytes),
            memory_limit(quota.memory.as_ref()),
        ),
        (
            "gpus",
            tenant.used_gpus.to_string(),
            count_limit(quota.gpus),
        ),
        (
            "jobs",
            tenant.running_jobs.to_string(),
            count_limit(quota.jobs),
        ),
    ]
}

/// `moon tenant ls`: each resource as USED/LIMIT.
fn tenant_table(tenants: &[TenantStatus]) -> String {
    let mut table = Table::new(&["NAME", "CPUS", "MEMORY", "GPUS", "JOBS", "PENDING"]);
    for tenant in tenants {
        let mut row = vec![tenant.spec.name.clone()];
        row.extend(
            usage(tenant)
                .into_iter()
                .map(|(_, used, limit)| format!("{used}/{limit}")),
        );
        row.push(tenant.pending_jobs.to_string());
        table.row(row);
    }
    table.render()
}

/// `moon tenant get`: the spec, then usage against each limit.
fn tenant_details(tenant: &TenantStatus) -> String {
    let spec = &tenant.spec;
    let list = |items: &[String]| or_dash(Some(&items.join(", ")));
    let labels: Vec<String> = spec
        .labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut text = key_values(&[
        ("Name", spec.name.clone()),
        ("Users", list(&spec.users)),
        ("Groups", list(&spec.groups)),
        ("Labels", list(&labels)),
        (
            "Jobs",
            format!(
                "{} running, {} pending",
                tenant.running_jobs, tenant.pending_jobs
            ),
        ),
    ]);
    text.push('\n');
    let mut table = Table::new(&["RESOURCE", "USED", "LIMIT"]);
    for (resource, used, limit) in usage(tenant) {
        let limit = if limit == "-" {
            "unlimited".into()
        } else {
            limit
        };
        table.row(vec![resource.into(), used, limit]);
    }
    text.push_str(&table.render());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, quota: TenantQuota) -> TenantStatus {
        TenantStatus {
            spec: Tenant {
                name: name.into(),
                quota,
                users: vec!["ann".into(), "bo".into()],
                ..Tenant::default()
            },
            running_jobs: 1,
            pending_jobs: 2,
            used_millicores: 1500,
            used_bytes: 1 << 30,
            used_gpus: 1,
        }
    }

    fn quota() -> TenantQuota {
        TenantQuota {
            cpus: Some(Quantity::Int(4)),
            memory: Some("8Gi".into()),
            gpus: None,
            jobs: Some(3),
        }
    }

    #[test]
    fn ls_shows_usage_against_limits() {
        let tenants = [
            status("vision", quota()),
            status("nlp", TenantQuota::default()),
        ];
        assert_eq!(
            tenant_table(&tenants),
            "\
NAME    CPUS   MEMORY   GPUS  JOBS  PENDING
vision  1.5/4  1Gi/8Gi  1/-   1/3   2
nlp     1.5/-  1Gi/-    1/-   1/-   2
"
        );
    }

    #[test]
    fn get_shows_spec_and_usage() {
        assert_eq!(
            tenant_details(&status("vision", quota())),
            "\
Name:    vision
Users:   ann, bo
Groups:  -
Labels:  -
Jobs:    1 running, 2 pending

RESOURCE  USED  LIMIT
cpus      1.5   4
memory    1Gi   8Gi
gpus      1     unlimited
jobs      1     3
"
        );
    }

    #[test]
    fn flags_make_the_same_tenant_as_a_file() {
        let from_flags = tenant_from_flags(TenantCreateArgs {
            name: "vision".into(),
            cpus: Some(Quantity::Int(2)),
            memory: Some("8Gi".into()),
            gpus: Some(1),
            jobs: None,
            users: vec!["ann".into()],
            groups: vec![],
        });
        let from_file = tenant_from_yaml(
            "name: vision\nquota: {cpus: 2, memory: 8Gi, gpus: 1}\nusers: [ann]\n",
        )
        .unwrap();
        assert_eq!(from_flags, from_file);
    }
}
