//! The GPUs of a pass as jobs take them and give them back: device by
//! device on a machine (moon-gpu's machine placement), node by node on a
//! cluster (its cluster placer), or only a count.

use moon_gpu::GpuSelector;
use moon_gpu::NoFit;
use moon_gpu::placement::cluster::Placer;
use moon_gpu::placement::{MachineGpu, machine};

use crate::model::{GpuInventory, Held};

/// A pass's working copy of the GPUs.
pub(crate) enum GpuRoom<'a> {
    Count,
    Devices(Vec<MachineGpu>),
    Nodes(Placer<'a>),
}

impl<'a> GpuRoom<'a> {
    pub(crate) fn new(inventory: &'a GpuInventory) -> GpuRoom<'a> {
        match inventory {
            GpuInventory::Count => GpuRoom::Count,
            GpuInventory::Devices(devices) => GpuRoom::Devices(devices.clone()),
            GpuInventory::Nodes(nodes) => GpuRoom::Nodes(Placer::new(nodes)),
        }
    }

    /// Takes GPUs for every replica in `asks`, or for none.
    pub(crate) fn take(&mut self, asks: &[(String, GpuSelector)]) -> Result<Held, NoFit> {
        match self {
            GpuRoom::Count => Ok(Held::new()),
            GpuRoom::Devices(devices) => {
                let placed = machine::place(devices, asks)?;
                let held: Held = placed
                    .into_iter()
                    .map(|replica| (replica.replica, replica.uuids))
                    .collect();
                mark(devices, &held, true);
                Ok(held)
            }
            GpuRoom::Nodes(placer) => {
                let pods: Vec<GpuSelector> =
                    asks.iter().map(|(_, selector)| selector.clone()).collect();
                let placed = placer.place_all(&pods)?;
                Ok(asks
                    .iter()
                    .zip(placed)
                    .map(|((replica, _), at)| (replica.clone(), vec![placer.name(at).to_string()]))
                    .collect())
            }
        }
    }

    /// Gives back what `held` holds (`asks` says how many GPUs each
    /// replica holds on its node), or takes it again when `take` is set.
    pub(crate) fn give(&mut self, held: &Held, asks: &[(String, GpuSelector)], take: bool) {
        match self {
            GpuRoom::Count => {}
            GpuRoom::Devices(devices) => mark(devices, held, take),
            GpuRoom::Nodes(placer) => {
                for (replica, selector) in asks {
                    let Some(at) = held
                        .get(replica)
                        .and_then(|nodes| nodes.first())
                        .and_then(|node| placer.position(node))
                    else {
                        continue;
                    };
                    if take {
                        placer.hold(at, selector.count);
                    } else {
                        placer.release(at, selector.count);
                    }
                }
            }
        }
    }

    /// Free GPUs that `selector` would accept, whatever its count; `None`
    /// when only a count is known.
    pub(crate) fn free_accepted(&mut self, selector: &GpuSelector) -> Option<u64> {
        match self {
            GpuRoom::Count => None,
            GpuRoom::Devices(devices) => Some(
                devices
                    .iter()
                    .filter(|device| {
                        !device.in_use
                            && device.healthy
                            && selector.accepts(
                                &device.model,
                                device.memory_mib,
                                device.compute_capability,
                            )
                    })
                    .count() as u64,
            ),
            GpuRoom::Nodes(placer) => Some(placer.free_accepted(selector)),
        }
    }
}

/// Marks the devices `held` holds as in use, or as free.
fn mark(devices: &mut [MachineGpu], held: &Held, in_use: bool) {
    for device in devices {
        if held.values().flatten().any(|uuid| *uuid == device.uuid) {
            device.in_use = in_use;
        }
    }
}
