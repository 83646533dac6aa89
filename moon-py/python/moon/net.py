"""Network policies, asked who may reach whom and which rule says so.

Policies are Kubernetes NetworkPolicies and Calico ``projectcalico.org/v3`` policies, network
sets and tiers, as mappings or as YAML/JSON text; pods as a mapping (or text) with
``namespaces``, ``pods`` and ``serviceAccounts`` (docs/network.md)::

    import moon

    verdict = moon.net.check(policies, pods, "shop/web", "shop/db", port=5432)
    if not verdict.allowed:
        print(verdict.explanation)
    table = moon.net.matrix(policies, pods, "shop", port=5432)

The evaluator runs in Rust, without the GIL; errors raise :class:`moon.InvalidPolicy` with the
field path and, for selectors and CIDRs, the column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from . import _native

__all__ = ["Decision", "Matrix", "Verdict", "check", "matrix"]

Policies = Union[str, Sequence[Mapping[str, Any]]]
Pods = Union[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Decision:
    """One direction's answer: egress at the source, ingress at the destination.

    Attributes:
        allowed: Whether this direction lets the traffic through.
        reason: Why, as the evaluator says it: ``{"kind": "rule", "policy": {...}, "tier": ...,
            "rule": 0, "action": "Allow"}``, ``{"kind": "endOfTier", ...}``,
            ``{"kind": "notIsolated"}``, ``{"kind": "passedToProfile"}`` or
            ``{"kind": "notAPod"}``.
        passed: The tiers that passed the traffic on, in order.
    """

    allowed: bool
    reason: Mapping[str, Any]
    passed: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(data["allowed"], data["reason"], tuple(data.get("passed", ())))


@dataclass(frozen=True)
class Verdict:
    """May the source reach the destination: both directions' decisions.

    Attributes:
        allowed: True when both directions allow it.
        egress: The decision at the source.
        ingress: The decision at the destination.
        explanation: The verdict in plain words, one line per direction.
    """

    allowed: bool
    egress: Decision
    ingress: Decision
    explanation: str

    def __bool__(self) -> bool:
        return self.allowed

    def __str__(self) -> str:
        return self.explanation


@dataclass(frozen=True)
class Matrix:
    """Who may reach a tenant's pods: ``allowed[i][j]`` for ``sources[i]`` to ``targets[j]``."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    allowed: tuple[tuple[bool, ...], ...]

    def __str__(self) -> str:
        width = max((len(s) for s in self.sources), default=0)
        lines = [" " * width + "  " + "  ".join(self.targets)]
        for name, row in zip(self.sources, self.allowed):
            cells = "  ".join(("." if a else "X").center(len(t)) for a, t in zip(row, self.targets))
            lines.append(f"{name:>{width}}  {cells}")
        return "\n".join(lines)


def _text(value: Policies | Pods) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check(
    policies: Policies,
    pods: Pods,
    source: str,
    destination: str,
    *,
    port: int,
    protocol: str = "tcp",
) -> Verdict:
    """May ``source`` reach ``destination`` (``namespace/pod`` or an IP address) on ``port``?

    Args:
        policies: Policy objects, or YAML/JSON text of them (a ``---`` stream or a ``List``).
        pods: ``{"namespaces": [...], "pods": [...], "serviceAccounts": [...]}``, or its text.
        source: Where the connection starts.
        destination: Where it goes.
        port: The destination port.
        protocol: ``tcp``, ``udp`` or ``sctp``.

    Raises:
        moon.InvalidPolicy: A policy, selector, CIDR or port that is not valid, or a peer that
            is neither a pod given nor an address.
    """
    policies_text = policies if isinstance(policies, str) else json.dumps(list(policies))
    data = json.loads(
        _native.net_check(policies_text, _text(pods), source, destination, port, protocol)
    )
    return Verdict(
        allowed=data["allowed"],
        egress=Decision.from_dict(data["egress"]),
        ingress=Decision.from_dict(data["ingress"]),
        explanation=data["explanation"],
    )


def matrix(
    policies: Policies, pods: Pods, tenant: str, *, port: int, protocol: str = "tcp"
) -> Matrix:
    """Who may reach the pods of ``tenant``: every pod given, to each of the tenant's."""
    policies_text = policies if isinstance(policies, str) else json.dumps(list(policies))
    data = json.loads(_native.net_matrix(policies_text, _text(pods), tenant, port, protocol))
    return Matrix(
        sources=tuple(data["from"]),
        targets=tuple(data["to"]),
        allowed=tuple(tuple(row) for row in data["allowed"]),
    )
