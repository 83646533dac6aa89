//! The objects rendering returns, one enum over the kinds moon makes, and the
//! YAML stream they print as.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v2 as autoscaling;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};

use super::fluid::{AlluxioRuntime, Dataset};
use super::keda::ScaledObject;
use super::network_kinds as calico;
use serde::{Serialize, Serializer};

/// Declares [`Object`] and what it answers for every kind at once, so that a
/// new kind cannot be added to one place and forgotten in another.
macro_rules! objects {
    ($($variant:ident($ty:ty),)*) => {
        /// One Kubernetes object moon renders, typed.
        ///
        /// Serializes as the object itself, `apiVersion` and `kind` first.
        /// Boxed, since a pod template is kilobytes and a Namespace is not.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs)]
        pub enum Object {
            $($variant(Box<$ty>),)*
        }

        impl Object {
            /// `apiVersion`: `v1`, `batch/v1`, ...
            pub fn api_version(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => <$ty as Resource>::API_VERSION,)*
                }
            }

            /// `kind`: `Namespace`, `Job`, ...
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => <$ty as Resource>::KIND,)*
                }
            }

            /// The API group: `""` for the core group, `batch`, ...
            pub fn group(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => <$ty as Resource>::GROUP,)*
                }
            }

            /// The API version within the group: `v1`.
            pub fn version(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => <$ty as Resource>::VERSION,)*
                }
            }

            /// The kind's plural in URLs: `namespaces`, `jobs`, ...
            pub fn plural(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => <$ty as Resource>::URL_PATH_SEGMENT,)*
                }
            }

            /// The object's metadata.
            pub fn metadata(&self) -> &ObjectMeta {
                match self {
                    $(Object::$variant(object) => object.metadata(),)*
                }
            }

            /// The object's metadata, to change.
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(Object::$variant(object) => object.metadata_mut(),)*
                }
            }
        }

        impl Serialize for Object {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Object::$variant(object) => object.serialize(serializer),)*
                }
            }
        }

        $(
            impl From<$ty> for Object {
                fn from(object: $ty) -> Self {
                    Object::$variant(Box::new(object))
                }
            }
        )*
    };
}

objects! {
    Namespace(core::Namespace),
    ResourceQuota(core::ResourceQuota),
    LimitRange(core::LimitRange),
    ServiceAccount(core::ServiceAccount),
    Role(rbac::Role),
    RoleBinding(rbac::RoleBinding),
    NetworkPolicy(networking::NetworkPolicy),
    ConfigMap(core::ConfigMap),
    Service(core::Service),
    Job(batch::Job),
    PersistentVolume(core::PersistentVolume),
    PersistentVolumeClaim(core::PersistentVolumeClaim),
    Dataset(Dataset),
    AlluxioRuntime(AlluxioRuntime),
    Deployment(apps::Deployment),
    PodDisruptionBudget(policy::PodDisruptionBudget),
    HorizontalPodAutoscaler(autoscaling::HorizontalPodAutoscaler),
    ScaledObject(ScaledObject),
    Ingress(networking::Ingress),
    CalicoTier(calico::Tier),
    CalicoGlobalNetworkPolicy(calico::GlobalNetworkPolicy),
    CalicoNetworkPolicy(calico::NetworkPolicy),
    NetworkAttachmentDefinition(calico::NetworkAttachmentDefinition),
}

impl Object {
    /// The object's name.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The object's namespace; `None` for a Namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }
}

/// The objects as one YAML stream for `kubectl apply -f -`: each document
/// starts with `---`, then `apiVersion` and `kind`; documents keep the order
/// given and keys within them a fixed order, so the same objects always print
/// the same text.
pub fn to_yaml(objects: &[Object]) -> String {
    let mut stream = String::new();
    for object in objects {
        stream.push_str("---\n");
        // Every map in these types is keyed by strings, the one thing that
        // could make YAML serialization fail.
        let document = serde_yaml_ng::to_string(object).expect("Kubernetes objects serialize");
        stream.push_str(&document);
    }
    stream
}

/// The objects as one JSON document, a `v1` `List` (`kubectl apply -f`
/// takes it), compact: for programs and pipelines that read JSON.
pub fn to_json(objects: &[Object]) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct List<'a> {
        api_version: &'static str,
        kind: &'static str,
        items: &'a [Object],
    }
    serde_json::to_string(&List {
        api_version: "v1",
        kind: "List",
        items: objects,
    })
    .expect("Kubernetes objects serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_answer_their_kind_and_name() {
        let object = Object::from(core::ConfigMap {
            metadata: ObjectMeta {
                name: Some("mnist".into()),
                namespace: Some("vision".into()),
                ..ObjectMeta::default()
            },
            ..core::ConfigMap::default()
        });
        assert_eq!(object.api_version(), "v1");
        assert_eq!(object.kind(), "ConfigMap");
        assert_eq!(object.name(), "mnist");
        assert_eq!(object.namespace(), Some("vision"));
        assert_eq!(
            to_yaml(&[object]),
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mnist\n  namespace: vision\n"
        );
        assert_eq!(to_yaml(&[]), "");
    }
}
