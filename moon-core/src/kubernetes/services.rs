//! Inference services on a cluster: what [`render_service`] gives, applied
//! server-side as moon's field manager; scaled through the Deployment's scale
//! subresource (as `kubectl scale` and the HorizontalPodAutoscaler do); read
//! back from the Deployment, its pods and its Service's EndpointSlices (see
//! [`derive_service`]). Every object of a service carries its name, so one
//! name finds them all.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v2 as autoscaling;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::policy::v1 as policy;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::json;

use super::api::{self, Target, api_error, is_not_found};
use super::registry::SLICE_SERVICE_LABEL;
use crate::backend::ApplyOutcome;
use crate::error::{Error, Result};
use crate::spec::{MAX_REPLICAS, Service, validate_service};
use crate::status::ServiceStatus;
use moon_spec::kubernetes::{
    MANAGER, Object, ObservedService, RenderOptions, SERVICE_LABEL, derive_service, render_service,
};

/// The kinds a service may have beyond its Deployment and Service, which a
/// changed spec may no longer render (an autoscaler dropped, an Ingress no
/// longer asked for): pruned when they are not rendered.
fn optional_kinds() -> [ApiResource; 4] {
    [
        ApiResource::erase::<policy::PodDisruptionBudget>(&()),
        ApiResource::erase::<autoscaling::HorizontalPodAutoscaler>(&()),
        ApiResource::erase::<networking::Ingress>(&()),
        ApiResource {
            group: "keda.sh".into(),
            version: "v1alpha1".into(),
            api_version: "keda.sh/v1alpha1".into(),
            kind: "ScaledObject".into(),
            plural: "scaledobjects".into(),
        },
    ]
}

fn target(key: &str) -> Target<'_> {
    Target {
        kind: "service",
        name: key,
    }
}

/// Applies `service` as `options` render it; created when its Deployment
/// did not exist, updated when any object changed.
pub(super) async fn apply(
    client: &kube::Client,
    options: &RenderOptions,
    service: &Service,
) -> Result<ApplyOutcome> {
    validate_service(service)?;
    if !service.volumes.is_empty() {
        return Err(crate::backend::not_supported(
            "kubernetes",
            "service volumes yet",
        ));
    }
    let key = format!("{}/{}", service.tenant, service.name);
    let objects = render_service(service, options)?;
    super::secret::check_referenced(client, &service.replica_job(service.replicas)).await?;
    let (mut existed, mut changed) = (true, false);
    for object in &objects {
        if matches!(object, Object::Deployment(_)) {
            existed = api::resource_version(client, object, target(&key))
                .await?
                .is_some();
        }
        changed |= api::apply_changed(client, object, target(&key)).await?;
    }
    for resource in optional_kinds() {
        if !objects.iter().any(|object| object.kind() == resource.kind) {
            changed |=
                delete_named(client, &service.tenant, &service.name, &resource, &key).await?;
        }
    }
    Ok(match (existed, changed) {
        (false, _) => ApplyOutcome::Created,
        (true, true) => ApplyOutcome::Updated,
        (true, false) => ApplyOutcome::Unchanged,
    })
}

/// The service's status now.
pub(super) async fn get(client: &kube::Client, tenant: &str, name: &str) -> Result<ServiceStatus> {
    let key = format!("{tenant}/{name}");
    let deployment = Api::<apps::Deployment>::namespaced(client.clone(), tenant)
        .get_opt(name)
        .await
        .map_err(|error| api_error(error, target(&key)))?
        .filter(|found| is_service(found, name))
        .ok_or_else(|| Error::NotFound {
            kind: "service",
            name: key.clone(),
        })?;
    observe(client, deployment, &key).await
}

/// Every service of `tenant`, or of every tenant.
pub(super) async fn list(
    client: &kube::Client,
    tenant: Option<&str>,
) -> Result<Vec<ServiceStatus>> {
    let key = tenant.unwrap_or("*");
    let api = match tenant {
        Some(tenant) => Api::<apps::Deployment>::namespaced(client.clone(), tenant),
        None => Api::<apps::Deployment>::all(client.clone()),
    };
    let deployments = api
        .list(&ListParams::default().labels(SERVICE_LABEL))
        .await
        .map_err(|error| api_error(error, target(key)))?;
    let mut services = Vec::new();
    for deployment in deployments.items {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        if is_service(&deployment, &name) {
            services.push(observe(client, deployment, key).await?);
        }
    }
    services.sort_by(|a, b| {
        (a.created_ms, &a.tenant, &a.name).cmp(&(b.created_ms, &b.tenant, &b.name))
    });
    Ok(services)
}

/// Sets the replica count through the Deployment's scale subresource.
pub(super) async fn scale(
    client: &kube::Client,
    tenant: &str,
    name: &str,
    replicas: u32,
) -> Result<()> {
    let key = format!("{tenant}/{name}");
    if replicas > MAX_REPLICAS {
        return Err(Error::invalid(
            "service",
            "replicas",
            "range",
            format!("must be at most {MAX_REPLICAS}, got {replicas}"),
        ));
    }
    get(client, tenant, name).await?;
    let params = PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..PatchParams::default()
    };
    Api::<apps::Deployment>::namespaced(client.clone(), tenant)
        .patch_scale(
            name,
            &params,
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .map_err(|error| api_error(error, target(&key)))?;
    Ok(())
}

/// Deletes every object of the service; its pods go with its Deployment.
pub(super) async fn delete(client: &kube::Client, tenant: &str, name: &str) -> Result<()> {
    let key = format!("{tenant}/{name}");
    get(client, tenant, name).await?;
    let resources = [
        ApiResource::erase::<apps::Deployment>(&()),
        ApiResource::erase::<core::Service>(&()),
    ];
    for resource in resources.iter().chain(optional_kinds().iter()) {
        delete_named(client, tenant, name, resource, &key).await?;
    }
    Ok(())
}

/// Deletes the object of `resource` named `name`; whether there was one.
async fn delete_named(
    client: &kube::Client,
    tenant: &str,
    name: &str,
    resource: &ApiResource,
    key: &str,
) -> Result<bool> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), tenant, resource);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        // Gone already, or a kind this cluster does not serve (no KEDA).
        Err(error) if is_not_found(&error) => Ok(false),
        Err(error) => Err(api_error(error, target(key))),
    }
}

/// Whether a Deployment is the one moon made for service `name`.
fn is_service(deployment: &apps::Deployment, name: &str) -> bool {
    deployment
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_LABEL))
        .is_some_and(|label| label == name)
}

/// Reads the pods and EndpointSlices of the service `deployment` runs.
async fn observe(
    client: &kube::Client,
    deployment: apps::Deployment,
    key: &str,
) -> Result<ServiceStatus> {
    let tenant = deployment.metadata.namespace.clone().unwrap_or_default();
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let (pods, slices) = futures::try_join!(
        async {
            Api::<core::Pod>::namespaced(client.clone(), &tenant)
                .list(&ListParams::default().labels(&format!("{SERVICE_LABEL}={name}")))
                .await
                .map_err(|error| api_error(error, target(key)))
        },
        async {
            Api::<discovery::EndpointSlice>::namespaced(client.clone(), &tenant)
                .list(&ListParams::default().labels(&format!("{SLICE_SERVICE_LABEL}={name}")))
                .await
                .map_err(|error| api_error(error, target(key)))
        },
    )?;
    Ok(derive_service(&ObservedService {
        deployment,
        pods: pods.items,
        slices: slices.items,
    }))
}
