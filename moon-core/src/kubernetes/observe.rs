//! Reading what the cluster holds of one job: its anchor, its replicas'
//! Jobs and pods, and the Job controller's warnings about them, as
//! [`status::derive`](moon_spec::kubernetes::status::derive) takes them.
//! Reading needs only the rights of the cluster's `view` role.

use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, ListParams};

use super::api::{Target, api_error};
use crate::error::{Error, Result};
use moon_spec::kubernetes::status::Observed;
use moon_spec::kubernetes::{JOB_LABEL, MANAGED_BY_LABEL, MANAGER};

/// The Job controller's warnings that explain a job held back: a replica's
/// pod refused (by the ResourceQuota, most often).
pub(super) const WARNINGS_FIELDS: &str = "involvedObject.kind=Job,reason=FailedCreate";

/// Reads everything the cluster holds of one job.
pub(super) async fn observe(client: &kube::Client, tenant: &str, name: &str) -> Result<Observed> {
    let key = format!("{tenant}/{name}");
    let target = Target {
        kind: "job",
        name: &key,
    };
    let by_job = ListParams::default().labels(&format!("{JOB_LABEL}={name}"));
    let (anchor, jobs, pods, warnings) = futures::try_join!(
        async {
            Api::<core::ConfigMap>::namespaced(client.clone(), tenant)
                .get(name)
                .await
                .map_err(|error| api_error(error, target))
        },
        async {
            Api::<batch::Job>::namespaced(client.clone(), tenant)
                .list(&by_job)
                .await
                .map_err(|error| api_error(error, target))
        },
        async {
            Api::<core::Pod>::namespaced(client.clone(), tenant)
                .list(&by_job)
                .await
                .map_err(|error| api_error(error, target))
        },
        async {
            Api::<core::Event>::namespaced(client.clone(), tenant)
                .list(&ListParams::default().fields(WARNINGS_FIELDS))
                .await
                .map_err(|error| api_error(error, target))
        },
    )?;
    if !is_anchor(&anchor, name) {
        return Err(Error::NotFound {
            kind: "job",
            name: key,
        });
    }
    let prefix = format!("{name}-");
    Ok(Observed {
        anchor,
        jobs: jobs.items,
        pods: pods.items,
        warnings: warnings
            .items
            .into_iter()
            .filter(|event| {
                event
                    .involved_object
                    .name
                    .as_deref()
                    .is_some_and(|object| object.starts_with(&prefix))
            })
            .collect(),
    })
}

/// Whether a ConfigMap is the anchor of moon job `name`.
pub(super) fn is_anchor(anchor: &core::ConfigMap, name: &str) -> bool {
    let labels = anchor.metadata.labels.as_ref();
    labels.and_then(|l| l.get(JOB_LABEL)).map(String::as_str) == Some(name)
        && labels
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .map(String::as_str)
            == Some(MANAGER)
}

/// The moon job an object belongs to, by its label.
pub(super) fn job_of<K: kube::Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .labels
        .as_ref()?
        .get(JOB_LABEL)
        .map(String::as_str)
}
