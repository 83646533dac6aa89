//! Custom resources that `k8s-openapi` does not know (Fluid's, KEDA's, Calico's, Multus'): structs with moon's
//! metadata and a spec held as JSON. The cluster's CRDs validate the spec's shape; the modules
//! that render each kind fill it.

/// Declares one custom kind: a struct that serializes `apiVersion` and `kind` first, as
/// `k8s-openapi`'s types do, and reads back ignoring them.
macro_rules! custom_kind {
    ($(#[$doc:meta])* $name:ident, $group:literal, $version:literal, $plural:literal) => {
        custom_kind!($(#[$doc])* $name, $group, $version, $plural, NamespaceResourceScope);
    };
    ($(#[$doc:meta])* $name:ident, $group:literal, $version:literal, $plural:literal, $scope:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
        pub struct $name {
            /// The object's metadata.
            pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            /// The object's `spec`, as the CRD's schema describes it.
            pub spec: serde_json::Value,
        }

        impl k8s_openapi::Resource for $name {
            const API_VERSION: &'static str = concat!($group, "/", $version);
            const GROUP: &'static str = $group;
            const KIND: &'static str = stringify!($name);
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::$scope;
        }

        impl k8s_openapi::Metadata for $name {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let mut object = serializer.serialize_struct(stringify!($name), 4)?;
                object.serialize_field(
                    "apiVersion",
                    <Self as k8s_openapi::Resource>::API_VERSION,
                )?;
                object.serialize_field("kind", <Self as k8s_openapi::Resource>::KIND)?;
                object.serialize_field("metadata", &self.metadata)?;
                object.serialize_field("spec", &self.spec)?;
                object.end()
            }
        }
    };
}

pub(crate) use custom_kind;
