//! What kind of object a spec describes, and the `kind` field of each.
//! [`spec_kind`](super::spec_kind) tells a text's kind.
//!
//! A spec names its kind in a `kind` key (`kind: Job`), as Kubernetes
//! manifests do. The key is optional for the kinds that came before it
//! (tenants and jobs), so files written before it still load: without it, a
//! mapping with a key only jobs have (`roles`, `tenant`, `framework`, so
//! that a job missing its roles is still reported as a job) is a job, and
//! any other a tenant. Kinds added later (services, Spark applications,
//! capacity plans) must name themselves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of spec moon reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Kind {
    /// A [`Tenant`](super::Tenant).
    Tenant,
    /// A [`Job`](super::Job).
    Job,
    /// A [`Service`](super::Service).
    Service,
}

impl Kind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [Kind; 3] = [Kind::Tenant, Kind::Job, Kind::Service];

    /// As the `kind` key writes it: `Job`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenant => "Tenant",
            Kind::Job => "Job",
            Kind::Service => "Service",
        }
    }

    /// As errors and commands name it: `job`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Tenant => "tenant",
            Kind::Job => "job",
            Kind::Service => "service",
        }
    }

    /// The kind named `text`, as the `kind` key or a command writes it
    /// (`Job`, `job`).
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| text == kind.as_str() || text == kind.noun())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares the `kind` field of one kind of spec: a type with that one
/// value, so that a spec of another kind is refused at `kind` when parsed
/// as this one, and that writes itself into every serialised spec.
macro_rules! kind_field {
    ($name:ident, $kind:ident) => {
        #[doc = concat!("The `kind` of a ", stringify!($kind), " spec: always `", stringify!($kind), "`.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        pub enum $name {
            #[doc = concat!("`", stringify!($kind), "`.")]
            #[default]
            $kind,
        }
    };
}

kind_field!(JobKind, Job);
kind_field!(TenantKind, Tenant);
kind_field!(ServiceKind, Service);
