"""GPU placement in plain Python: the reference that moon's placement is measured against.

The same definition as moon-gpu's `placement::cluster::place`, written the most straightforward
way: for each pod, in order, look at every node.

- Filters: the model (a run of the node's label words spells a model asked for), the memory per
  GPU, the compute capability, the node's health, and at least as many free GPUs as the pod asks.
- Score, lowest first: the free GPUs left after the pod (tightest fit), then untouched nodes (all
  GPUs free) after nodes in use, then the node's name, then its position in the list.
- The chosen node's free GPUs go down by the pod's count before the next pod.

Selectors are strings in moon's syntax (`"H100:2"`, `"80GB+:1"`, `"A100|H100:4"`, `"cc9.0+:1"`,
`"2"`); nodes are dicts with `name`, `model`, `memoryMib`, `computeCapability` (`{"major": 9,
"minor": 0}` or None), `gpusTotal`, `gpusFree` and `healthy`, as `moon._native.place_gpus` takes
them.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

MIB = 1024 * 1024


class Selector(NamedTuple):
    count: int
    models: tuple[str, ...]
    min_memory_mib: int | None
    min_capability: tuple[int, int] | None


def parse_selector(text: str) -> Selector:
    """Parses the selector forms moon accepts; raises ValueError on others."""
    constraints, _, count = text.rpartition(":")
    models: tuple[str, ...] = ()
    memory = None
    capability = None
    for term in constraints.split(",") if constraints else []:
        term = term.strip()
        lower = term.lower()
        if lower.endswith("+") and lower.startswith(("cc", "sm")):
            digits = lower[2:-1]
            if "." in digits:
                major, minor = digits.split(".", 1)
            elif len(digits) >= 2:
                major, minor = digits[:-1], digits[-1]
            else:
                major, minor = digits, "0"
            capability = (int(major), int(minor))
        elif lower.endswith("gib+"):
            memory = math.ceil(float(lower[:-4]) * 1024.0)
        elif lower.endswith("gb+"):
            memory = math.ceil(float(lower[:-3]) * (1_000_000_000 / MIB))
        else:
            models = tuple(model.strip() for model in term.split("|"))
    return Selector(int(count), models, memory, capability)


def _alphanumeric_upper(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isalnum()).upper()


@functools.cache
def model_matches(wanted: str, name: str) -> bool:
    """Whether a run of consecutive words of `name` spells `wanted` (case ignored)."""
    wanted = _alphanumeric_upper(wanted)
    if not wanted:
        return False
    words = []
    word = ""
    for c in name:
        if c.isascii() and c.isalnum():
            word += c.upper()
        elif word:
            words.append(word)
            word = ""
    if word:
        words.append(word)
    for start in range(len(words)):
        run = ""
        for word in words[start:]:
            run += word
            if len(run) >= len(wanted):
                if run == wanted:
                    return True
                break
    return False


def passes_filters(pod: Selector, node: dict[str, Any], free: int) -> bool:
    if pod.models and not any(model_matches(wanted, node["model"]) for wanted in pod.models):
        return False
    if pod.min_memory_mib is not None and node["memoryMib"] < pod.min_memory_mib:
        return False
    if pod.min_capability is not None:
        capability = node["computeCapability"]
        if capability is None or (capability["major"], capability["minor"]) < pod.min_capability:
            return False
    return node["healthy"] and free >= pod.count


def place(nodes: list[dict[str, Any]], pods: list[str]) -> list[str | None]:
    """Each pod's node name, or None where it fits nowhere."""
    free = [node["gpusFree"] for node in nodes]
    placed: list[str | None] = []
    for text in pods:
        pod = parse_selector(text)
        best = None
        best_score = None
        for at, node in enumerate(nodes):
            if not passes_filters(pod, node, free[at]):
                continue
            score = (free[at] - pod.count, free[at] >= node["gpusTotal"], node["name"], at)
            if best_score is None or score < best_score:
                best, best_score = at, score
        if best is None:
            placed.append(None)
        else:
            free[best] -= pod.count
            placed.append(nodes[best]["name"])
    return placed
