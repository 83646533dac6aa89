//! Fluid's `Dataset` and `AlluxioRuntime` (`data.fluid.io/v1alpha1`), which
//! `k8s-openapi` does not know (see the `custom` module); the rendering that
//! fills them lives in [`super::storage`].

use super::custom::custom_kind;

custom_kind!(
    /// A Fluid Dataset: where data comes from (its mounts).
    Dataset,
    "data.fluid.io",
    "v1alpha1",
    "datasets"
);
custom_kind!(
    /// A Fluid AlluxioRuntime: the Alluxio cache that serves a Dataset of the same name.
    AlluxioRuntime,
    "data.fluid.io",
    "v1alpha1",
    "alluxioruntimes"
);
