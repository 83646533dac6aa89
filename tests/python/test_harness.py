"""Tests of the shared fixtures in conftest.py (no moon binary needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import _pid_alive, load_invalid_specs, resolve_moon_bin, stop_agent


def _spawn(home: Path, code: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, MOON_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env)
    (home / "agent.pid").write_text(f"{proc.pid}\n")
    return proc


def _wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def test_moon_home_is_fresh_and_exported(moon_home: Path) -> None:
    assert moon_home.is_dir()
    assert list(moon_home.iterdir()) == []
    assert os.environ["MOON_HOME"] == str(moon_home)


def test_stop_agent_without_pid_file(tmp_path: Path) -> None:
    assert stop_agent(tmp_path) is None


def test_stop_agent_ignores_garbage_pid_file(tmp_path: Path) -> None:
    (tmp_path / "agent.pid").write_text("not a pid\n")
    assert stop_agent(tmp_path) is None


def test_stop_agent_terminates(tmp_path: Path) -> None:
    marker = tmp_path / "got-sigterm"
    proc = _spawn(
        tmp_path,
        f"""
        import pathlib, signal, sys, time
        def on_term(*_):
            pathlib.Path({str(marker)!r}).touch()
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        pathlib.Path({str(tmp_path / "ready")!r}).touch()
        time.sleep(60)
        """,
    )
    _wait_for(tmp_path / "ready")
    assert stop_agent(tmp_path) == proc.pid
    assert not _pid_alive(proc.pid)
    assert marker.exists()
    assert proc.wait(timeout=5) == 0


def test_stop_agent_kills_after_grace(tmp_path: Path) -> None:
    proc = _spawn(
        tmp_path,
        f"""
        import signal, time
        import pathlib
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pathlib.Path({str(tmp_path / "ready")!r}).touch()
        time.sleep(60)
        """,
    )
    _wait_for(tmp_path / "ready")
    start = time.monotonic()
    assert stop_agent(tmp_path, grace=0.5) == proc.pid
    assert 0.5 <= time.monotonic() - start < 5
    assert not _pid_alive(proc.pid)
    assert proc.wait(timeout=5) == -signal.SIGKILL


def test_stop_agent_leaves_unrelated_process(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MOON_HOME"}
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    try:
        (tmp_path / "agent.pid").write_text(str(proc.pid))
        assert stop_agent(tmp_path) is None
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_resolve_moon_bin_prefers_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOON_TEST_BIN", str(tmp_path / "moon"))
    assert resolve_moon_bin() == tmp_path / "moon"
    monkeypatch.delenv("MOON_TEST_BIN")
    assert resolve_moon_bin().parts[-3:] == ("target", "release", "moon")


def test_invalid_specs_file_is_well_formed(invalid_specs: list[dict[str, object]]) -> None:
    assert invalid_specs == load_invalid_specs()
    assert {e["kind"] for e in invalid_specs} <= {"job", "tenant", "service"}


def test_load_invalid_specs_rejects_bad_shape(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  kind: job\n  spec: {}\n  errors: []\n")
    with pytest.raises(ValueError, match="errors must be"):
        load_invalid_specs(bad)
    bad.write_text("- {name: x, kind: job, spec: {}, errors: ['a: b']}\n" * 2)
    with pytest.raises(ValueError, match="duplicate name"):
        load_invalid_specs(bad)
