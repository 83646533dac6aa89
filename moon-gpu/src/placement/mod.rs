//! Deterministic, explainable GPU placement: pure functions from an
//! inventory and some [`GpuSelector`]s to a choice, or to a [`NoFit`] that
//! says with numbers why there was none.
//!
//! - [`machine::place`]: a job's replicas onto the devices of one machine,
//!   all or nothing, each replica given the device UUIDs it gets.
//! - [`cluster::place`]: pods, in order, onto the nodes of a cluster, as GPU
//!   Feature Discovery labels describe them, bin-packed.
//!
//! Both run the same filters in the same order ([`Filter`]), and a rejection
//! counts every candidate under the first filter it fails, so that the counts
//! of a [`NoFit`] add up to the candidates there were.
//!
//! ```
//! use moon_gpu::placement::{NodeGpus, cluster};
//!
//! let node = NodeGpus {
//!     name: "gpu-1".into(),
//!     model: "NVIDIA-H100-80GB-HBM3".into(),
//!     memory_mib: 81_559,
//!     compute_capability: None,
//!     gpus_total: 8,
//!     gpus_free: 8,
//!     healthy: true,
//! };
//! let pods = ["H100:2".parse()?, "A100:1".parse()?];
//! let placed = cluster::place(&[node], &pods);
//! assert_eq!(placed[0], Ok(0));
//! assert_eq!(
//!     placed[1].as_ref().unwrap_err().to_string(),
//!     "0/1 nodes fit A100:1: 1 lacks model A100"
//! );
//! # Ok::<(), moon_gpu::Error>(())
//! ```

pub mod cluster;
pub mod machine;

use std::fmt;

use crate::selector::{ComputeCapability, GpuSelector};

pub use cluster::NodeGpus;
pub use machine::{MachineGpu, ReplicaDevices};

/// The filters a device or node goes through, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    /// Not one of the models asked for.
    Model,
    /// Less memory per GPU than asked for.
    Memory,
    /// A lower (or unknown) compute capability than asked for.
    Capability,
    /// Unhealthy: never given out.
    Health,
    /// On a machine, a device another job holds; on a cluster, a node with
    /// fewer free GPUs than the pod asks for.
    Free,
    /// On a machine, a device given to another replica of the same job.
    Job,
}

/// What could not be placed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A replica of a job on one machine; the candidates are devices.
    Machine {
        /// The replica's name (`worker-1`).
        replica: String,
    },
    /// A pod on a cluster; the candidates are nodes.
    Cluster,
}

/// Why a selector could not be served: the candidates there were, and how
/// many of them each filter turned away.
///
/// ```text
/// worker-1 asks H100:2: 8 devices, 3 are another model, 1 unhealthy, 3 in use, 1 left
/// 0/5000 nodes fit H100:2: 3000 lack model H100, 100 unhealthy, 1900 have fewer than 2 free GPUs
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoFit {
    /// A replica on a machine, or a pod on a cluster.
    pub scope: Scope,
    /// What it asked for.
    pub selector: GpuSelector,
    /// The devices on the machine, or the nodes in the cluster.
    pub candidates: usize,
    /// How many candidates each filter turned away, in filter order, each
    /// counted under the first filter it failed; filters that turned none
    /// away are left out.
    pub passed_over: Vec<(Filter, usize)>,
    /// The candidates that passed every filter: on a machine, devices that
    /// would do but fewer than asked for; on a cluster always 0.
    pub left: usize,
}

impl NoFit {
    /// How many candidates `filter` turned away.
    pub fn passed_over_by(&self, filter: Filter) -> usize {
        self.passed_over
            .iter()
            .find(|(each, _)| *each == filter)
            .map_or(0, |(_, count)| *count)
    }

    fn reason(&self, filter: Filter, count: usize) -> String {
        let one = count == 1;
        let on_machine = matches!(self.scope, Scope::Machine { .. });
        let have = if one { "has" } else { "have" };
        match filter {
            Filter::Model if on_machine => {
                format!("{count} {} another model", if one { "is" } else { "are" })
            }
            Filter::Model => format!(
                "{count} {} model {}",
                if one { "lacks" } else { "lack" },
                self.selector.models.join("|")
            ),
            Filter::Memory => format!(
                "{count} {have} {}under {}",
                if on_machine { "" } else { "GPUs " },
                memory_text(&self.selector)
            ),
            Filter::Capability => format!(
                "{count} below compute capability {}",
                self.selector
                    .min_compute_capability
                    .map_or_else(String::new, |cc| cc.to_string())
            ),
            Filter::Health => format!("{count} unhealthy"),
            Filter::Free if on_machine => format!("{count} in use"),
            Filter::Free if self.selector.count == 1 => format!("{count} {have} no free GPU"),
            Filter::Free => format!(
                "{count} {have} fewer than {} free GPUs",
                self.selector.count
            ),
            Filter::Job => format!("{count} taken by other replicas of this job"),
        }
    }
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = match &self.scope {
            Scope::Machine { replica } => {
                write!(f, "{replica} asks {}: ", self.selector)?;
                vec![format!(
                    "{} device{}",
                    self.candidates,
                    if self.candidates == 1 { "" } else { "s" }
                )]
            }
            Scope::Cluster => {
                write!(
                    f,
                    "{}/{} nodes fit {}",
                    self.left, self.candidates, self.selector
                )?;
                Vec::new()
            }
        };
        parts.extend(
            self.passed_over
                .iter()
                .map(|&(filter, count)| self.reason(filter, count)),
        );
        if let Scope::Machine { .. } = self.scope {
            parts.push(format!("{} left", self.left));
        } else if !parts.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&parts.join(", "))
    }
}

impl std::error::Error for NoFit {}

/// The memory constraint as the selector was written (`80GB`, `40GiB`).
fn memory_text(selector: &GpuSelector) -> String {
    let text = selector.to_string();
    let constraints = text
        .rsplit_once(':')
        .map_or("", |(constraints, _)| constraints);
    constraints
        .split(',')
        .find_map(|term| term.strip_suffix("B+"))
        .map_or_else(
            || format!("{} MiB", selector.min_memory_mib.unwrap_or(0)),
            |amount| format!("{amount}B"),
        )
}

/// A device, or a node's GPUs, as the filters see it.
trait Candidate {
    /// Its model, memory per GPU in MiB, compute capability and health.
    fn description(&self) -> (&str, u64, Option<ComputeCapability>, bool);

    /// The first of the filters before [`Filter::Free`] that it fails, or
    /// `None` when it passes them all.
    fn first_failed(&self, selector: &GpuSelector) -> Option<Filter> {
        let (model, memory_mib, capability, healthy) = self.description();
        if !selector.accepts_model(model) {
            Some(Filter::Model)
        } else if selector
            .min_memory_mib
            .is_some_and(|least| memory_mib < least)
        {
            Some(Filter::Memory)
        } else if !selector.accepts(model, memory_mib, capability) {
            Some(Filter::Capability)
        } else if !healthy {
            Some(Filter::Health)
        } else {
            None
        }
    }
}

/// Sums counts per filter, in filter order, leaving out those that counted
/// nothing.
fn tally(counts: impl IntoIterator<Item = (Filter, usize)>) -> Vec<(Filter, usize)> {
    let mut tallied: Vec<(Filter, usize)> = Vec::new();
    for (filter, count) in counts.into_iter().filter(|(_, count)| *count > 0) {
        match tallied.iter_mut().find(|(each, _)| *each == filter) {
            Some((_, sum)) => *sum += count,
            None => tallied.push((filter, count)),
        }
    }
    tallied.sort_by_key(|(filter, _)| *filter);
    tallied
}
