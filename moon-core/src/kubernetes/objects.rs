//! A job's objects on the cluster, read and written by the backend and by
//! the streams that follow a job alike: reading everything of one job,
//! recording its conclusion on the anchor, and the parameters of its
//! replicas' log requests. Used by `backend`, `informer` and `watch`, and
//! using none of them, so that those three do not import each other.

use futures::future::try_join_all;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use moon_spec::kubernetes::status::{Conclusion, Derived, Observed};
use moon_spec::kubernetes::{JOB_LABEL, MANAGED_BY_LABEL, MANAGER};
use serde_json::json;

use super::api::{Target, api_error, is_not_found};
use crate::backend::LogOptions;
use crate::error::{Error, Result};

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

/// The Job controller's warnings that explain a job held back: a replica's
/// pod refused (by the ResourceQuota, most often).
pub(super) const WARNINGS_FIELDS: &str = "involvedObject.kind=Job,reason=FailedCreate";

/// Whether a ConfigMap is the anchor of moon job `name`.
pub(super) fn is_anchor(anchor: &core::ConfigMap, name: &str) -> bool {
    let labels = anchor.metadata.labels.as_ref();
    labels.and_then(|l| l.get(JOB_LABEL)).map(String::as_str) == Some(name)
        && labels
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .map(String::as_str)
            == Some(MANAGER)
}

/// Records a job's conclusion on its anchor and stops the replicas it no
/// longer needs. The anchor is changed only if no one changed it since it
/// was read; whoever lost that race reads the winner's conclusion next time.
pub(super) async fn record(
    client: &kube::Client,
    observed: &Observed,
    derived: &Derived,
) -> Result<()> {
    let tenant = derived.spec.tenant.as_str();
    let key = format!("{tenant}/{}", derived.spec.name);
    let target = Target {
        kind: "job",
        name: &key,
    };
    if let Some(conclusion) = &derived.conclusion {
        match write_conclusion(client, &observed.anchor, conclusion).await {
            Err(kube::Error::Api(status)) if status.code == 409 => return Ok(()),
            other => other.map_err(|error| api_error(error, target))?,
        }
    }
    let jobs = Api::<batch::Job>::namespaced(client.clone(), tenant);
    let suspend = json!({"spec": {"suspend": true}});
    try_join_all(derived.to_stop.iter().map(|name| {
        let (jobs, suspend) = (&jobs, &suspend);
        async move {
            match jobs
                .patch(name, &manager_params(), &Patch::Merge(suspend))
                .await
            {
                // Gone, or finished between the read and the patch: nothing to stop.
                Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409 | 422) => Ok(()),
                other => other.map(drop).map_err(|error| api_error(error, target)),
            }
        }
    }))
    .await?;
    Ok(())
}

pub(super) async fn write_conclusion(
    client: &kube::Client,
    anchor: &core::ConfigMap,
    conclusion: &Conclusion,
) -> Result<(), kube::Error> {
    let name = anchor.metadata.name.as_deref().unwrap_or_default();
    let namespace = anchor.metadata.namespace.as_deref().unwrap_or_default();
    let patch = json!({
        "metadata": {
            "resourceVersion": anchor.metadata.resource_version,
            "annotations": conclusion.annotations(),
        }
    });
    Api::<core::ConfigMap>::namespaced(client.clone(), namespace)
        .patch(name, &manager_params(), &Patch::Merge(&patch))
        .await
        .map(drop)
}

pub(super) fn manager_params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// `LogParams` for one replica's container.
pub(super) fn log_params(role: &str, options: &LogOptions) -> LogParams {
    LogParams {
        container: Some(role.to_string()),
        follow: options.follow,
        tail_lines: options.tail.map(|tail| tail as i64),
        timestamps: true,
        ..LogParams::default()
    }
}

/// Whether a log request failed because the pod is gone.
pub(super) fn pod_gone(error: &kube::Error) -> bool {
    is_not_found(error)
}
