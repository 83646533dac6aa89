//! Pods onto the nodes of a cluster, in order, bin-packed.
//!
//! Each node has one GPU model, as GPU Feature Discovery labels describe it
//! (`nvidia.com/gpu.product`, `nvidia.com/gpu.memory`,
//! `nvidia.com/cuda.compute.major`/`minor`), and a count of free GPUs that
//! each placement lowers. A pod's [`GpuSelector`] is served by one node.
//!
//! **Filters**, in this order: the model, the memory per GPU, the compute
//! capability, the node's health, then at least as many free GPUs as the pod
//! asks for. A pod that fits nowhere gets a [`NoFit`] counting every node
//! under the first filter it fails:
//!
//! ```text
//! 0/5000 nodes fit H100:2: 3000 lack model H100, 100 unhealthy, 1900 have fewer than 2 free GPUs
//! ```
//!
//! **Score**, among the nodes that pass, the first of:
//!
//! 1. the fewest free GPUs left after the pod (the tightest fit), so that
//!    free GPUs gather on few nodes instead of a little on each;
//! 2. a node already in use before an untouched one (all its GPUs free), so
//!    that whole machines stay free for jobs that need one;
//! 3. the node's name, then its position in the list, so that the answer is
//!    the same every time.
//!
//! That is the whole definition; the implementation gets the same answer
//! without looking at every node for every pod. Nodes that look alike to
//! every selector (same model, memory, capability and health) form a class,
//! whose nodes are kept ordered by (free GPUs, untouched, name); a pod looks
//! up the first node with enough free GPUs in each class that passes its
//! filters, and takes the best of those. Which classes pass is worked out
//! once per distinct selector.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{Candidate, Filter, NoFit, Scope, tally};
use crate::selector::{ComputeCapability, GpuSelector};

/// A node's GPUs, as placement needs to know them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeGpus {
    /// The node's name.
    pub name: String,
    /// The GPU model, GFD's product label (`NVIDIA-H100-80GB-HBM3`).
    pub model: String,
    /// Memory per GPU, in MiB (GFD's `nvidia.com/gpu.memory`).
    pub memory_mib: u64,
    /// The CUDA compute capability, when labelled.
    #[serde(default)]
    pub compute_capability: Option<ComputeCapability>,
    /// The GPUs the node has for pods (allocatable `nvidia.com/gpu`).
    pub gpus_total: u32,
    /// The GPUs no pod holds yet.
    pub gpus_free: u32,
    /// Whether pods may be placed on it at all.
    pub healthy: bool,
}

impl Candidate for NodeGpus {
    fn description(&self) -> (&str, u64, Option<ComputeCapability>, bool) {
        (
            &self.model,
            self.memory_mib,
            self.compute_capability,
            self.healthy,
        )
    }
}

/// Places `pods` in order, each on one node, counting down the free GPUs of
/// the nodes chosen; answers with each pod's node, as a position in `nodes`,
/// or why it fits nowhere. See the module documentation for the rule.
pub fn place(nodes: &[NodeGpus], pods: &[GpuSelector]) -> Vec<Result<usize, NoFit>> {
    let mut placer = Placer::new(nodes);
    pods.iter().map(|pod| placer.place(pod)).collect()
}

/// The cluster's GPUs as placements take and give them back, for callers
/// that place many groups of pods one after another (admission, which
/// places a job's pods all or none, then the next job's).
///
/// ```
/// use moon_gpu::placement::{NodeGpus, cluster::Placer};
///
/// let node = |name: &str, free| NodeGpus {
///     name: name.into(),
///     model: "NVIDIA-H100-80GB-HBM3".into(),
///     memory_mib: 81_559,
///     compute_capability: None,
///     gpus_total: 8,
///     gpus_free: free,
///     healthy: true,
/// };
/// let nodes = [node("a", 8), node("b", 4)];
/// let mut placer = Placer::new(&nodes);
/// let gang = ["H100:4".parse()?, "H100:4".parse()?, "H100:8".parse()?];
/// // Three pods need 16 GPUs and 12 are free: none is placed.
/// assert!(placer.place_all(&gang).is_err());
/// assert_eq!(placer.free_accepted(&"H100:1".parse()?), 12);
/// assert_eq!(placer.place_all(&gang[..2]).ok(), Some(vec![1, 0]));
/// # Ok::<(), moon_gpu::Error>(())
/// ```
pub struct Placer<'a> {
    nodes: &'a [NodeGpus],
    classes: Vec<Class>,
    /// Node positions in (name, position) order.
    by_rank: Vec<usize>,
    /// Each node's rank, class and free GPUs, by position.
    rank_of: Vec<usize>,
    class_of: Vec<usize>,
    free: Vec<u32>,
    /// The classes each selector seen so far passes.
    passing: HashMap<GpuSelector, Vec<usize>>,
}

/// Nodes that every selector treats alike.
struct Class {
    /// One of them, as positioned in the node list.
    sample: usize,
    /// How many nodes it has.
    nodes: usize,
    /// The free GPUs of all its nodes.
    free: u64,
    /// Its nodes as (free GPUs, untouched, rank by name), best first for any
    /// pod they can hold.
    by_free: BTreeSet<(u32, bool, usize)>,
}

impl<'a> Placer<'a> {
    /// The nodes with their free GPUs as listed.
    pub fn new(nodes: &'a [NodeGpus]) -> Placer<'a> {
        let mut by_rank: Vec<usize> = (0..nodes.len()).collect();
        by_rank.sort_by(|&a, &b| nodes[a].name.cmp(&nodes[b].name).then(a.cmp(&b)));
        let mut classes: Vec<Class> = Vec::new();
        let mut class_by_description: HashMap<(&str, u64, Option<ComputeCapability>, bool), usize> =
            HashMap::new();
        let mut rank_of = vec![0; nodes.len()];
        let mut class_of = vec![0; nodes.len()];
        for (rank, &at) in by_rank.iter().enumerate() {
            let node = &nodes[at];
            let class = *class_by_description
                .entry(node.description())
                .or_insert_with(|| {
                    classes.push(Class {
                        sample: at,
                        nodes: 0,
                        free: 0,
                        by_free: BTreeSet::new(),
                    });
                    classes.len() - 1
                });
            rank_of[at] = rank;
            class_of[at] = class;
            let free = node.gpus_free;
            classes[class].nodes += 1;
            classes[class].free += u64::from(free);
            classes[class]
                .by_free
                .insert((free, free >= node.gpus_total, rank));
        }
        Placer {
            nodes,
            classes,
            by_rank,
            rank_of,
            class_of,
            free: nodes.iter().map(|node| node.gpus_free).collect(),
            passing: HashMap::new(),
        }
    }

    /// Places one pod on the best node for it, taking its GPUs there.
    pub fn place(&mut self, pod: &GpuSelector) -> Result<usize, NoFit> {
        self.learn(pod);
        let classes = &self.classes;
        let best = self.passing[pod]
            .iter()
            .filter_map(|&class| {
                let first = classes[class]
                    .by_free
                    .range((pod.count, false, 0)..)
                    .next()?;
                Some(*first)
            })
            .min();
        let Some((_, _, rank)) = best else {
            return Err(self.no_fit(pod));
        };
        let at = self.by_rank[rank];
        self.set_free(at, self.free[at] - pod.count);
        Ok(at)
    }

    /// Places every pod, in order, or none of them: on the first that fits
    /// nowhere, the GPUs taken for the others are given back.
    pub fn place_all(&mut self, pods: &[GpuSelector]) -> Result<Vec<usize>, NoFit> {
        let mut placed = Vec::with_capacity(pods.len());
        for pod in pods {
            match self.place(pod) {
                Ok(at) => placed.push(at),
                Err(no_fit) => {
                    for (&at, pod) in placed.iter().zip(pods) {
                        self.release(at, pod.count);
                    }
                    return Err(no_fit);
                }
            }
        }
        Ok(placed)
    }

    /// Gives back `count` GPUs on the node at `at` (a pod that ended).
    pub fn release(&mut self, at: usize, count: u32) {
        let free = (self.free[at] + count).min(self.nodes[at].gpus_total.max(self.free[at]));
        self.set_free(at, free);
    }

    /// Takes `count` GPUs on the node at `at` again, as a pod that was
    /// released and then kept; at most what is free there.
    pub fn hold(&mut self, at: usize, count: u32) {
        self.set_free(at, self.free[at].saturating_sub(count));
    }

    /// The free GPUs of the node at `at`.
    pub fn free(&self, at: usize) -> u32 {
        self.free[at]
    }

    /// The free GPUs on the nodes that pass `selector`'s filters (model,
    /// memory, capability, health), whatever its count.
    pub fn free_accepted(&mut self, selector: &GpuSelector) -> u64 {
        self.learn(selector);
        self.passing[selector]
            .iter()
            .map(|&class| self.classes[class].free)
            .sum()
    }

    /// The name of the node at `at`.
    pub fn name(&self, at: usize) -> &'a str {
        &self.nodes[at].name
    }

    /// The position of the node named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        let rank = self
            .by_rank
            .partition_point(|&at| self.nodes[at].name.as_str() < name);
        let at = *self.by_rank.get(rank)?;
        (self.nodes[at].name == name).then_some(at)
    }

    fn set_free(&mut self, at: usize, free: u32) {
        let class = &mut self.classes[self.class_of[at]];
        let total = self.nodes[at].gpus_total;
        let rank = self.rank_of[at];
        let old = self.free[at];
        class.by_free.remove(&(old, old >= total, rank));
        class.by_free.insert((free, free >= total, rank));
        class.free = class.free - u64::from(old) + u64::from(free);
        self.free[at] = free;
    }

    /// Works out once which classes pass every filter of `pod` but the
    /// free GPUs.
    fn learn(&mut self, pod: &GpuSelector) {
        if !self.passing.contains_key(pod) {
            let classes = (0..self.classes.len())
                .filter(|&class| self.class_fails(pod, class).is_none())
                .collect();
            self.passing.insert(pod.clone(), classes);
        }
    }

    fn class_fails(&self, pod: &GpuSelector, class: usize) -> Option<Filter> {
        self.nodes[self.classes[class].sample].first_failed(pod)
    }

    /// Why `pod` fits nowhere: every node of a class that passes the other
    /// filters has too few free GPUs, or one of them would have been chosen.
    fn no_fit(&self, pod: &GpuSelector) -> NoFit {
        NoFit {
            scope: Scope::Cluster,
            selector: pod.clone(),
            candidates: self.nodes.len(),
            passed_over: tally((0..self.classes.len()).map(|class| {
                let filter = self.class_fails(pod, class).unwrap_or(Filter::Free);
                (filter, self.classes[class].nodes)
            })),
            left: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, model: &str, memory_mib: u64, total: u32, free: u32) -> NodeGpus {
        NodeGpus {
            name: name.to_string(),
            model: model.to_string(),
            memory_mib,
            compute_capability: Some(ComputeCapability { major: 9, minor: 0 }),
            gpus_total: total,
            gpus_free: free,
            healthy: true,
        }
    }

    fn h100(name: &str, total: u32, free: u32) -> NodeGpus {
        node(name, "NVIDIA-H100-80GB-HBM3", 81_559, total, free)
    }

    fn selectors(texts: &[&str]) -> Vec<GpuSelector> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    /// Each pod's node name, or the explanation.
    fn names(nodes: &[NodeGpus], pods: &[&str]) -> Vec<Result<String, String>> {
        place(nodes, &selectors(pods))
            .into_iter()
            .map(|placed| {
                placed
                    .map(|at| nodes[at].name.clone())
                    .map_err(|no_fit| no_fit.to_string())
            })
            .collect()
    }

    fn ok(name: &str) -> Result<String, String> {
        Ok(name.to_string())
    }

    #[test]
    fn the_tightest_fit_wins() {
        let nodes = [h100("a", 8, 8), h100("b", 8, 3), h100("c", 4, 2)];
        assert_eq!(names(&nodes, &["2", "2", "2"]), [ok("c"), ok("b"), ok("a")]);
    }

    #[test]
    fn nodes_in_use_go_before_untouched_ones_then_names_decide() {
        // Both would have 2 left; "whole" stays whole.
        let nodes = [h100("whole", 4, 4), h100("used", 8, 4)];
        assert_eq!(names(&nodes, &["2"]), [ok("used")]);
        let nodes = [h100("b", 8, 8), h100("a", 8, 8), h100("c", 8, 8)];
        assert_eq!(names(&nodes, &["1", "1"]), [ok("a"), ok("a")]);
    }

    #[test]
    fn free_gpus_are_counted_down_as_pods_are_placed() {
        let nodes = [h100("a", 8, 8), h100("b", 8, 8)];
        assert_eq!(
            names(&nodes, &["H100:8", "H100:8", "H100:8"]),
            [
                ok("a"),
                ok("b"),
                Err("0/2 nodes fit H100:8: 2 have fewer than 8 free GPUs".to_string())
            ]
        );
    }

    #[test]
    fn a_pod_that_fits_nowhere_is_told_why_by_the_first_filter_each_node_fails() {
        let mut sick = h100("sick", 8, 8);
        sick.healthy = false;
        let mut l4 = node("l4", "NVIDIA-L4", 23_034, 1, 1);
        l4.compute_capability = Some(ComputeCapability { major: 8, minor: 9 });
        let nodes = [
            l4.clone(),
            node("a100", "NVIDIA-A100-SXM4-40GB", 40_960, 4, 4),
            sick,
            h100("busy", 8, 1),
            h100("full", 8, 0),
        ];
        assert_eq!(
            names(&nodes, &["H100:2", "80GB+:2", "cc9.0+,80GB+:8", "H100:1", "A100|H100:8"]),
            [
                Err("0/5 nodes fit H100:2: 2 lack model H100, 1 unhealthy, 2 have fewer than 2 free GPUs".into()),
                Err("0/5 nodes fit 80GB+:2: 2 have GPUs under 80GB, 1 unhealthy, 2 have fewer than 2 free GPUs".into()),
                Err("0/5 nodes fit 80GB+,cc9.0+:8: 2 have GPUs under 80GB, 1 unhealthy, 2 have fewer than 8 free GPUs".into()),
                ok("busy"),
                Err("0/5 nodes fit A100|H100:8: 1 lacks model A100|H100, 1 unhealthy, 3 have fewer than 8 free GPUs".into()),
            ]
        );
        assert_eq!(
            names(&[l4], &["cc9.0+:1", "40GiB+:1", "L4:1", "L4:1"]),
            [
                Err("0/1 nodes fit cc9.0+:1: 1 below compute capability 9.0".into()),
                Err("0/1 nodes fit 40GiB+:1: 1 has GPUs under 40GiB".into()),
                ok("l4"),
                Err("0/1 nodes fit L4:1: 1 has no free GPU".into()),
            ]
        );
        assert_eq!(names(&[], &["1"]), [Err("0/0 nodes fit 1".into())]);
        let no_fit = place(&nodes, &selectors(&["H100:2"]))
            .remove(0)
            .unwrap_err();
        assert_eq!(no_fit.passed_over_by(Filter::Model), 2);
        assert_eq!(no_fit.passed_over_by(Filter::Memory), 0);
    }

    /// The definition, node by node: what `place` must answer.
    fn place_plainly(nodes: &[NodeGpus], pods: &[GpuSelector]) -> Vec<Result<usize, NoFit>> {
        let mut free: Vec<u32> = nodes.iter().map(|node| node.gpus_free).collect();
        pods.iter()
            .map(|pod| {
                let verdicts: Vec<Option<Filter>> = nodes
                    .iter()
                    .zip(&free)
                    .map(|(node, &free)| {
                        node.first_failed(pod)
                            .or((free < pod.count).then_some(Filter::Free))
                    })
                    .collect();
                let best = (0..nodes.len())
                    .filter(|&at| verdicts[at].is_none())
                    .min_by_key(|&at| {
                        let node = &nodes[at];
                        (
                            free[at] - pod.count,
                            free[at] >= node.gpus_total,
                            &node.name,
                            at,
                        )
                    });
                match best {
                    Some(at) => {
                        free[at] -= pod.count;
                        Ok(at)
                    }
                    None => Err(NoFit {
                        scope: Scope::Cluster,
                        selector: pod.clone(),
                        candidates: nodes.len(),
                        passed_over: tally(verdicts.iter().flatten().map(|&f| (f, 1))),
                        left: 0,
                    }),
                }
            })
            .collect()
    }

    /// A seeded generator (SplitMix64), so that the synthetic cluster is the
    /// same on every run.
    struct Random(u64);

    impl Random {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % bound
        }
    }

    /// A GFD product label, memory in MiB, compute capability, and the GPU
    /// counts its nodes come in.
    type Model = (&'static str, u64, (u32, u32), &'static [u32]);

    /// 5,000 nodes of five models, 2% unhealthy, a third partly used, named
    /// in no particular order.
    fn synthetic_cluster(random: &mut Random) -> Vec<NodeGpus> {
        let models: [Model; 5] = [
            ("NVIDIA-H100-80GB-HBM3", 81_559, (9, 0), &[8]),
            ("NVIDIA-A100-SXM4-40GB", 40_960, (8, 0), &[4]),
            ("NVIDIA-A100-SXM4-80GB", 81_920, (8, 0), &[8]),
            ("NVIDIA-L4", 23_034, (8, 9), &[1, 2, 4, 8]),
            ("Tesla-T4", 15_360, (7, 5), &[1, 4]),
        ];
        (0..5_000)
            .map(|at| {
                let (model, memory_mib, (major, minor), sizes) =
                    models[random.below(models.len() as u64) as usize];
                let total = sizes[random.below(sizes.len() as u64) as usize];
                let free = if random.below(3) == 0 {
                    random.below(u64::from(total) + 1) as u32
                } else {
                    total
                };
                NodeGpus {
                    name: format!("gpu-{:05}", (at * 7_919) % 5_000),
                    model: model.to_string(),
                    memory_mib,
                    compute_capability: Some(ComputeCapability { major, minor }),
                    gpus_total: total,
                    gpus_free: free,
                    healthy: random.below(50) != 0,
                }
            })
            .collect()
    }

    fn synthetic_pods(random: &mut Random, count: usize) -> Vec<GpuSelector> {
        let kinds = selectors(&[
            "H100:2",
            "H100:8",
            "80GB+:1",
            "A100|H100:4",
            "1",
            "2",
            "L4:1",
            "40GB+:2",
            "cc8.9+:1",
            "T4:1",
            "A100:8",
            "80GB+,cc9.0+:4",
            "L4:8",
            "H200:1",
        ]);
        (0..count)
            .map(|_| kinds[random.below(kinds.len() as u64) as usize].clone())
            .collect()
    }

    /// The synthetic cluster and `pods` pods, from `seed`.
    fn synthetic(seed: u64, pods: usize) -> (Vec<NodeGpus>, Vec<GpuSelector>) {
        let mut random = Random(seed);
        let nodes = synthetic_cluster(&mut random);
        (nodes, synthetic_pods(&mut random, pods))
    }

    #[test]
    fn a_synthetic_cluster_is_placed_as_the_definition_says() {
        let (nodes, pods) = synthetic(7, 400);
        let placed = place(&nodes, &pods);
        assert_eq!(placed, place_plainly(&nodes, &pods));
        let fitted = placed.iter().filter(|each| each.is_ok()).count();
        assert!(fitted > 300, "{fitted} of 400 placed");
        let refused = placed.iter().find_map(|each| each.as_ref().err()).unwrap();
        assert_eq!(
            refused.to_string(),
            "0/5000 nodes fit H200:1: 5000 lack model H200"
        );
    }

    #[test]
    fn ten_thousand_pods_fill_the_cluster_and_each_refusal_adds_up() {
        let (nodes, pods) = synthetic(11, 10_000);
        let placed = place(&nodes, &pods);
        let mut used = vec![0u32; nodes.len()];
        for (pod, placed) in pods.iter().zip(&placed) {
            match placed {
                Ok(at) => used[*at] += pod.count,
                Err(no_fit) => {
                    let counted: usize = no_fit.passed_over.iter().map(|(_, n)| n).sum();
                    assert_eq!(counted, nodes.len(), "{no_fit}");
                }
            }
        }
        for (node, used) in nodes.iter().zip(used) {
            assert!(used <= node.gpus_free, "{} over-committed", node.name);
            assert!(used == 0 || node.healthy, "{} is unhealthy", node.name);
        }
        assert!(placed.iter().any(Result::is_err));
    }

    #[test]
    fn the_answer_does_not_depend_on_the_order_nodes_are_listed_in() {
        let (mut nodes, pods) = synthetic(3, 300);
        nodes.truncate(500);
        let named = |nodes: &[NodeGpus]| -> Vec<Option<String>> {
            place(nodes, &pods)
                .into_iter()
                .map(|placed| placed.ok().map(|at| nodes[at].name.clone()))
                .collect()
        };
        let first = named(&nodes);
        assert_eq!(named(&nodes), first);
        nodes.reverse();
        assert_eq!(named(&nodes), first);
    }
}
