//! A tenant's network objects that its spec no longer renders: a policy of
//! the isolation it left (Kubernetes for Calico, or back), a service it no
//! longer exposes, an underlay it dropped. Left in place they would keep
//! allowing (or denying) what the tenant's spec no longer says, so they are
//! deleted after each apply.

use k8s_openapi::api::networking::v1 as networking;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::ApiResource;

use super::api::{Target, api_error, is_not_found};
use crate::error::Result;
use moon_spec::kubernetes::{MANAGED_BY_LABEL, MANAGER, Object};

/// The namespaced kinds of a tenant's network, whichever isolation.
fn network_kinds() -> [ApiResource; 3] {
    let custom = |group: &str, version: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    };
    [
        ApiResource::erase::<networking::NetworkPolicy>(&()),
        custom(
            "projectcalico.org",
            "v3",
            "NetworkPolicy",
            "networkpolicies",
        ),
        custom(
            "k8s.cni.cncf.io",
            "v1",
            "NetworkAttachmentDefinition",
            "network-attachment-definitions",
        ),
    ]
}

/// Deletes the network objects moon made in `tenant`'s namespace that
/// `rendered` does not hold; whether it deleted any. A kind the cluster
/// does not serve (no Calico, no Multus) has nothing to prune.
pub(super) async fn prune(
    client: &kube::Client,
    tenant: &str,
    rendered: &[Object],
) -> Result<bool> {
    let target = Target {
        kind: "tenant",
        name: tenant,
    };
    let mut deleted = false;
    for resource in network_kinds() {
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), tenant, &resource);
        let listed = match api
            .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")))
            .await
        {
            Ok(listed) => listed,
            Err(error) if is_not_found(&error) => continue,
            Err(error) => return Err(api_error(error, target)),
        };
        for object in listed.items {
            let name = object.name_any();
            let kept = rendered.iter().any(|o| {
                o.api_version() == resource.api_version
                    && o.kind() == resource.kind
                    && o.name() == name
            });
            if kept {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted = true,
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(api_error(error, target)),
            }
        }
    }
    Ok(deleted)
}
