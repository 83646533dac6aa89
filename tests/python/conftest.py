"""Shared fixtures for the Python and CLI tests.

Fixtures:
    moon_home     a fresh, empty directory set as MOON_HOME for the test; any moon
                  agent recorded in ``<home>/agent.pid`` is stopped at teardown
    moon_bin      path of the ``moon`` binary under test (MOON_TEST_BIN, else
                  ``<repo>/target/release/moon``); the test fails if it is missing
    crash_agent   path of ``moon-crash-agent``, moon's agent with its crash points built in
                  (MOON_TEST_CRASH_AGENT, else ``<repo>/target/release/moon-crash-agent``);
                  the test fails if it is missing
    run_cli       ``run_cli(*args, home, input=None, timeout=60)`` runs the binary with
                  MOON_HOME=home and returns the CompletedProcess (text mode, captured)
    invalid_specs every entry of tests/data/invalid_specs.yaml

A test that takes an ``invalid_spec`` argument is run once per entry of
tests/data/invalid_specs.yaml, with the entry's name as the test id.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, Union
from urllib.parse import urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "tests" / "data"
INVALID_SPECS_FILE = DATA_DIR / "invalid_specs.yaml"
AGENT_PID_FILE = "agent.pid"
AGENT_STOP_GRACE_S = 5.0

Arg = Union[str, "os.PathLike[str]", int]


# --------------------------------------------------------------------------- binary


def resolve_moon_bin() -> Path:
    """The ``moon`` binary under test: $MOON_TEST_BIN, else <repo>/target/release/moon."""
    env = os.environ.get("MOON_TEST_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "release" / "moon"


@pytest.fixture(scope="session")
def moon_bin() -> Path:
    path = resolve_moon_bin()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"moon binary not found or not executable: {path}\n"
            "build it with `cargo build --release -p moon-cli` or set MOON_TEST_BIN",
            pytrace=False,
        )
    return path


def resolve_crash_agent() -> Path:
    """The agent with crash points: $MOON_TEST_CRASH_AGENT, else
    <repo>/target/release/moon-crash-agent."""
    env = os.environ.get("MOON_TEST_CRASH_AGENT")
    return Path(env) if env else REPO_ROOT / "target" / "release" / "moon-crash-agent"


@pytest.fixture(scope="session")
def crash_agent() -> Path:
    """Only this agent kills itself where a crash test arms a crash point: the ``moon`` that
    ships has no crash points."""
    path = resolve_crash_agent()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"crash agent not found or not executable: {path}\n"
            "build it with `cargo build --release -p moon-crash-agent --features crash-points`"
            " or set MOON_TEST_CRASH_AGENT",
            pytrace=False,
        )
    return path


# --------------------------------------------------------------------------- MOON_HOME


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie.

    A zombie child of this process is left for its owner (e.g. a ``Popen``) to reap."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0:1]
    return state != ["Z"]


def _belongs_to_home(pid: int, home: Path) -> bool:
    """Guard against a recycled pid: the process must mention ``home`` or be a moon program."""
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc to ask; trust the pid file
    home_s = os.fsencode(str(home))
    try:
        if b"MOON_HOME=" + home_s + b"\0" in (proc / "environ").read_bytes() + b"\0":
            return True
    except OSError:
        pass
    try:
        cmdline = (proc / "cmdline").read_bytes()
        # The program's name, not its path: an interpreter in a venv under ~/.cache/moon is
        # not a moon program.
        if home_s in cmdline or b"moon" in os.path.basename(cmdline.split(b"\0", 1)[0]):
            return True
    except OSError:
        pass
    try:
        return "moon" in os.path.basename(os.readlink(proc / "exe"))
    except OSError:
        return False


def stop_proxy(home: Path) -> None:
    """Stop the services' proxy of ``home``, which outlives its agent by design."""
    try:
        record = json.loads((home / "proxy.json").read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return
    pid = record.get("pid")
    if isinstance(pid, int) and pid > 1 and _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_agent(home: Path, grace: float = AGENT_STOP_GRACE_S) -> int | None:
    """Stop the agent whose pid is in ``<home>/agent.pid``: SIGTERM, wait up to ``grace``
    seconds, then SIGKILL. Returns the pid that was signalled, or None."""
    pid_file = home / AGENT_PID_FILE
    try:
        text = pid_file.read_text().split()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not text or not text[0].isdigit():
        return None
    pid = int(text[0])
    if pid <= 1 or pid == os.getpid() or not _pid_alive(pid) or not _belongs_to_home(pid, home):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return pid
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    return pid


@pytest.fixture
def moon_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "moon-home"
    home.mkdir()
    monkeypatch.setenv("MOON_HOME", str(home))
    try:
        yield home
    finally:
        stop_agent(home)
        stop_proxy(home)


# --------------------------------------------------------------------------- CLI


def _arg(value: Arg) -> str:
    return str(value) if isinstance(value, int) else os.fspath(value)


def run_moon(
    binary: Path,
    *args: Arg,
    home: str | os.PathLike[str],
    input: str | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``binary *args`` with MOON_HOME=home; output is captured as text, never checked."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    full_env["MOON_HOME"] = os.fspath(home)
    return subprocess.run(
        [os.fspath(binary), *(_arg(a) for a in args)],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        stdin=None if input is not None else subprocess.DEVNULL,
        check=False,
    )


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli(moon_bin: Path) -> RunCli:
    """``run_cli(*args, home, input=None, timeout=60, env=None, cwd=None)``."""

    def run(
        *args: Arg,
        home: str | os.PathLike[str],
        input: str | None = None,
        timeout: float = 60,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_moon(moon_bin, *args, home=home, input=input, timeout=timeout, env=env, cwd=cwd)

    return run


# --------------------------------------------------------------------------- services

# A service's replica, run with ``sys.executable -c``: it answers every GET with its pid
# on $PORT (HTTP/1.1, keep-alive) and prints where it listens.
PID_SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print("listening on", os.environ["PORT"], flush=True)
server.serve_forever()
"""


# --------------------------------------------------------------------------- storage bed


def bed_value(variable: str) -> str:
    """A variable the storage test bed's env.sh sets; the test fails, saying how, without it."""
    value = os.environ.get(variable)
    if not value:
        pytest.fail(
            f"{variable} is not set: start the storage test bed with scripts/storage/up.sh "
            "and source its env.sh (the storage tier of scripts/test.sh does both)",
            pytrace=False,
        )
    return value


def bed_address(variable: str) -> str:
    """``host:port`` of one of the storage test bed's servers, from the variable its env.sh sets."""
    return urlsplit(bed_value(variable)).netloc


# --------------------------------------------------------------------------- invalid specs


def load_invalid_specs(path: Path = INVALID_SPECS_FILE) -> list[dict[str, Any]]:
    """Entries of tests/data/invalid_specs.yaml, checked for shape."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty list of entries")
    seen: set[str] = set()
    for i, entry in enumerate(data):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: not a mapping")
        missing = {"name", "kind", "spec", "errors"} - entry.keys()
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        name = entry["name"]
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: name must be a non-empty string")
        if name in seen:
            raise ValueError(f"{where}: duplicate name {name!r}")
        seen.add(name)
        if not isinstance(entry["kind"], str):
            raise ValueError(f"{where} ({name}): kind must be a string")
        if not isinstance(entry["spec"], dict):
            raise ValueError(f"{where} ({name}): spec must be a mapping")
        errors = entry["errors"]
        if (
            not isinstance(errors, list)
            or not errors
            or not all(isinstance(e, str) for e in errors)
        ):
            raise ValueError(f"{where} ({name}): errors must be a non-empty list of strings")
    return data


@pytest.fixture(scope="session")
def invalid_specs() -> list[dict[str, Any]]:
    return load_invalid_specs()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "invalid_spec" in metafunc.fixturenames:
        entries = load_invalid_specs()
        metafunc.parametrize("invalid_spec", entries, ids=[e["name"] for e in entries])
