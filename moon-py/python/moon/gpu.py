"""This machine's GPUs: what NVML says about each, and its health.

:func:`gpus` reads them from NVML, or from the file ``MOON_GPU_INVENTORY``
names (YAML or JSON, in the schema ``moon gpu ls -o yaml`` prints) on a
machine without NVIDIA's driver. These are the GPUs the local backend runs
jobs on. There is no ``Client.gpus()``: a Kubernetes cluster's GPUs are its
nodes', which ``moon gpu labels`` (or NVIDIA's GPU Feature Discovery) labels
for the scheduler.

A value a device does not report (ECC counters with ECC off, a temperature
from a GPU that fell off the bus) is ``None``, never a made-up zero. Health is
``"healthy"``, ``"degraded"`` (usable, but look at it) or ``"unhealthy"``
(give it no new work); ``reasons`` say why, one sentence per rule that fired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import _native
from .status import _time

__all__ = ["GpuCounters", "GpuDevice", "GpuHealth", "GpuInventory", "XidEvent", "gpus"]

HEALTH_ORDER = ("healthy", "degraded", "unhealthy")
"""Health statuses from best to worst."""


@dataclass(frozen=True)
class GpuHealth:
    """A device's health: how it stands, and why."""

    status: str
    """``healthy``, ``degraded`` or ``unhealthy``."""
    reasons: list[str]
    """One sentence per rule that fired (``"XID 79: GPU has fallen off the bus"``);
    empty when healthy."""

    @property
    def usable(self) -> bool:
        """Whether the device can take work: healthy or degraded."""
        return self.status != "unhealthy"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuHealth:
        return cls(status=data["status"], reasons=list(data.get("reasons", [])))


@dataclass(frozen=True)
class XidEvent:
    """An XID error: the driver's report that something went wrong on a GPU."""

    xid: int
    time: datetime


@dataclass(frozen=True)
class GpuCounters:
    """The error counters and events that tell a failing GPU from a sound one.

    Volatile counters count since the driver loaded, aggregate ones over the
    device's lifetime."""

    ecc_volatile_uncorrected: int | None
    ecc_volatile_corrected: int | None
    ecc_aggregate_uncorrected: int | None
    ecc_aggregate_corrected: int | None
    retired_pages_single_bit: int | None
    retired_pages_double_bit: int | None
    retired_pages_pending: bool | None
    remapped_rows_correctable: int | None
    remapped_rows_uncorrectable: int | None
    remapping_pending: bool | None
    remapping_failed: bool | None
    xid_errors: list[XidEvent]
    """XID errors seen by a process watching for them, oldest first."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuCounters:
        return cls(
            ecc_volatile_uncorrected=data.get("eccVolatileUncorrected"),
            ecc_volatile_corrected=data.get("eccVolatileCorrected"),
            ecc_aggregate_uncorrected=data.get("eccAggregateUncorrected"),
            ecc_aggregate_corrected=data.get("eccAggregateCorrected"),
            retired_pages_single_bit=data.get("retiredPagesSingleBit"),
            retired_pages_double_bit=data.get("retiredPagesDoubleBit"),
            retired_pages_pending=data.get("retiredPagesPending"),
            remapped_rows_correctable=data.get("remappedRowsCorrectable"),
            remapped_rows_uncorrectable=data.get("remappedRowsUncorrectable"),
            remapping_pending=data.get("remappingPending"),
            remapping_failed=data.get("remappingFailed"),
            xid_errors=[
                XidEvent(xid=event["xid"], time=_time(event["timeMs"]))
                for event in data.get("xidErrors", [])
            ],
        )


@dataclass(frozen=True)
class GpuDevice:
    """One GPU."""

    index: int
    """NVML's index (PCI bus order)."""
    uuid: str
    """``GPU-5e1b...``, stable across reboots; what ``CUDA_VISIBLE_DEVICES`` takes."""
    name: str
    """The product name (``NVIDIA H100 80GB HBM3``)."""
    memory_total_mib: int
    memory_used_mib: int
    memory_free_mib: int
    compute_capability: tuple[int, int] | None
    """``(9, 0)`` for Hopper."""
    mig_mode: str
    """``disabled``, ``enabled`` or ``unsupported``."""
    pci_bus_id: str
    utilization_gpu_percent: int | None
    utilization_memory_percent: int | None
    temperature_c: int | None
    temperature_slowdown_c: int | None
    temperature_shutdown_c: int | None
    temperature_max_operating_c: int | None
    power_watts: float | None
    power_limit_watts: float | None
    throttle_reasons: list[str]
    """Why the clocks are held down now (``sw-power-cap``, ``hw-thermal-slowdown``...)."""
    counters: GpuCounters
    health: GpuHealth

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuDevice:
        capability = data.get("computeCapability")
        return cls(
            index=data["index"],
            uuid=data["uuid"],
            name=data["name"],
            memory_total_mib=data["memoryTotalMib"],
            memory_used_mib=data.get("memoryUsedMib", 0),
            memory_free_mib=data.get("memoryFreeMib", 0),
            compute_capability=(
                None if capability is None else (capability["major"], capability["minor"])
            ),
            mig_mode=data.get("migMode", "disabled"),
            pci_bus_id=data.get("pciBusId", ""),
            utilization_gpu_percent=data.get("utilizationGpuPercent"),
            utilization_memory_percent=data.get("utilizationMemoryPercent"),
            temperature_c=data.get("temperatureC"),
            temperature_slowdown_c=data.get("temperatureSlowdownC"),
            temperature_shutdown_c=data.get("temperatureShutdownC"),
            temperature_max_operating_c=data.get("temperatureMaxOperatingC"),
            power_watts=data.get("powerWatts"),
            power_limit_watts=data.get("powerLimitWatts"),
            throttle_reasons=list(data.get("throttleReasons", [])),
            counters=GpuCounters.from_dict(data.get("counters", {})),
            health=GpuHealth.from_dict(data.get("health", {"status": "healthy"})),
        )


@dataclass(frozen=True)
class GpuInventory:
    """The GPUs of one machine and the driver that runs them."""

    hostname: str
    driver_version: str
    """``550.54.15``."""
    cuda_version: str | None
    """The newest CUDA the driver supports (``12.4``)."""
    nvml_version: str
    devices: list[GpuDevice]
    """In NVML's index order."""

    def device(self, uuid: str) -> GpuDevice | None:
        """The device with this UUID (``GPU-...``), if there is one."""
        return next((device for device in self.devices if device.uuid == uuid), None)

    @property
    def usable(self) -> list[GpuDevice]:
        """The devices that can take work: healthy or degraded."""
        return [device for device in self.devices if device.health.usable]

    @property
    def worst_health(self) -> str | None:
        """The worst status of any device; ``None`` without devices."""
        statuses = [HEALTH_ORDER.index(device.health.status) for device in self.devices]
        return HEALTH_ORDER[max(statuses)] if statuses else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuInventory:
        return cls(
            hostname=data.get("hostname", ""),
            driver_version=data.get("driverVersion", ""),
            cuda_version=data.get("cudaVersion"),
            nvml_version=data.get("nvmlVersion", ""),
            devices=[GpuDevice.from_dict(device) for device in data.get("devices", [])],
        )


def gpus() -> GpuInventory:
    """This machine's GPUs, each with its health, as ``moon gpu ls -o json`` prints them.

    From the file ``MOON_GPU_INVENTORY`` names, else from NVML.

    Raises:
        GpuError: No NVML here and no ``MOON_GPU_INVENTORY`` (``kind`` is
            ``"no-nvml"``), NVML failed (``"nvml"``), or the file cannot be
            used (``"inventory"``).
    """
    return GpuInventory.from_dict(json.loads(_native.gpu_inventory()))
