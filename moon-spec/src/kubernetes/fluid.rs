//! Fluid's `Dataset` and `AlluxioRuntime` (`data.fluid.io/v1alpha1`), which
//! `k8s-openapi` does not know: custom resources with moon's metadata and a
//! spec held as JSON. The cluster's CRDs validate the spec's shape; the
//! rendering that fills it lives in [`super::storage`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, NamespaceResourceScope, Resource};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// Declares one Fluid kind: a struct that serializes `apiVersion` and `kind`
/// first, as `k8s-openapi`'s types do, and reads back ignoring them.
macro_rules! fluid_kind {
    ($(#[$doc:meta])* $name:ident, $plural:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default, Deserialize)]
        pub struct $name {
            /// The object's metadata.
            pub metadata: ObjectMeta,
            /// The object's `spec`, as the CRD's schema describes it.
            pub spec: serde_json::Value,
        }

        impl Resource for $name {
            const API_VERSION: &'static str = "data.fluid.io/v1alpha1";
            const GROUP: &'static str = "data.fluid.io";
            const KIND: &'static str = stringify!($name);
            const VERSION: &'static str = "v1alpha1";
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = NamespaceResourceScope;
        }

        impl Metadata for $name {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut object = serializer.serialize_struct(stringify!($name), 4)?;
                object.serialize_field("apiVersion", <Self as Resource>::API_VERSION)?;
                object.serialize_field("kind", <Self as Resource>::KIND)?;
                object.serialize_field("metadata", &self.metadata)?;
                object.serialize_field("spec", &self.spec)?;
                object.end()
            }
        }
    };
}

fluid_kind!(
    /// A Fluid Dataset: where data comes from (its mounts).
    Dataset,
    "datasets"
);
fluid_kind!(
    /// A Fluid AlluxioRuntime: the Alluxio cache that serves a Dataset of the same name.
    AlluxioRuntime,
    "alluxioruntimes"
);
