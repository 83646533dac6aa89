//! A tenant secret as a Kubernetes object: an Opaque Secret in the tenant's
//! namespace, labelled as moon's, which replicas get through
//! `envFrom: [{secretRef: {name}}]`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1 as core;

use super::meta::{TENANT_LABEL, labels, meta};
use crate::secret::SecretData;

/// The Secret that holds `data` as tenant `tenant`'s secret `name`.
pub fn render_secret(tenant: &str, name: &str, data: &SecretData) -> core::Secret {
    core::Secret {
        metadata: meta(
            name,
            Some(tenant),
            &labels(&BTreeMap::new(), &[(TENANT_LABEL, tenant)]),
        ),
        type_: Some("Opaque".to_string()),
        data: Some(
            data.expose()
                .iter()
                .map(|(key, value)| (key.clone(), ByteString(value.as_bytes().to_vec())))
                .collect(),
        ),
        ..core::Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::meta::{MANAGED_BY_LABEL, MANAGER};

    #[test]
    fn a_secret_is_opaque_labelled_and_holds_the_bytes() {
        let data = SecretData::new(BTreeMap::from([(
            "TOKEN".to_string(),
            "s3cr3t".to_string(),
        )]));
        let secret = render_secret("vision", "wandb", &data);
        let json = serde_json::to_value(&secret).unwrap();
        assert_eq!(json["kind"], "Secret");
        assert_eq!(json["type"], "Opaque");
        assert_eq!(json["metadata"]["namespace"], "vision");
        assert_eq!(json["metadata"]["labels"][MANAGED_BY_LABEL], MANAGER);
        // Base64 on the wire, as the API takes `data`.
        assert_eq!(json["data"]["TOKEN"], "czNjcjN0");
    }
}
