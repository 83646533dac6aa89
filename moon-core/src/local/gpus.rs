//! The agent's view of this machine's GPUs, one by one: read at start (they
//! count in the machine's capacity), read again before GPUs are placed
//! (health changes while the agent runs: an XID, ECC errors; a failed device
//! must not be handed out), offered to admission with those that running
//! jobs hold marked in use, and handed to each replica by UUID.

use std::collections::{BTreeMap, HashSet};

use moon_gpu::placement::MachineGpu;

use super::capacity::MachineGpus;
use super::store::JobRecord;
use crate::error::Result;

/// The variable that tells CUDA which GPUs a process may use.
const CUDA_VISIBLE_DEVICES: &str = "CUDA_VISIBLE_DEVICES";

/// This machine's GPUs as the agent last read them.
pub struct Gpus {
    /// Where the machine's GPUs are read from, when it has a source.
    source: Option<MachineGpus>,
    /// The machine's GPUs one by one as last read, health included; `None`
    /// when the machine has no inventory (only a count, or no GPU).
    devices: Option<Vec<MachineGpu>>,
}

impl Gpus {
    /// Finds the machine's GPUs and reads them once, watching for XIDs.
    pub fn detect() -> Result<Gpus> {
        let source = MachineGpus::detect(true)?;
        let devices = source.as_ref().map(MachineGpus::devices).transpose()?;
        Ok(Gpus { source, devices })
    }

    /// The devices as last read, for the machine's capacity.
    pub fn devices(&self) -> Option<&[MachineGpu]> {
        self.devices.as_deref()
    }

    /// Reads the devices again, health included, when the machine has a source.
    pub fn refresh(&mut self) -> Result<()> {
        if let Some(source) = &self.source {
            self.devices = Some(source.devices()?);
        }
        Ok(())
    }

    /// The devices for admission to place on, with those in `held` (UUIDs
    /// that running jobs hold) marked in use.
    pub fn offer(&self, held: &HashSet<&String>) -> Option<Vec<MachineGpu>> {
        self.devices.as_ref().map(|devices| {
            devices
                .iter()
                .map(|device| MachineGpu {
                    in_use: held.contains(&device.uuid),
                    ..device.clone()
                })
                .collect()
        })
    }

    /// Sets `CUDA_VISIBLE_DEVICES` in a replica's `env` to the GPUs it was
    /// given, when the machine has an inventory. By UUID: CUDA numbers
    /// devices its own way, which need not be NVML's; a replica given none
    /// sees none.
    pub fn expose(&self, env: &mut BTreeMap<String, String>, job: &JobRecord, replica: &str) {
        if self.devices.is_some() {
            let devices = job.gpu_devices.get(replica).cloned().unwrap_or_default();
            env.insert(CUDA_VISIBLE_DEVICES.into(), devices.join(","));
        }
    }
}
