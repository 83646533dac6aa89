//! moon-queue: which waiting jobs start, in what order, and why the others
//! wait. Both backends and moon's controller gather a [`State`] (the room,
//! the tenants' quotas and queues, the jobs running and waiting) and carry
//! out the [`Plan`] that [`plan`] returns; nothing here does IO.
//!
//! The rules are in [`plan`](mod@plan)'s documentation: priority, then fair
//! share between queues (dominant resource share over weight), then age;
//! whole jobs only; backfill that never delays a job ahead; preemption of
//! lower-priority preemptible jobs. Every waiting job gets a reason with
//! numbers and a position in its queue.
//!
//! ```
//! use moon_queue::{Capacity, GpuInventory, Limits, Scope, State, Workload, plan};
//! use moon_spec::spec::Demand;
//!
//! let job = |id: u64, cpus: u64| Workload {
//!     id,
//!     tenant: "vision".into(),
//!     queue: "default".into(),
//!     name: format!("job-{id}"),
//!     priority_class: "normal".into(),
//!     priority: 100,
//!     preemptible: false,
//!     submitted: id,
//!     demand: Demand { millicores: cpus * 1000, bytes: 0, gpus: 0 },
//!     gpus: Vec::new(),
//! };
//! let state = State {
//!     capacity: Capacity {
//!         scope: Scope::Machine,
//!         limits: Limits { millicores: Some(4000), ..Limits::default() },
//!         others: Demand::default(),
//!         gpus: GpuInventory::Count,
//!     },
//!     tenants: Default::default(),
//!     running: Vec::new(),
//!     pending: vec![job(1, 3), job(2, 3)],
//! };
//! let plan = plan(&state);
//! assert_eq!(plan.admitted[0].id, 1);
//! assert_eq!(plan.pending[0].message, "machine: cpus 3 of 4 in use, job asks 3");
//! assert_eq!(plan.pending[0].position, 1);
//! ```

pub mod limits;
pub mod model;
pub mod order;
pub mod plan;
mod room;

pub use limits::{Limits, Shortfall, Usage, shortfall};
pub use model::{
    Capacity, GpuInventory, Held, Id, QueueShare, Running, Scope, State, TenantQueues, Workload,
};
pub use plan::{Admission, Pending, Plan, Preemption, Reason, plan};
