//! KEDA's `ScaledObject` (`keda.sh/v1alpha1`), which scales a service's Deployment down to
//! zero replicas and back (see the `custom` module); the `service` module fills it.

use super::custom::custom_kind;

custom_kind!(
    /// A KEDA ScaledObject: the triggers and bounds a Deployment is scaled by, zero included.
    ScaledObject,
    "keda.sh",
    "v1alpha1",
    "scaledobjects"
);
