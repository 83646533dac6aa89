"""docs/storage.md's Python and command-line examples run as written.

Examples that name servers (``seaweedfs://``, ``hdfs://``) are compiled, not run: the same
calls on the storage test bed are in test_storage_bed.py and test_cli_fs.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "storage.md"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.DOTALL)


def needs_servers(code: str) -> bool:
    """Whether the code names a server (a comment's ``seaweedfs://...`` does not)."""
    return re.search(r"(seaweedfs|hdfs)://\w", code) is not None


def test_the_python_examples_run(tmp_path: Path) -> None:
    examples = blocks(section("Python"), "python")
    assert len(examples) >= 2, "docs/storage.md lost its Python examples"
    ran = 0
    for i, code in enumerate(examples):
        compile(code, f"docs/storage.md python block {i}", "exec")
        if needs_servers(code):
            continue
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"block {i}:\n{code}\n{done.stderr}"
        ran += 1
    assert ran >= 1


def test_the_command_line_example_runs(moon_bin: Path, tmp_path: Path) -> None:
    example = blocks(section("The command line"), "sh")[0]
    assert not needs_servers(example)
    env = {**os.environ, "PATH": f"{moon_bin.parent}{os.pathsep}{os.environ['PATH']}"}
    env["MOON_HOME"] = str(tmp_path / "home")
    script = "set -euo pipefail\n" + example
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "runs/7/metrics.json"
    assert lines[1] == "copied 1 object(s), 14 bytes"
    assert lines[2] == '{"loss": 0.25}' or lines[2].startswith('{"loss": 0.25}')
    assert '"bytes": 14' in done.stdout
    assert lines[-1].startswith("removed 1 object(s) at file://")
    assert (tmp_path / "data" / "runs" / "7" / "metrics.json").exists()
    assert not (tmp_path / "backup" / "runs").exists()
