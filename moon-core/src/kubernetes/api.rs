//! The Kubernetes API as the backend uses it: connecting, applying rendered
//! objects with one field manager, and the one place where the API server's
//! errors become moon's.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Status;
use kube::runtime::watcher;

use super::config::KubernetesConfig;
use crate::error::{ClusterError, Error, FieldError, FieldErrors, Result, rule};
use moon_spec::kubernetes::{MANAGER, Object};

/// What moon's requests say they come from: `moon/0.1.0`.
pub const USER_AGENT: &str = concat!("moon/", env!("CARGO_PKG_VERSION"));

/// A client for the cluster the settings name.
pub(super) async fn connect(config: &KubernetesConfig) -> Result<kube::Client> {
    let options = KubeConfigOptions {
        context: config.context.clone(),
        ..KubeConfigOptions::default()
    };
    let loaded = match (&config.kubeconfig, &config.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|error| {
                Error::invalid(
                    "config",
                    "kubeconfig",
                    rule::SYNTAX,
                    format!("{}: {error}", path.display()),
                )
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|error| error.to_string())
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|error| error.to_string()),
        (None, None) => kube::Config::infer()
            .await
            .map_err(|error| error.to_string()),
    };
    let mut kube_config =
        loaded.map_err(|message| Error::invalid("config", "kubeconfig", rule::SYNTAX, message))?;
    // So that the API server's audit log and metrics tell moon's requests apart.
    kube_config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    kube::Client::try_from(kube_config).map_err(|error| {
        Error::Cluster(ClusterError::moon("ClientSetup", error.to_string(), false))
    })
}

/// What a request was about, for errors that name it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    /// moon's word for it: `job`, `tenant`.
    pub kind: &'static str,
    /// moon's name for it: `team-a/mnist`.
    pub name: &'a str,
}

/// The API server's answer as moon's error: 403 is permission denied with
/// the server's sentence (which names the user, verb, resource and
/// namespace), 404 not found, 409 already exists or a conflict, 422 an
/// invalid spec with the server's field messages, anything else (a 5xx, a
/// refused connection) a cluster error.
pub(super) fn api_error(error: kube::Error, target: Target<'_>) -> Error {
    match error {
        kube::Error::Api(status) => match status.code {
            401 => Error::PermissionDenied(format!("not authenticated: {}", status.message)),
            403 => Error::PermissionDenied(status.message),
            404 => Error::NotFound {
                kind: target.kind,
                name: target.name.to_string(),
            },
            409 if status.reason == "AlreadyExists" => Error::AlreadyExists {
                kind: target.kind,
                name: target.name.to_string(),
            },
            409 => Error::Conflict(status.message),
            422 => {
                let causes = status
                    .details
                    .iter()
                    .flat_map(|details| details.causes.iter())
                    .map(|cause| {
                        FieldError::new(
                            cause.field.clone(),
                            cause.reason.clone(),
                            cause.message.clone(),
                        )
                    })
                    .collect::<Vec<_>>();
                let errors = if causes.is_empty() {
                    vec![FieldError::new("", status.reason, status.message)]
                } else {
                    causes
                };
                Error::InvalidSpec {
                    kind: target.kind,
                    errors: FieldErrors(errors),
                }
            }
            code => Error::Cluster(ClusterError::answered(code, status.reason, status.message)),
        },
        // No answer: the connection failed or broke, which another try may not.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Error::Cluster(ClusterError::unreachable(error.to_string()))
        }
        // An answer moon cannot read: the same request gets the same answer.
        kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_)
        | kube::Error::LinesCodecMaxLineLengthExceeded => {
            Error::Cluster(ClusterError::moon("Malformed", error.to_string(), false))
        }
        // The request could not be made (credentials, TLS, proxy settings):
        // retrying changes nothing until the settings do.
        other => Error::Cluster(ClusterError::moon("ClientSetup", other.to_string(), false)),
    }
}

/// Whether an error means that the thing is not there.
pub(super) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// The API server's answer behind a watch error, when there was one.
fn watch_answer(error: &watcher::Error) -> Option<&Status> {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::WatchError(status) => Some(status),
        _ => None,
    }
}

/// The server's answer when a watch error is one that retrying cannot cure:
/// not authenticated, permission refused, or no such resource. Everything
/// else (a broken connection, an API server restarting or overloaded, a
/// resourceVersion too old) the watcher's backoff rides out.
pub(super) fn lasting(error: &watcher::Error) -> Option<&Status> {
    watch_answer(error).filter(|status| matches!(status.code, 401 | 403 | 404))
}

/// A watch error as moon's error.
pub(super) fn watch_error(error: watcher::Error, target: Target<'_>) -> Error {
    match error {
        watcher::Error::InitialListFailed(error)
        | watcher::Error::WatchStartFailed(error)
        | watcher::Error::WatchFailed(error) => api_error(error, target),
        watcher::Error::WatchError(status) => api_error(kube::Error::Api(status), target),
        watcher::Error::NoResourceVersion => {
            Error::Cluster(ClusterError::moon("Malformed", error.to_string(), false))
        }
    }
}

/// A dynamic API for a rendered object's kind and namespace.
pub(super) fn api_for(client: &kube::Client, object: &Object) -> Api<DynamicObject> {
    let resource = kube::core::ApiResource {
        group: object.group().to_string(),
        version: object.version().to_string(),
        api_version: object.api_version().to_string(),
        kind: object.kind().to_string(),
        plural: object.plural().to_string(),
    };
    match object.namespace() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Applies a rendered object server-side as moon's one field manager and
/// returns its resourceVersion afterwards. `force` takes over fields another
/// manager set, so that what moon renders is what the cluster holds.
pub(super) async fn apply(
    client: &kube::Client,
    object: &Object,
    target: Target<'_>,
) -> Result<Option<String>> {
    let body = serde_json::to_value(object).expect("Kubernetes objects serialize");
    let params = PatchParams::apply(MANAGER).force();
    let applied = api_for(client, object)
        .patch(object.name(), &params, &Patch::Apply(&body))
        .await
        .map_err(|error| api_error(error, target))?;
    Ok(applied.metadata.resource_version)
}

/// Applies a rendered object as [`apply`] does; whether that changed what
/// it asks for. Objects whose spec the server versions (a `generation`:
/// Deployments, autoscalers, custom resources) are compared by it, since
/// their controllers write their status, and so their resourceVersion, at
/// any moment; others by their resourceVersion.
pub(super) async fn apply_changed(
    client: &kube::Client,
    object: &Object,
    target: Target<'_>,
) -> Result<bool> {
    let api = api_for(client, object);
    let before = api
        .get_opt(object.name())
        .await
        .map_err(|error| api_error(error, target))?;
    let body = serde_json::to_value(object).expect("Kubernetes objects serialize");
    let params = PatchParams::apply(MANAGER).force();
    let after = api
        .patch(object.name(), &params, &Patch::Apply(&body))
        .await
        .map_err(|error| api_error(error, target))?;
    let Some(before) = before else {
        return Ok(true);
    };
    Ok(
        match (before.metadata.generation, after.metadata.generation) {
            (Some(was), Some(is)) => was != is,
            _ => before.metadata.resource_version != after.metadata.resource_version,
        },
    )
}

/// An object's resourceVersion now, `None` when it does not exist.
pub(super) async fn resource_version(
    client: &kube::Client,
    object: &Object,
    target: Target<'_>,
) -> Result<Option<String>> {
    match api_for(client, object).get_opt(object.name()).await {
        Ok(found) => Ok(found.and_then(|found| found.metadata.resource_version)),
        Err(error) => Err(api_error(error, target)),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::response::StatusDetails;

    use super::*;

    const JOB: Target<'static> = Target {
        kind: "job",
        name: "team-b/mnist",
    };

    fn status(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn the_servers_codes_become_moons_errors() {
        let forbidden = "jobs.batch is forbidden: User \"alice\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"team-b\"";
        assert!(matches!(
            api_error(status(403, "Forbidden", forbidden), JOB),
            Error::PermissionDenied(message) if message == forbidden
        ));
        assert!(matches!(
            api_error(status(404, "NotFound", "configmaps \"mnist\" not found"), JOB),
            Error::NotFound { kind: "job", name } if name == "team-b/mnist"
        ));
        assert!(matches!(
            api_error(status(409, "AlreadyExists", "exists"), JOB),
            Error::AlreadyExists { kind: "job", .. }
        ));
        assert!(matches!(
            api_error(status(409, "Conflict", "the object has been modified"), JOB),
            Error::Conflict(message) if message == "the object has been modified"
        ));
        assert!(matches!(
            api_error(status(500, "InternalError", "etcd timed out"), JOB),
            Error::Cluster(error) if error == ClusterError::answered(500, "InternalError", "etcd timed out")
                && error.to_string() == "etcd timed out (HTTP 500, InternalError)"
        ));
    }

    fn cluster_error(error: kube::Error) -> ClusterError {
        match api_error(error, JOB) {
            Error::Cluster(error) => error,
            other => panic!("not a cluster error: {other:?}"),
        }
    }

    #[test]
    fn an_overloaded_or_failing_server_is_worth_another_try_a_refusal_is_not() {
        for (code, reason, retryable) in [
            (429, "TooManyRequests", true),
            (500, "InternalError", true),
            (503, "ServiceUnavailable", true),
            (504, "Timeout", true),
            (501, "NotImplemented", false),
            (400, "BadRequest", false),
        ] {
            let error = cluster_error(status(code, reason, "the server's words"));
            assert_eq!(
                (error.status, error.reason.as_str(), error.retryable),
                (Some(code), reason, retryable),
                "HTTP {code}"
            );
            assert_eq!(error.message, "the server's words");
        }
    }

    #[test]
    fn no_answer_is_worth_another_try_an_unreadable_answer_is_not() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let broken = cluster_error(kube::Error::ReadEvents(refused));
        assert_eq!(
            (broken.status, broken.reason.as_str()),
            (None, "Unreachable")
        );
        assert!(broken.retryable);
        let timed_out = cluster_error(kube::Error::Service("connect timed out".into()));
        assert!(timed_out.retryable);

        let garbled = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let unreadable = cluster_error(kube::Error::SerdeError(garbled));
        assert_eq!(
            (unreadable.status, unreadable.reason.as_str()),
            (None, "Malformed")
        );
        assert!(!unreadable.retryable);
    }

    #[test]
    fn only_refusals_end_a_watch() {
        let watch = |code, reason| watcher::Error::InitialListFailed(status(code, reason, "x"));
        for (code, reason) in [(401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound")] {
            assert_eq!(
                lasting(&watch(code, reason)).map(|s| s.code),
                Some(code),
                "HTTP {code}"
            );
        }
        for (code, reason) in [
            (410, "Expired"),
            (429, "TooManyRequests"),
            (500, "InternalError"),
        ] {
            assert!(lasting(&watch(code, reason)).is_none(), "HTTP {code}");
        }
        let gone = watcher::Error::WatchError(
            Status::failure("too old resource version", "Expired")
                .with_code(410)
                .boxed(),
        );
        assert!(lasting(&gone).is_none());
        let forbidden_midway = watcher::Error::WatchError(
            Status::failure("forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        );
        assert!(matches!(
            watch_error(forbidden_midway, JOB),
            Error::PermissionDenied(message) if message == "forbidden"
        ));
        let dropped = watcher::Error::WatchFailed(kube::Error::ReadEvents(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "eof",
        )));
        assert!(lasting(&dropped).is_none());
        assert!(matches!(
            watch_error(dropped, JOB),
            Error::Cluster(error) if error.retryable
        ));
    }

    #[test]
    fn an_invalid_object_names_the_servers_fields() {
        let details: StatusDetails = serde_json::from_value(serde_json::json!({
            "causes": [{
                "reason": "FieldValueInvalid",
                "message": "Invalid value: \"Bad\": a lowercase RFC 1123 label",
                "field": "metadata.name",
            }],
        }))
        .unwrap();
        let error = kube::Error::Api(
            Status::failure("Job.batch \"Bad\" is invalid", "Invalid")
                .with_code(422)
                .with_details(details)
                .boxed(),
        );
        assert_eq!(
            api_error(error, JOB).to_string(),
            "invalid job: metadata.name: Invalid value: \"Bad\": a lowercase RFC 1123 label"
        );
    }
}
