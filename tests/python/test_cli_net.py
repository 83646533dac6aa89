"""``moon net check|matrix``: network policies asked who may reach whom, over the files of
``examples/network/`` (docs/network.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from conftest import RunCli

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "network" / "policies.yaml"
PODS = ROOT / "examples" / "network" / "pods.yaml"
ALLOWED, DENIED, INVALID_INPUT = 0, 1, 2


def net(
    run_cli: RunCli, home: Path, *args: str, policies: Path = POLICIES
) -> subprocess.CompletedProcess[str]:
    return run_cli("net", *args, "-f", policies, "--pods", PODS, home=home)


def test_check_names_the_deciding_rules_and_exits_by_the_answer(
    run_cli: RunCli, moon_home: Path
) -> None:
    allowed = net(
        run_cli, moon_home, "check", "--from", "shop/api", "--to", "shop/db", "--port", "5432"
    )
    assert allowed.returncode == ALLOWED, allowed.stderr
    assert allowed.stdout.splitlines() == [
        "allowed: shop/api -> shop/db",
        "  out of shop/api: allowed by Calico NetworkPolicy shop/api-egress rule egress[0]"
        " in tier default",
        "  into shop/db: allowed by NetworkPolicy shop/db-from-api rule ingress[0] in tier default"
        " (after tier security passed it on)",
    ]
    denied = net(
        run_cli,
        moon_home,
        "check",
        "--from",
        "analytics/notebook",
        "--to",
        "shop/db",
        "--port",
        "5432",
    )
    assert denied.returncode == DENIED
    assert denied.stderr == ""
    assert (
        "into shop/db: denied by Calico GlobalNetworkPolicy security.no-analytics-to-databases"
        " rule ingress[0] in tier security" in denied.stdout
    )


def test_an_address_is_matched_through_its_network_set(run_cli: RunCli, moon_home: Path) -> None:
    paid = net(
        run_cli, moon_home, "check", "--from", "shop/api", "--to", "198.51.100.7", "--port", "443"
    )
    assert paid.returncode == ALLOWED, paid.stdout
    elsewhere = net(
        run_cli, moon_home, "check", "--from", "shop/api", "--to", "203.0.113.9", "--port", "443"
    )
    assert elsewhere.returncode == DENIED
    assert "denied, Calico NetworkPolicy shop/api-egress selects shop/api" in elsewhere.stdout


def test_check_prints_the_verdict_as_json(run_cli: RunCli, moon_home: Path) -> None:
    result = run_cli(
        "-o", "json", "net", "check", "--from", "shop/web", "--to", "shop/db", "--port", "5432",
        "-f", POLICIES, "--pods", PODS, home=moon_home,
    )  # fmt: skip
    assert result.returncode == DENIED
    verdict = json.loads(result.stdout)
    assert verdict["allowed"] is False
    assert verdict["egress"] == {"allowed": True, "reason": {"kind": "notIsolated"}}
    assert verdict["ingress"]["reason"]["kind"] == "endOfTier"
    assert verdict["ingress"]["reason"]["tier"] == "default"
    assert verdict["ingress"]["passed"] == ["security"]


def test_matrix_shows_who_reaches_a_tenant(run_cli: RunCli, moon_home: Path) -> None:
    result = run_cli(
        "-o", "json", "net", "matrix", "shop", "--port", "5432", "-f", POLICIES, "--pods", PODS,
        home=moon_home,
    )  # fmt: skip
    assert result.returncode == ALLOWED, result.stderr
    table = json.loads(result.stdout)
    assert table["to"] == ["shop/web", "shop/api", "shop/db"]
    assert table["from"] == ["shop/web", "shop/api", "shop/db", "analytics/notebook"]
    into_db = [row[2] for row in table["allowed"]]
    assert into_db == [False, True, False, False]
    text = net(run_cli, moon_home, "matrix", "shop", "--port", "5432")
    assert text.returncode == ALLOWED
    assert text.stdout.startswith("TCP/5432 into shop")


def test_a_malformed_selector_is_refused_with_its_field_and_column(
    run_cli: RunCli, moon_home: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkPolicy",
                "metadata": {"name": "typo", "namespace": "shop"},
                "spec": {"ingress": [{"action": "Allow", "source": {"selector": "app == web"}}]},
            }
        )
    )
    result = net(
        run_cli,
        moon_home,
        "check",
        "--from",
        "shop/web",
        "--to",
        "shop/db",
        "--port",
        "80",
        policies=broken,
    )
    assert result.returncode == INVALID_INPUT
    assert (
        "Calico NetworkPolicy shop/typo: spec.ingress[0].source.selector (column 8):"
        " expected a quoted string" in result.stderr
    )
    unknown = net(
        run_cli, moon_home, "check", "--from", "shop/nobody", "--to", "shop/db", "--port", "80"
    )
    assert unknown.returncode == INVALID_INPUT
    assert '"shop/nobody" is neither a pod' in unknown.stderr
