//! Tenant secrets on a cluster: an Opaque Secret in the tenant's namespace,
//! applied server-side by moon's field manager, which replicas get through
//! `envFrom: [{secretRef: {name}}]`. A role may name any Secret of the
//! namespace (one an operator keeps in sync, say); moon lists and deletes
//! only the ones it made.

use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use super::api::{Target, api_error};
use crate::backend::ApplyOutcome;
use crate::error::{Error, Result};
use crate::secret::{SecretData, SecretInfo};
use crate::spec::Job;
use moon_spec::kubernetes::{MANAGED_BY_LABEL, MANAGER, render_secret};

/// Creates or replaces the secret; with one field manager and `force`,
/// keys left out of `data` are removed.
pub(super) async fn apply(
    client: &kube::Client,
    tenant: &str,
    name: &str,
    data: &SecretData,
) -> Result<ApplyOutcome> {
    let key = format!("{tenant}/{name}");
    let target = Target {
        kind: "secret",
        name: &key,
    };
    let secrets = Api::<core::Secret>::namespaced(client.clone(), tenant);
    let before = secrets
        .get_metadata_opt(name)
        .await
        .map_err(|error| api_error(error, target))?
        .and_then(|secret| secret.metadata.resource_version);
    let secret = render_secret(tenant, name, data);
    let applied = secrets
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(|error| api_error(error, target))?;
    Ok(match before {
        None => ApplyOutcome::Created,
        Some(version) if Some(&version) == applied.metadata.resource_version.as_ref() => {
            ApplyOutcome::Unchanged
        }
        Some(_) => ApplyOutcome::Updated,
    })
}

/// The secrets moon made in the tenant's namespace, with their keys.
pub(super) async fn list(client: &kube::Client, tenant: &str) -> Result<Vec<SecretInfo>> {
    let target = Target {
        kind: "secret",
        name: tenant,
    };
    let listed = Api::<core::Secret>::namespaced(client.clone(), tenant)
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")))
        .await
        .map_err(|error| api_error(error, target))?;
    let mut found: Vec<SecretInfo> = listed
        .items
        .into_iter()
        .map(|secret| SecretInfo {
            tenant: tenant.to_string(),
            name: secret.metadata.name.unwrap_or_default(),
            keys: secret
                .data
                .map(|data| data.into_keys().collect())
                .unwrap_or_default(),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Deletes a secret moon made; one it did not make is left alone, with a
/// `Conflict` that says so.
pub(super) async fn delete(client: &kube::Client, tenant: &str, name: &str) -> Result<()> {
    let key = format!("{tenant}/{name}");
    let target = Target {
        kind: "secret",
        name: &key,
    };
    let secrets = Api::<core::Secret>::namespaced(client.clone(), tenant);
    let secret = secrets
        .get_metadata(name)
        .await
        .map_err(|error| api_error(error, target))?;
    let ours = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY_LABEL))
        .is_some_and(|manager| manager == MANAGER);
    if !ours {
        return Err(Error::Conflict(format!(
            "secret {key} was not made by moon; delete it with kubectl if it is no longer needed"
        )));
    }
    secrets
        .delete(name, &DeleteParams::default())
        .await
        .map_err(|error| api_error(error, target))?;
    Ok(())
}

/// `NotFound` naming the first secret the job's roles name that the
/// tenant's namespace lacks.
pub(super) async fn check_referenced(client: &kube::Client, job: &Job) -> Result<()> {
    let secrets = Api::<core::Secret>::namespaced(client.clone(), &job.tenant);
    let mut names: Vec<&str> = job
        .roles
        .iter()
        .flat_map(|role| role.env_from.iter().map(|source| source.secret.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let key = format!("{}/{name}", job.tenant);
        let target = Target {
            kind: "secret",
            name: &key,
        };
        // Metadata only: the check needs no value on the wire.
        let found = secrets
            .get_metadata_opt(name)
            .await
            .map_err(|error| api_error(error, target))?;
        if found.is_none() {
            return Err(Error::NotFound {
                kind: "secret",
                name: key,
            });
        }
    }
    Ok(())
}
