"""The ``moon`` console script: runs the ``moon`` program bundled with this package."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

__all__ = ["bundled_program", "main"]


def bundled_program() -> Path:
    """Where the wheel puts the ``moon`` program: ``moon/bin/moon``."""
    return Path(__file__).resolve().parent / "bin" / "moon"


def main() -> NoReturn:
    program = bundled_program()
    if not (program.is_file() and os.access(program, os.X_OK)):
        # Searching PATH instead could find this very script and loop forever.
        sys.stderr.write(
            f"moon: the bundled program {program} is missing; this installation of "
            "moon-ml was built without it (reinstall a released wheel)\n"
        )
        sys.exit(127)
    # Replacing the interpreter leaves the program's exit status, signals and
    # terminal handling exactly as if it had been run directly.
    os.execv(program, ["moon", *sys.argv[1:]])
