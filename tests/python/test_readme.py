"""The README's Python tour runs as written (its output directory aside)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def test_the_readme_tour_runs(moon_home: Path, tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    tour = python_blocks((REPO_ROOT / "README.md").read_text())[0]
    assert '"/tmp/models"' in tour, "the tour no longer writes models where this test expects"
    script = tmp_path / "tour.py"
    script.write_text(tour.replace('"/tmp/models"', repr(str(tmp_path / "models"))))
    env = {**os.environ, "MOON_HOME": str(moon_home)}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("[worker-1] ") for line in lines), done.stdout
    phase, exit_codes = lines[-1].split(" ", 1)
    assert phase == "Succeeded"
    assert "'worker-0': 0, 'worker-1': 0" in exit_codes, lines[-1]
    models = sorted(path.name for path in (tmp_path / "models").iterdir())
    assert models == ["model-0.json", "model-1.json"]
