//! Calico's and Multus' kinds as moon renders them (see the `custom` module): the
//! `projectcalico.org/v3` Tier, GlobalNetworkPolicy and NetworkPolicy, and Multus'
//! NetworkAttachmentDefinition. Their specs come from moon-net's typed policies.

use super::custom::custom_kind;

custom_kind!(
    /// A Calico tier: an ordered group of policies.
    Tier,
    "projectcalico.org",
    "v3",
    "tiers",
    ClusterResourceScope
);

custom_kind!(
    /// A Calico GlobalNetworkPolicy: rules for endpoints of any namespace.
    GlobalNetworkPolicy,
    "projectcalico.org",
    "v3",
    "globalnetworkpolicies",
    ClusterResourceScope
);

custom_kind!(
    /// A Calico NetworkPolicy: rules for endpoints of its namespace, in a tier.
    NetworkPolicy,
    "projectcalico.org",
    "v3",
    "networkpolicies"
);

custom_kind!(
    /// A Multus NetworkAttachmentDefinition: an underlay network pods may join.
    NetworkAttachmentDefinition,
    "k8s.cni.cncf.io",
    "v1",
    "network-attachment-definitions"
);
