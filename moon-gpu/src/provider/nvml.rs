//! The NVML provider, through `nvml-wrapper`, which loads
//! `libnvidia-ml.so.1` when [`NvmlProvider::new`] runs. Building and testing
//! moon need no NVIDIA library; a machine without one gets
//! [`Error::NoNvml`].
//!
//! Every field NVML offers is filled. A query a device does not support
//! (ECC counters on a GeForce card, row remapping before Ampere, remapped
//! rows while MIG instances exist) leaves its field `None`; it never fails
//! the inventory. A device NVML cannot read at all (fallen off the bus,
//! waiting for a reset) is still listed, by index, as unhealthy.
//!
//! XID errors reach NVML as events, not counters: only a process that
//! registered for them before they happened sees them. [`XidWatcher`] does
//! that on a background thread, and [`NvmlProvider::watching_xids`] puts what
//! it saw into every inventory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{
    EccCounter, MemoryError, RetirementCause, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::{
    NVML_FI_DEV_REMAPPED_COR, NVML_FI_DEV_REMAPPED_FAILURE, NVML_FI_DEV_REMAPPED_PENDING,
    NVML_FI_DEV_REMAPPED_UNC,
};
use nvml_wrapper::{Device, Nvml};

use crate::device::{GpuDevice, HealthCounters, Inventory, MigMode, ThrottleReason, XidEvent};
use crate::error::{Error, Result};
use crate::health::{HealthStatus, classify};
use crate::provider::GpuProvider;
use crate::selector::ComputeCapability;

/// The library NVML is loaded from, as `nvml-wrapper` names it.
#[cfg(target_os = "linux")]
const LIBRARY: &str = "libnvidia-ml.so.1";
#[cfg(not(target_os = "linux"))]
const LIBRARY: &str = "nvml.dll";

const MIB: u64 = 1024 * 1024;

/// GPUs as NVML sees them.
pub struct NvmlProvider {
    nvml: Arc<Nvml>,
    xids: Option<XidWatcher>,
}

impl NvmlProvider {
    /// Loads and initializes NVML: [`Error::NoNvml`] where the library or
    /// the driver is missing, [`Error::Nvml`] where NVML refuses.
    pub fn new() -> Result<NvmlProvider> {
        let nvml = Nvml::init().map_err(init_error)?;
        Ok(NvmlProvider {
            nvml: Arc::new(nvml),
            xids: None,
        })
    }

    /// This provider, with an [`XidWatcher`] started: every later inventory
    /// lists the XID errors seen from now on.
    pub fn watching_xids(mut self) -> Result<NvmlProvider> {
        self.xids = Some(XidWatcher::start(Arc::clone(&self.nvml))?);
        Ok(self)
    }

    /// The XID watcher, when [`watching_xids`](Self::watching_xids) started one.
    pub fn xid_watcher(&self) -> Option<&XidWatcher> {
        self.xids.as_ref()
    }
}

impl std::fmt::Debug for NvmlProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlProvider")
            .field("watching_xids", &self.xids.is_some())
            .finish()
    }
}

impl GpuProvider for NvmlProvider {
    fn inventory(&self) -> Result<Inventory> {
        let nvml = &*self.nvml;
        let count = nvml.device_count().map_err(nvml_error)?;
        let mut devices = Vec::with_capacity(count as usize);
        for index in 0..count {
            let read = nvml
                .device_by_index(index)
                .and_then(|handle| read_device(index, &handle));
            let (mut device, unreadable) = match read {
                Ok(device) => (device, None),
                Err(error) => (unreadable_device(index), Some(error)),
            };
            if let Some(watcher) = &self.xids {
                device.counters.xid_errors = watcher.events(&device.uuid);
            }
            device.health = classify(&device);
            if let Some(error) = unreadable {
                device
                    .health
                    .add(HealthStatus::Unhealthy, unreadable_reason(&error));
            }
            devices.push(device);
        }
        Ok(Inventory {
            hostname: hostname(),
            driver_version: nvml.sys_driver_version().map_err(nvml_error)?,
            cuda_version: nvml.sys_cuda_driver_version().ok().map(cuda_version),
            nvml_version: nvml.sys_nvml_version().map_err(nvml_error)?,
            devices,
        })
    }
}

/// Everything NVML tells about one device; the required fields fail the
/// device, the rest are `None` where unsupported.
fn read_device(index: u32, handle: &Device<'_>) -> Result<GpuDevice, NvmlError> {
    let memory = handle.memory_info()?;
    let utilization = handle.utilization_rates().ok();
    let threshold = |kind| handle.temperature_threshold(kind).ok();
    Ok(GpuDevice {
        index: handle.index().unwrap_or(index),
        uuid: handle.uuid()?,
        name: handle.name()?,
        memory_total_mib: memory.total / MIB,
        memory_used_mib: memory.used / MIB,
        memory_free_mib: memory.free / MIB,
        compute_capability: handle
            .cuda_compute_capability()
            .ok()
            .and_then(|cc| compute_capability(cc.major, cc.minor)),
        mig_mode: mig_mode(handle.mig_mode().map(|mode| mode.current)),
        pci_bus_id: handle.pci_info()?.bus_id,
        utilization_gpu_percent: utilization.as_ref().map(|rates| rates.gpu),
        utilization_memory_percent: utilization.as_ref().map(|rates| rates.memory),
        temperature_c: handle.temperature(TemperatureSensor::Gpu).ok(),
        temperature_slowdown_c: threshold(TemperatureThreshold::Slowdown),
        temperature_shutdown_c: threshold(TemperatureThreshold::Shutdown),
        temperature_max_operating_c: threshold(TemperatureThreshold::GpuMax),
        power_watts: handle.power_usage().ok().map(watts),
        power_limit_watts: handle.enforced_power_limit().ok().map(watts),
        throttle_reasons: handle
            .current_throttle_reasons()
            .map(throttle_reasons)
            .unwrap_or_default(),
        counters: counters(handle),
        health: Default::default(),
    })
}

fn counters(handle: &Device<'_>) -> HealthCounters {
    let ecc_on = handle
        .is_ecc_enabled()
        .is_ok_and(|mode| mode.currently_enabled);
    let ecc = |error, counter| {
        ecc_on
            .then(|| handle.total_ecc_errors(error, counter).ok())
            .flatten()
    };
    let retired = |cause| {
        handle
            .retired_pages(cause)
            .ok()
            .map(|pages| pages.len() as u64)
    };
    let rows = remapped_rows(handle);
    HealthCounters {
        ecc_volatile_uncorrected: ecc(MemoryError::Uncorrected, EccCounter::Volatile),
        ecc_volatile_corrected: ecc(MemoryError::Corrected, EccCounter::Volatile),
        ecc_aggregate_uncorrected: ecc(MemoryError::Uncorrected, EccCounter::Aggregate),
        ecc_aggregate_corrected: ecc(MemoryError::Corrected, EccCounter::Aggregate),
        retired_pages_single_bit: retired(RetirementCause::MultipleSingleBitEccErrors),
        retired_pages_double_bit: retired(RetirementCause::DoubleBitEccError),
        retired_pages_pending: handle.are_pages_pending_retired().ok(),
        remapped_rows_correctable: rows[0],
        remapped_rows_uncorrectable: rows[1],
        remapping_pending: rows[2].map(|flag| flag != 0),
        remapping_failed: rows[3].map(|flag| flag != 0),
        xid_errors: Vec::new(),
    }
}

/// The row remapper's counts (correctable, uncorrectable) and flags
/// (pending, failed), read as NVML field values, which need no FFI of our own.
fn remapped_rows(handle: &Device<'_>) -> [Option<u64>; 4] {
    let fields = [
        NVML_FI_DEV_REMAPPED_COR,
        NVML_FI_DEV_REMAPPED_UNC,
        NVML_FI_DEV_REMAPPED_PENDING,
        NVML_FI_DEV_REMAPPED_FAILURE,
    ]
    .map(FieldId);
    let Ok(samples) = handle.field_values_for(&fields) else {
        return [None; 4];
    };
    let mut values = [None; 4];
    for (value, sample) in values.iter_mut().zip(samples) {
        *value = sample
            .ok()
            .and_then(|sample| sample.value.ok())
            .and_then(sample_u64);
    }
    values
}

fn sample_u64(value: SampleValue) -> Option<u64> {
    match value {
        SampleValue::U32(value) => Some(u64::from(value)),
        SampleValue::U64(value) => Some(value),
        SampleValue::I64(value) => u64::try_from(value).ok(),
        SampleValue::F64(_) => None,
    }
}

fn compute_capability(major: i32, minor: i32) -> Option<ComputeCapability> {
    Some(ComputeCapability {
        major: u32::try_from(major).ok()?,
        minor: u32::try_from(minor).ok()?,
    })
}

/// NVML's `nvmlDeviceGetMigMode` current mode: 1 is enabled; a device that
/// cannot answer is not MIG-capable.
fn mig_mode(current: Result<u32, NvmlError>) -> MigMode {
    match current {
        Ok(1) => MigMode::Enabled,
        Ok(_) => MigMode::Disabled,
        Err(_) => MigMode::Unsupported,
    }
}

fn watts(milliwatts: u32) -> f64 {
    f64::from(milliwatts) / 1000.0
}

/// `12040` → `"12.4"`, as `nvidia-smi` prints it.
fn cuda_version(version: i32) -> String {
    format!(
        "{}.{}",
        nvml_wrapper::cuda_driver_version_major(version),
        nvml_wrapper::cuda_driver_version_minor(version)
    )
}

fn throttle_reasons(flags: ThrottleReasons) -> Vec<ThrottleReason> {
    [
        (ThrottleReasons::GPU_IDLE, ThrottleReason::GpuIdle),
        (
            ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
            ThrottleReason::ApplicationsClocksSetting,
        ),
        (ThrottleReasons::SW_POWER_CAP, ThrottleReason::SwPowerCap),
        (ThrottleReasons::HW_SLOWDOWN, ThrottleReason::HwSlowdown),
        (ThrottleReasons::SYNC_BOOST, ThrottleReason::SyncBoost),
        (
            ThrottleReasons::SW_THERMAL_SLOWDOWN,
            ThrottleReason::SwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_THERMAL_SLOWDOWN,
            ThrottleReason::HwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
            ThrottleReason::HwPowerBrakeSlowdown,
        ),
        (
            ThrottleReasons::DISPLAY_CLOCK_SETTING,
            ThrottleReason::DisplayClockSetting,
        ),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, reason)| reason)
    .collect()
}

/// A device NVML lists but cannot read: known only by its index.
fn unreadable_device(index: u32) -> GpuDevice {
    GpuDevice {
        index,
        name: "unknown".into(),
        mig_mode: MigMode::Unsupported,
        ..GpuDevice::default()
    }
}

fn unreadable_reason(error: &NvmlError) -> String {
    match error {
        NvmlError::GpuLost => {
            "NVML cannot reach the device: it has fallen off the bus or is otherwise inaccessible"
                .into()
        }
        NvmlError::ResetRequired => {
            "NVML says the device needs a reset before it can be used".into()
        }
        other => format!("NVML cannot read the device: {other}"),
    }
}

/// Why NVML did not start, typed: no library or no driver is "no NVML".
fn init_error(error: NvmlError) -> Error {
    match error {
        NvmlError::LibloadingError(cause) => {
            Error::NoNvml(format!("{LIBRARY} could not be loaded ({cause})"))
        }
        NvmlError::LibraryNotFound => Error::NoNvml(format!("{LIBRARY} was not found")),
        NvmlError::FailedToLoadSymbol(cause) => {
            Error::NoNvml(format!("{LIBRARY} lacks NVML's entry points ({cause})"))
        }
        NvmlError::DriverNotLoaded => Error::NoNvml("the NVIDIA driver is not loaded".into()),
        other => nvml_error(other),
    }
}

fn nvml_error(error: NvmlError) -> Error {
    Error::Nvml(error.to_string())
}

/// The host name, from the kernel; empty where it cannot be read.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default()
}

/// Records the XID errors NVML reports, on a background thread, from the
/// moment it starts until it is dropped.
///
/// NVML delivers an XID only to event sets registered before it happened,
/// so a process that wants them must watch all along: an agent or a node
/// labeller holds one for its lifetime. When several XIDs come between two
/// waits, NVML reports the last one for each (its documented behaviour).
///
/// At most [`XidWatcher::KEPT_PER_XID`] events of each XID are kept per
/// device, the latest, so that a flood of application errors cannot push a
/// rare XID 79 out.
pub struct XidWatcher {
    log: Arc<Mutex<XidLog>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    unwatched: Vec<String>,
}

impl XidWatcher {
    /// How many events of one XID are kept per device.
    pub const KEPT_PER_XID: usize = 16;

    /// How long the thread waits for an event before it looks whether it
    /// should stop.
    const WAIT: Duration = Duration::from_millis(500);

    fn start(nvml: Arc<Nvml>) -> Result<XidWatcher> {
        let log = Arc::new(Mutex::new(XidLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, registered) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("moon-gpu-xids".into())
            .spawn({
                let log = Arc::clone(&log);
                let stop = Arc::clone(&stop);
                move || watch(&nvml, &log, &stop, ready)
            })
            .map_err(|error| Error::Nvml(format!("cannot start the XID watcher: {error}")))?;
        match registered.recv() {
            Ok(Ok(unwatched)) => Ok(XidWatcher {
                log,
                stop,
                thread: Some(thread),
                unwatched,
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Nvml("the XID watcher stopped as it started".into()))
            }
        }
    }

    /// The XIDs seen on the device with this UUID, oldest first, with those
    /// NVML could not attribute to a device.
    pub fn events(&self, uuid: &str) -> Vec<XidEvent> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .events(uuid)
    }

    /// Every XID seen, by device UUID; `"*"` holds those NVML could not
    /// attribute to a device.
    pub fn all_events(&self) -> BTreeMap<String, Vec<XidEvent>> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_device
            .clone()
    }

    /// The devices not watched, each with why (`"GPU-… (index 3): XID
    /// events are not supported"`).
    pub fn unwatched(&self) -> &[String] {
        &self.unwatched
    }
}

impl Drop for XidWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for XidWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XidWatcher")
            .field("unwatched", &self.unwatched)
            .finish_non_exhaustive()
    }
}

/// What the watcher has seen, by device UUID.
#[derive(Debug, Default)]
struct XidLog {
    by_device: BTreeMap<String, Vec<XidEvent>>,
}

/// The key of the XIDs NVML could not attribute to a device.
const ANY_DEVICE: &str = "*";

impl XidLog {
    fn record(&mut self, uuid: String, event: XidEvent) {
        let events = self.by_device.entry(uuid).or_default();
        let same = events.iter().filter(|seen| seen.xid == event.xid).count();
        if same >= XidWatcher::KEPT_PER_XID
            && let Some(oldest) = events.iter().position(|seen| seen.xid == event.xid)
        {
            events.remove(oldest);
        }
        events.push(event);
    }

    fn events(&self, uuid: &str) -> Vec<XidEvent> {
        let mut events: Vec<XidEvent> = [uuid, ANY_DEVICE]
            .iter()
            .filter_map(|key| self.by_device.get(*key))
            .flatten()
            .copied()
            .collect();
        events.sort_by_key(|event| event.time_ms);
        events
    }
}

/// The watcher thread: register, say how that went, then record until told
/// to stop.
fn watch(
    nvml: &Nvml,
    log: &Mutex<XidLog>,
    stop: &AtomicBool,
    ready: mpsc::Sender<Result<Vec<String>>>,
) {
    let set = match events::register(nvml) {
        Ok((set, unwatched)) => {
            let _ = ready.send(Ok(unwatched));
            set
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let wait_ms = XidWatcher::WAIT.as_millis() as u32;
    while !stop.load(Ordering::Relaxed) {
        match set.wait(wait_ms) {
            Ok(event) => {
                let Some(xid) = event.event_data else {
                    continue;
                };
                let uuid = event
                    .device
                    .uuid()
                    .unwrap_or_else(|_| ANY_DEVICE.to_string());
                let event = XidEvent {
                    xid: xid_number(&xid),
                    time_ms: now_ms(),
                };
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(uuid, event);
            }
            Err(NvmlError::Timeout) => {}
            // A lost GPU makes every wait fail; its inventory entry says so.
            Err(_) => std::thread::sleep(XidWatcher::WAIT),
        }
    }
}

/// NVML's "unknown XID" (999) stays 999.
fn xid_number(xid: &XidError) -> u64 {
    match xid {
        XidError::Value(value) => *value,
        XidError::Unknown => 999,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

#[cfg(target_os = "linux")]
mod events {
    use nvml_wrapper::bitmasks::event::EventTypes;
    use nvml_wrapper::{EventSet, Nvml};

    use super::nvml_error;
    use crate::error::Result;

    /// An event set with every device that supports critical XID events,
    /// and the others, each with why.
    pub(super) fn register(nvml: &Nvml) -> Result<(EventSet<'_>, Vec<String>)> {
        let count = nvml.device_count().map_err(nvml_error)?;
        let mut set = nvml.create_event_set().map_err(nvml_error)?;
        let mut registered = Vec::new();
        let mut unwatched = Vec::new();
        for index in 0..count {
            let device = match nvml.device_by_index(index) {
                Ok(device) => device,
                Err(error) => {
                    unwatched.push(format!("index {index}: {error}"));
                    continue;
                }
            };
            let name = match device.uuid() {
                Ok(uuid) => format!("{uuid} (index {index})"),
                Err(_) => format!("index {index}"),
            };
            let supported = device
                .supported_event_types()
                .is_ok_and(|types| types.contains(EventTypes::CRITICAL_XID_ERROR));
            if !supported {
                unwatched.push(format!("{name}: XID events are not supported"));
                continue;
            }
            match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
                Ok(kept) => {
                    set = kept;
                    registered.push(index);
                }
                Err(error) => {
                    unwatched.push(format!("{name}: {}", error.error));
                    // NVML frees a set whose registration failed: build it again.
                    set = nvml.create_event_set().map_err(nvml_error)?;
                    for &earlier in &registered {
                        let device = nvml.device_by_index(earlier).map_err(nvml_error)?;
                        set = device
                            .register_events(EventTypes::CRITICAL_XID_ERROR, set)
                            .map_err(|error| nvml_error(error.error))?;
                    }
                }
            }
        }
        Ok((set, unwatched))
    }
}

#[cfg(not(target_os = "linux"))]
mod events {
    use nvml_wrapper::{EventSet, Nvml};

    use crate::error::{Error, Result};

    pub(super) fn register(_nvml: &Nvml) -> Result<(EventSet<'_>, Vec<String>)> {
        Err(Error::Nvml("NVML delivers XID events on Linux only".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_without_nvml_says_so_in_type_and_words() {
        match NvmlProvider::new() {
            // A GPU machine: the inventory must read.
            Ok(provider) => {
                let inventory = provider.inventory().unwrap();
                assert!(!inventory.driver_version.is_empty());
            }
            Err(error) => {
                assert!(matches!(error, Error::NoNvml(_)), "{error:?}");
                assert!(
                    error
                        .to_string()
                        .starts_with(&format!("no NVML on this machine: {LIBRARY}")),
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn init_errors_are_typed() {
        assert!(matches!(
            init_error(NvmlError::DriverNotLoaded),
            Error::NoNvml(_)
        ));
        assert_eq!(
            init_error(NvmlError::NoPermission).to_string(),
            "NVML: the current user does not have permission to perform this operation"
        );
    }

    #[test]
    fn throttle_flags_become_reasons() {
        let flags = ThrottleReasons::SW_POWER_CAP
            | ThrottleReasons::HW_SLOWDOWN
            | ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN;
        assert_eq!(
            throttle_reasons(flags),
            [
                ThrottleReason::SwPowerCap,
                ThrottleReason::HwSlowdown,
                ThrottleReason::HwPowerBrakeSlowdown
            ]
        );
        assert!(throttle_reasons(ThrottleReasons::NONE).is_empty());
    }

    #[test]
    fn nvml_numbers_become_moon_values() {
        assert_eq!(cuda_version(12040), "12.4");
        assert_eq!(cuda_version(11080), "11.8");
        assert_eq!(watts(699_250), 699.25);
        assert_eq!(mig_mode(Ok(1)), MigMode::Enabled);
        assert_eq!(mig_mode(Ok(0)), MigMode::Disabled);
        assert_eq!(mig_mode(Err(NvmlError::NotSupported)), MigMode::Unsupported);
        assert_eq!(
            compute_capability(9, 0),
            Some(ComputeCapability { major: 9, minor: 0 })
        );
        assert_eq!(compute_capability(-1, 0), None);
        assert_eq!(sample_u64(SampleValue::U32(3)), Some(3));
        assert_eq!(sample_u64(SampleValue::I64(-1)), None);
        assert_eq!(xid_number(&XidError::Unknown), 999);
        assert_eq!(xid_number(&XidError::Value(79)), 79);
    }

    #[test]
    fn a_lost_device_is_listed_as_unhealthy() {
        let mut device = unreadable_device(5);
        device.health = classify(&device);
        device.health.add(
            HealthStatus::Unhealthy,
            unreadable_reason(&NvmlError::GpuLost),
        );
        assert_eq!(device.index, 5);
        assert_eq!(device.health.status, HealthStatus::Unhealthy);
        assert_eq!(
            device.health.reasons,
            [
                "NVML cannot reach the device: it has fallen off the bus or is otherwise inaccessible"
            ]
        );
    }

    #[test]
    fn a_flood_of_one_xid_does_not_push_out_another() {
        let mut log = XidLog::default();
        log.record(
            "GPU-a".into(),
            XidEvent {
                xid: 79,
                time_ms: 1,
            },
        );
        for time_ms in 2..100 {
            log.record("GPU-a".into(), XidEvent { xid: 13, time_ms });
        }
        log.record(
            ANY_DEVICE.into(),
            XidEvent {
                xid: 48,
                time_ms: 50,
            },
        );
        let events = log.events("GPU-a");
        assert_eq!(events.len(), 1 + XidWatcher::KEPT_PER_XID + 1);
        assert_eq!(
            events[0],
            XidEvent {
                xid: 79,
                time_ms: 1
            }
        );
        assert!(events.contains(&XidEvent {
            xid: 48,
            time_ms: 50
        }));
        assert_eq!(events.last().unwrap().time_ms, 99);
        assert!(
            events
                .windows(2)
                .all(|pair| pair[0].time_ms <= pair[1].time_ms)
        );
        assert_eq!(
            log.events("GPU-b"),
            [XidEvent {
                xid: 48,
                time_ms: 50
            }]
        );
    }

    #[test]
    fn the_host_name_is_read() {
        assert!(!hostname().is_empty());
    }

    #[test]
    fn providers_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<NvmlProvider>();
        send_sync::<XidWatcher>();
    }
}
