//! A job's outcome written down once: the first reader that sees a job end
//! records the conclusion on the job's anchor and stops the replicas still
//! running, so that the outcome is the same for every later reader and
//! survives the pods, and a job nobody waits for does not run on.
//!
//! Reading never needs write rights: a reader bound only to the cluster's
//! `view` role derives the same status and leaves the recording to the next
//! reader that may write (the submitter's `wait`, an operator's `list`).

use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::api::{Target, api_error};
use crate::error::{Error, Result};
use moon_spec::kubernetes::MANAGER;
use moon_spec::kubernetes::status::{Conclusion, Derived, Observed};

/// Records a job's conclusion on its anchor and stops the replicas it no
/// longer needs. The anchor is changed only if no one changed it since it
/// was read; whoever lost that race reads the winner's conclusion next time.
async fn record(client: &kube::Client, observed: &Observed, derived: &Derived) -> Result<()> {
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
    futures::future::try_join_all(derived.to_stop.iter().map(|name| {
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

/// Writes a conclusion on the anchor as it was read: `409 Conflict` when
/// it changed since.
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

fn manager_params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// Records what jobs concluded, on behalf of one call: what a failure to
/// record means depends on whether that call reads or writes.
#[derive(Debug)]
pub(super) struct Recorder {
    reading: bool,
    refused: bool,
}

impl Recorder {
    /// For a read (get, list, events, logs, watch, wait), where recording
    /// is a service to later readers rather than what was asked: a refusal
    /// (the reader may only view) or an unreachable server leaves the job
    /// for the next reader to record, and the read returns what it
    /// derived. After one refusal the same read tries no more, so that a
    /// viewer's listing of many ended jobs costs no request per job.
    pub(super) fn reading() -> Recorder {
        Recorder {
            reading: true,
            refused: false,
        }
    }

    /// For a write (cancel), whose answer a refusal to record is.
    pub(super) fn writing() -> Recorder {
        Recorder {
            reading: false,
            refused: false,
        }
    }

    /// Records what `derived` concluded, if anything. For a read, errors
    /// other than a refusal or an unreachable server (the job deleted
    /// meanwhile) are still the read's.
    pub(super) async fn record(
        &mut self,
        client: &kube::Client,
        observed: &Observed,
        derived: &Derived,
    ) -> Result<()> {
        if self.refused || (derived.conclusion.is_none() && derived.to_stop.is_empty()) {
            return Ok(());
        }
        match record(client, observed, derived).await {
            Err(Error::PermissionDenied(_)) if self.reading => {
                self.refused = true;
                Ok(())
            }
            Err(Error::Cluster(_)) if self.reading => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::spec::{Framework, Job, Role};
    use moon_spec::kubernetes::status::{self, Conclusion};
    use moon_spec::kubernetes::{Object, RenderOptions, render_job};
    use moon_spec::status::Phase;

    /// A client whose every request is answered `code`, and how many it made.
    fn answering(code: u16, reason: &'static str) -> (kube::Client, Arc<AtomicUsize>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let service = tower::service_fn(move |_: http::Request<kube::client::Body>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let status = json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("configmaps \"mnist\" is {reason}"),
                "reason": reason, "code": code,
            });
            let response = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(
                    serde_json::to_vec(&status).unwrap(),
                ))
                .unwrap();
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        (kube::Client::new(service, "default"), requests)
    }

    /// A job that has ended, as a reader derives it before anyone recorded it.
    fn ended() -> (Observed, Derived) {
        let job = Job::new(
            "mnist",
            "vision",
            Framework::Pytorch,
            vec![Role::new("master", 1, &["python", "train.py"])],
        );
        let rendered = render_job(&job, &RenderOptions::default()).unwrap();
        let Some(Object::ConfigMap(anchor)) = rendered.into_iter().next() else {
            panic!("the anchor comes first");
        };
        let mut anchor = *anchor;
        anchor.metadata.resource_version = Some("7".to_string());
        let observed = Observed {
            anchor,
            ..Observed::default()
        };
        let mut derived = status::derive(&observed).unwrap();
        derived.conclusion = Some(Conclusion {
            phase: Phase::Succeeded,
            reason: "Completed".to_string(),
            message: "every replica succeeded".to_string(),
            finished_ms: 1_795_982_400_000,
        });
        (observed, derived)
    }

    #[tokio::test]
    async fn a_reader_who_may_only_view_gets_no_error_and_asks_once() {
        let (client, requests) = answering(403, "Forbidden");
        let (observed, derived) = ended();
        let mut recorder = Recorder::reading();
        recorder.record(&client, &observed, &derived).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        // The same read's next jobs are not tried: one refusal says enough.
        recorder.record(&client, &observed, &derived).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        // A write is refused as the server refused it.
        assert!(matches!(
            Recorder::writing().record(&client, &observed, &derived).await,
            Err(Error::PermissionDenied(message)) if message == "configmaps \"mnist\" is Forbidden"
        ));
    }

    #[tokio::test]
    async fn a_reader_leaves_the_record_to_the_next_when_the_server_is_unavailable() {
        let (client, requests) = answering(503, "ServiceUnavailable");
        let (observed, derived) = ended();
        let mut recorder = Recorder::reading();
        recorder.record(&client, &observed, &derived).await.unwrap();
        recorder.record(&client, &observed, &derived).await.unwrap();
        // Unavailable is not a refusal: each change tries again.
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert!(matches!(
            Recorder::writing().record(&client, &observed, &derived).await,
            Err(Error::Cluster(error)) if error.retryable
        ));
    }

    #[tokio::test]
    async fn nothing_to_record_asks_nothing() {
        let (client, requests) = answering(403, "Forbidden");
        let (observed, mut derived) = ended();
        derived.conclusion = None;
        Recorder::reading()
            .record(&client, &observed, &derived)
            .await
            .unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 0);
    }
}
