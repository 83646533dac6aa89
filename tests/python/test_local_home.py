"""MOON_HOME belongs to one user and one home instance.

Its directories are 0700 and its files 0600 whatever the submitter's umask; the
agent's socket lives inside it, so another user cannot connect, and the agent
checks each peer's uid besides; a home removed and made anew at the same path
gets an agent of its own, and the old agent leaves.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import _pid_alive, stop_agent

import moon

TENANT = "team"
WAIT_S = 30.0
NOBODY = 65534


def true_job(name: str) -> moon.Job:
    return moon.Job(name, tenant=TENANT, roles=[moon.Role("main", command=["sh", "-c", "echo hi"])])


def agent_pid(home: Path) -> int:
    return int((home / "agent.pid").read_text().split()[0])


def test_the_home_and_everything_in_it_is_private(moon_home: Path) -> None:
    old_umask = os.umask(0o002)  # a notebook's permissive umask must not leak into the home
    try:
        client = moon.Client(home=moon_home)
        client.create_tenant(TENANT)
        client.submit(true_job("private")).wait(timeout=WAIT_S)
    finally:
        os.umask(old_umask)
    checked = 0
    for path in [moon_home, *moon_home.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            assert stat.S_IMODE(mode) == 0o700, f"{path} is {oct(stat.S_IMODE(mode))}"
        else:
            assert stat.S_IMODE(mode) == 0o600, f"{path} is {oct(stat.S_IMODE(mode))}"
        checked += 1
    # The database, its WAL, the socket, a plan, a log and an exit record at least.
    assert checked > 10
    assert (moon_home / "agent.sock").is_socket()


# A client of another uid: connects through a descriptor of the home it was
# handed (its own path to the home's parent directories is closed anyway),
# sends a nudge and prints what came back (a reset is nothing coming back).
FOREIGN_CLIENT = """
import socket, sys
path = f"/proc/self/fd/{sys.argv[1]}/agent.sock"
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(path)
except PermissionError:
    print("connect: permission denied")
    sys.exit(0)
s.settimeout(10)
try:
    s.sendall(b'{"op":"kick"}\\n')
    reply = s.recv(4096)
except (ConnectionResetError, BrokenPipeError):
    reply = b""
print("reply:", repr(reply))
"""


def system_python() -> str:
    """An interpreter another user may run (a virtual environment under /root is not one)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & stat.S_IXOTH:
            return candidate
    pytest.fail("no python3 that another user may run (looked in /usr/bin, /usr/local/bin, /bin)")


def as_nobody(home: Path) -> str:
    directory = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        done = subprocess.run(
            [system_python(), "-c", FOREIGN_CLIENT, str(directory)],
            cwd="/",
            pass_fds=[directory],
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
    finally:
        os.close(directory)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_another_user_cannot_reach_the_agent(moon_home: Path) -> None:
    client = moon.Client(home=moon_home)
    client.create_tenant(TENANT)
    client.submit(true_job("first")).wait(timeout=WAIT_S)

    # The home is 0700: the socket inside it cannot even be reached.
    assert as_nobody(moon_home) == "connect: permission denied"

    # Opened up by hand, the socket takes the connection, but the agent reads
    # the peer's uid and closes it without a word.
    os.chmod(moon_home, 0o711)
    os.chmod(moon_home / "agent.sock", 0o666)
    assert as_nobody(moon_home) == "reply: b''"
    assert f"refused a connection from uid {NOBODY}" in (moon_home / "agent.log").read_text()

    # Its owner is served as before.
    assert client.submit(true_job("second")).wait(timeout=WAIT_S).phase == "Succeeded"


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_home_made_anew_gets_an_agent_of_its_own(moon_home: Path) -> None:
    client = moon.Client(home=moon_home)
    client.create_tenant(TENANT)
    client.submit(true_job("before")).wait(timeout=WAIT_S)
    old_agent = agent_pid(moon_home)

    shutil.rmtree(moon_home)  # the old agent lingers, idle
    try:
        fresh = moon.Client(home=moon_home)
        fresh.create_tenant(TENANT)
        status = fresh.submit(true_job("after")).wait(timeout=WAIT_S)
        assert status.phase == "Succeeded"
        assert agent_pid(moon_home) != old_agent
        assert wait_gone(old_agent), "the agent of the removed home is still running"

        # A client kept from before the reset (a notebook's) works on the new home.
        assert client.job(TENANT, "after").status().phase == "Succeeded"
        assert client.submit(true_job("kept")).wait(timeout=WAIT_S).phase == "Succeeded"
    finally:
        if _pid_alive(old_agent):
            os.kill(old_agent, 9)
        stop_agent(moon_home)


def test_a_home_moved_aside_loses_its_agent(moon_home: Path, tmp_path: Path) -> None:
    client = moon.Client(home=moon_home)
    client.create_tenant(TENANT)
    client.submit(true_job("before")).wait(timeout=WAIT_S)
    old_agent = agent_pid(moon_home)
    moon_home.rename(tmp_path / "moved")
    try:
        assert wait_gone(old_agent), "the agent of a moved home is still running"
        # The client works on the home now at the path: a new one, without the tenant.
        with pytest.raises(moon.NotFound):
            client.submit(true_job("after"))
        client.create_tenant(TENANT)
        assert client.submit(true_job("after")).wait(timeout=WAIT_S).phase == "Succeeded"
    finally:
        if _pid_alive(old_agent):
            os.kill(old_agent, 9)
        stop_agent(moon_home)
