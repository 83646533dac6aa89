//! A job's replicas onto the GPUs of one machine, all or nothing.
//!
//! Devices that are unhealthy or in use by another job are never given out.
//! The free ones are grouped into *kinds* (same model, memory and compute
//! capability), ordered smallest first: by memory, then compute capability,
//! then model name. The replicas are served in the order given, and each
//! takes:
//!
//! 1. all its devices from the smallest kind that can serve it alone, so that
//!    bigger devices stay free for replicas that need them; failing that,
//! 2. as many as it can from each kind in turn, smallest first;
//!
//! in both cases only as many as leave enough for the replicas after it, so a
//! job that fits in any way is placed (this is checked exactly, as a flow of
//! devices from kinds to replicas). Within a kind a replica takes devices
//! next to each other by index, which NVML numbers in PCI bus order, so that
//! they tend to share a PCIe switch: the run of devices with the smallest
//! span of indexes, among gap-free runs the one in the shortest stretch of
//! free devices (so that longer stretches stay whole), then the lowest index.
//!
//! A replica that asks for no GPUs gets none. When the job does not fit, the
//! [`NoFit`] names the first replica that cannot be served together with the
//! ones before it, and counts the machine's devices by the first filter each
//! fails for that replica.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Candidate, Filter, NoFit, Scope, tally};
use crate::selector::{ComputeCapability, GpuSelector};

/// One GPU of the machine, as placement needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineGpu {
    /// NVML's UUID (`GPU-5e3b...`), what `CUDA_VISIBLE_DEVICES` is given.
    pub uuid: String,
    /// NVML's index, in PCI bus order.
    pub index: u32,
    /// The product name (`NVIDIA H100 80GB HBM3`).
    pub model: String,
    /// Total memory, in MiB.
    pub memory_mib: u64,
    /// The CUDA compute capability, when known.
    pub compute_capability: Option<ComputeCapability>,
    /// Whether it may be given out at all.
    pub healthy: bool,
    /// Whether another job holds it.
    pub in_use: bool,
}

impl Candidate for MachineGpu {
    fn description(&self) -> (&str, u64, Option<ComputeCapability>, bool) {
        (
            &self.model,
            self.memory_mib,
            self.compute_capability,
            self.healthy,
        )
    }
}

/// The devices one replica gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaDevices {
    /// The replica's name, as it was asked for.
    pub replica: String,
    /// The UUIDs of its devices, in index order; empty for a replica that
    /// asked for no GPUs.
    pub uuids: Vec<String>,
}

/// Free devices of one model, memory and compute capability.
struct Kind {
    /// Positions in the machine's device list, in index order.
    devices: Vec<usize>,
}

/// Places every replica of a job on this machine's devices, or none of them.
///
/// `replicas` pairs each replica's name with what it asks for; the answer
/// lists them in the same order. See the module documentation for the rule.
pub fn place<S: AsRef<str>>(
    devices: &[MachineGpu],
    replicas: &[(S, GpuSelector)],
) -> Result<Vec<ReplicaDevices>, NoFit> {
    let mut kinds = free_kinds(devices);
    let needs: Vec<u32> = replicas
        .iter()
        .map(|(_, selector)| selector.count)
        .collect();
    let accepted: Vec<Vec<bool>> = replicas
        .iter()
        .map(|(_, selector)| {
            kinds
                .iter()
                .map(|kind| {
                    let device = &devices[kind.devices[0]];
                    selector.accepts(&device.model, device.memory_mib, device.compute_capability)
                })
                .collect()
        })
        .collect();
    let capacity: Vec<u32> = kinds.iter().map(|kind| len_u32(&kind.devices)).collect();

    // The first replica that cannot be served together with those before it.
    let unserved = (0..replicas.len()).find(|&last| {
        let demands: Vec<(u32, &[bool])> = (0..=last)
            .map(|each| (needs[each], accepted[each].as_slice()))
            .collect();
        !feasible(&demands, &capacity)
    });
    let served = unserved.unwrap_or(replicas.len());
    let split = split(&needs[..served], &accepted[..served], capacity);

    let mut given: Vec<Vec<usize>> = vec![Vec::new(); served];
    for (replica, counts) in split.iter().enumerate() {
        for (kind, &count) in counts.iter().enumerate() {
            let taken = take_adjacent(devices, &mut kinds[kind].devices, count as usize);
            given[replica].extend(taken);
        }
        given[replica].sort_by_key(|&at| (devices[at].index, &devices[at].uuid));
    }

    if let Some(replica) = unserved {
        let (name, selector) = &replicas[replica];
        let taken: Vec<bool> = {
            let mut taken = vec![false; devices.len()];
            given.iter().flatten().for_each(|&at| taken[at] = true);
            taken
        };
        let verdicts: Vec<Option<Filter>> = devices
            .iter()
            .zip(&taken)
            .map(|(device, &taken)| {
                device
                    .first_failed(selector)
                    .or(device.in_use.then_some(Filter::Free))
                    .or(taken.then_some(Filter::Job))
            })
            .collect();
        return Err(NoFit {
            scope: Scope::Machine {
                replica: name.as_ref().to_string(),
            },
            selector: selector.clone(),
            candidates: devices.len(),
            passed_over: tally(verdicts.iter().flatten().map(|&filter| (filter, 1))),
            left: verdicts.iter().filter(|verdict| verdict.is_none()).count(),
        });
    }

    Ok(replicas
        .iter()
        .zip(given)
        .map(|((name, _), positions)| ReplicaDevices {
            replica: name.as_ref().to_string(),
            uuids: positions
                .into_iter()
                .map(|at| devices[at].uuid.clone())
                .collect(),
        })
        .collect())
}

/// The healthy devices no job holds, grouped into kinds, smallest first.
fn free_kinds(devices: &[MachineGpu]) -> Vec<Kind> {
    let mut free: Vec<usize> = (0..devices.len())
        .filter(|&at| devices[at].healthy && !devices[at].in_use)
        .collect();
    let key = |at: &usize| {
        let device = &devices[*at];
        (
            device.memory_mib,
            device.compute_capability,
            device.model.as_str(),
        )
    };
    free.sort_by(|a, b| {
        key(a).cmp(&key(b)).then_with(|| {
            (devices[*a].index, &devices[*a].uuid).cmp(&(devices[*b].index, &devices[*b].uuid))
        })
    });
    let mut kinds: Vec<Kind> = Vec::new();
    for at in free {
        match kinds.last_mut() {
            Some(kind) if key(&kind.devices[0]) == key(&at) => kind.devices.push(at),
            _ => kinds.push(Kind { devices: vec![at] }),
        }
    }
    kinds
}

fn len_u32<T>(items: &[T]) -> u32 {
    u32::try_from(items.len()).unwrap_or(u32::MAX)
}

/// How many devices of each kind each replica takes, by the module's rule.
/// The replicas must be servable together.
fn split(needs: &[u32], accepted: &[Vec<bool>], mut capacity: Vec<u32>) -> Vec<Vec<u32>> {
    let kinds = capacity.len();
    let mut split = vec![vec![0; kinds]; needs.len()];
    for replica in 0..needs.len() {
        let later: Vec<(u32, &[bool])> = (replica + 1..needs.len())
            .map(|each| (needs[each], accepted[each].as_slice()))
            .collect();
        let need = needs[replica];
        if need == 0 {
            continue;
        }
        // Whether taking `count` of `kind` leaves enough for the replicas
        // after this one, and for the `still` devices it needs from `after`.
        let leaves_enough =
            |capacity: &[u32], kind: usize, count: u32, still: u32, after: &[bool]| {
                let mut rest = capacity.to_vec();
                rest[kind] -= count;
                let mut demands = later.clone();
                demands.push((still, after));
                feasible(&demands, &rest)
            };
        let nothing = vec![false; kinds];
        let alone = (0..kinds).find(|&kind| {
            accepted[replica][kind]
                && capacity[kind] >= need
                && leaves_enough(&capacity, kind, need, 0, &nothing)
        });
        if let Some(kind) = alone {
            split[replica][kind] = need;
            capacity[kind] -= need;
            continue;
        }
        let mut left = need;
        for kind in (0..kinds).filter(|&kind| accepted[replica][kind]) {
            let after: Vec<bool> = (0..kinds)
                .map(|each| each > kind && accepted[replica][each])
                .collect();
            let most = (0..=left.min(capacity[kind]))
                .rev()
                .find(|&count| leaves_enough(&capacity, kind, count, left - count, &after))
                .unwrap_or(0);
            split[replica][kind] = most;
            capacity[kind] -= most;
            left -= most;
        }
    }
    split
}

/// Whether every demand (a count, and the kinds that will do) can be met
/// from the kinds' capacities at once: a maximum flow from demands to kinds.
fn feasible(demands: &[(u32, &[bool])], capacity: &[u32]) -> bool {
    let wanted: u64 = demands.iter().map(|(count, _)| u64::from(*count)).sum();
    if wanted > capacity.iter().map(|&count| u64::from(count)).sum() {
        return false;
    }
    // Nodes: the source, the demands, the kinds, the sink.
    let (source, sink) = (0, demands.len() + capacity.len() + 1);
    let kind_node = |kind: usize| demands.len() + 1 + kind;
    let mut residual = vec![vec![0u32; sink + 1]; sink + 1];
    for (at, (count, accepted)) in demands.iter().enumerate() {
        residual[source][at + 1] = *count;
        for kind in (0..capacity.len()).filter(|&kind| accepted[kind]) {
            residual[at + 1][kind_node(kind)] = *count;
        }
    }
    for (kind, &count) in capacity.iter().enumerate() {
        residual[kind_node(kind)][sink] = count;
    }
    let mut flow = 0u64;
    loop {
        let mut previous = vec![usize::MAX; sink + 1];
        previous[source] = source;
        let mut queue = VecDeque::from([source]);
        while let Some(node) = queue.pop_front() {
            for next in 0..=sink {
                if residual[node][next] > 0 && previous[next] == usize::MAX {
                    previous[next] = node;
                    queue.push_back(next);
                }
            }
        }
        if previous[sink] == usize::MAX {
            return flow == wanted;
        }
        let mut bottleneck = u32::MAX;
        let mut node = sink;
        while node != source {
            bottleneck = bottleneck.min(residual[previous[node]][node]);
            node = previous[node];
        }
        let mut node = sink;
        while node != source {
            residual[previous[node]][node] -= bottleneck;
            residual[node][previous[node]] += bottleneck;
            node = previous[node];
        }
        flow += u64::from(bottleneck);
    }
}

/// Removes `count` devices from `free` (positions in index order) and returns
/// them: the run with the smallest span of indexes; among gap-free runs the
/// one in the shortest stretch of consecutive indexes; then the lowest index.
fn take_adjacent(devices: &[MachineGpu], free: &mut Vec<usize>, count: usize) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let index = |at: usize| u64::from(devices[free[at]].index);
    // The length of the stretch of consecutive indexes each position is in.
    let mut stretch = vec![0usize; free.len()];
    let mut start = 0;
    for end in 1..=free.len() {
        if end == free.len() || index(end) != index(end - 1) + 1 {
            stretch[start..end].fill(end - start);
            start = end;
        }
    }
    let best = (0..=free.len() - count)
        .min_by_key(|&first| {
            let span = index(first + count - 1) - index(first);
            let gap_free = span + 1 == count as u64;
            (span, if gap_free { stretch[first] } else { 0 }, first)
        })
        .unwrap_or(0);
    free.drain(best..best + count).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H100: (&str, u64, u32) = ("NVIDIA H100 80GB HBM3", 81_559, 9);
    const A100: (&str, u64, u32) = ("NVIDIA A100-SXM4-80GB", 81_920, 8);
    const L4: (&str, u64, u32) = ("NVIDIA L4", 23_034, 8);

    /// Devices numbered from 0, of the kinds given.
    fn machine(kinds: &[(&str, u64, u32)]) -> Vec<MachineGpu> {
        kinds
            .iter()
            .enumerate()
            .map(|(index, &(model, memory_mib, major))| MachineGpu {
                uuid: format!("GPU-{index}"),
                index: index as u32,
                model: model.to_string(),
                memory_mib,
                compute_capability: Some(ComputeCapability {
                    major,
                    minor: if model == L4.0 { 9 } else { 0 },
                }),
                healthy: true,
                in_use: false,
            })
            .collect()
    }

    fn job(replicas: &[(&'static str, &str)]) -> Vec<(&'static str, GpuSelector)> {
        replicas
            .iter()
            .map(|&(name, selector)| (name, selector.parse().unwrap()))
            .collect()
    }

    /// Each replica's device indexes, or the explanation.
    fn indexes(
        devices: &[MachineGpu],
        replicas: &[(&'static str, &str)],
    ) -> Result<Vec<Vec<u32>>, String> {
        let placed = place(devices, &job(replicas)).map_err(|no_fit| no_fit.to_string())?;
        Ok(placed
            .iter()
            .map(|replica| {
                replica
                    .uuids
                    .iter()
                    .map(|uuid| devices.iter().find(|d| &d.uuid == uuid).unwrap().index)
                    .collect()
            })
            .collect())
    }

    #[test]
    fn replicas_get_adjacent_devices_in_order() {
        let devices = machine(&[H100; 8]);
        let placed = place(
            &devices,
            &job(&[("worker-0", "H100:2"), ("worker-1", "H100:2")]),
        )
        .unwrap();
        assert_eq!(
            placed,
            vec![
                ReplicaDevices {
                    replica: "worker-0".into(),
                    uuids: vec!["GPU-0".into(), "GPU-1".into()],
                },
                ReplicaDevices {
                    replica: "worker-1".into(),
                    uuids: vec!["GPU-2".into(), "GPU-3".into()],
                },
            ]
        );
    }

    #[test]
    fn the_explanation_counts_every_device_once() {
        let mut devices = machine(&[A100, A100, A100, H100, H100, H100, H100, H100]);
        devices[3].healthy = false;
        for index in [4, 5, 6] {
            devices[index].in_use = true;
        }
        let error = place(
            &devices,
            &job(&[("worker-0", "A100:1"), ("worker-1", "H100:2")]),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "worker-1 asks H100:2: 8 devices, 3 are another model, 1 unhealthy, 3 in use, 1 left"
        );
        assert_eq!(error.passed_over_by(Filter::Model), 3);
        assert_eq!(error.left, 1);

        let devices = machine(&[L4, A100]);
        assert_eq!(
            indexes(&devices, &[("main", "80GB+,cc9.0+:1")]).unwrap_err(),
            "main asks 80GB+,cc9.0+:1: 2 devices, 1 has under 80GB, 1 below compute capability 9.0, 0 left"
        );
        let devices = machine(&[H100; 4]);
        assert_eq!(
            indexes(&devices, &[("worker-0", "H100:3"), ("worker-1", "H100:2")]).unwrap_err(),
            "worker-1 asks H100:2: 4 devices, 3 taken by other replicas of this job, 1 left"
        );
        assert_eq!(
            indexes(&machine(&[]), &[("main", "1")]).unwrap_err(),
            "main asks 1: 0 devices, 0 left"
        );
    }

    #[test]
    fn the_smallest_device_that_will_do_is_taken_first() {
        let devices = machine(&[H100, H100, L4, L4]);
        assert_eq!(
            indexes(&devices, &[("a", "1"), ("b", "80GB+:1"), ("c", "1")]),
            Ok(vec![vec![2], vec![0], vec![3]])
        );
        // One kind serves a replica alone when one can, bigger or not ...
        let devices = machine(&[L4, H100, H100, H100]);
        assert_eq!(indexes(&devices, &[("a", "2")]), Ok(vec![vec![1, 2]]));
        // ... and kinds are mixed only when none can.
        let devices = machine(&[L4, H100]);
        assert_eq!(indexes(&devices, &[("a", "2")]), Ok(vec![vec![0, 1]]));
    }

    #[test]
    fn a_job_that_fits_somehow_is_placed() {
        // Taking the L4 for "a", smallest first, would leave "b" nothing.
        let devices = machine(&[L4, H100]);
        assert_eq!(
            indexes(&devices, &[("a", "1"), ("b", "L4:1")]),
            Ok(vec![vec![1], vec![0]])
        );
        let devices = machine(&[L4, L4, A100, H100, H100]);
        assert_eq!(
            indexes(&devices, &[("a", "3"), ("b", "L4:1"), ("c", "H100:1")]),
            Ok(vec![vec![0, 2, 3], vec![1], vec![4]])
        );
    }

    #[test]
    fn devices_are_taken_where_they_fragment_least() {
        let mut devices = machine(&[H100; 8]);
        for index in [1, 5, 6] {
            devices[index].in_use = true;
        }
        // Free: 0, 2 3 4, 7: one device from a stretch of one, two from the
        // stretch of three.
        assert_eq!(
            indexes(&devices, &[("a", "1"), ("b", "2"), ("c", "1"), ("d", "1")]),
            Ok(vec![vec![0], vec![2, 3], vec![4], vec![7]])
        );
        assert_eq!(indexes(&devices, &[("a", "4")]), Ok(vec![vec![0, 2, 3, 4]]));
        devices[3].in_use = true;
        // Free: 0, 2, 4, 7: the smallest span, then the lowest index.
        assert_eq!(indexes(&devices, &[("a", "2")]), Ok(vec![vec![0, 2]]));
        assert_eq!(indexes(&devices, &[("a", "3")]), Ok(vec![vec![0, 2, 4]]));
    }

    #[test]
    fn unhealthy_devices_are_never_given_and_gpu_less_replicas_get_none() {
        let mut devices = machine(&[H100; 2]);
        devices[0].healthy = false;
        assert_eq!(
            indexes(&devices, &[("ps-0", "1"), ("worker-0", "1")]).unwrap_err(),
            "worker-0 asks 1: 2 devices, 1 unhealthy, 1 taken by other replicas of this job, 0 left"
        );
        let placed = place(
            &devices,
            &[
                ("ps-0", GpuSelector::default()),
                ("worker-0", GpuSelector::any(1)),
            ],
        )
        .unwrap();
        assert_eq!(placed[0].uuids, Vec::<String>::new());
        assert_eq!(placed[1].uuids, vec!["GPU-1".to_string()]);
    }

    #[test]
    fn the_answer_does_not_depend_on_the_order_devices_are_listed_in() {
        let mut devices = machine(&[L4, L4, H100, H100, A100, A100, H100, L4]);
        devices[3].in_use = true;
        let replicas = job(&[("a", "1"), ("b", "80GB+:2"), ("c", "2"), ("d", "1")]);
        let placed = place(&devices, &replicas).unwrap();
        devices.reverse();
        assert_eq!(place(&devices, &replicas).unwrap(), placed);
        devices.rotate_left(3);
        assert_eq!(place(&devices, &replicas).unwrap(), placed);
    }
}
