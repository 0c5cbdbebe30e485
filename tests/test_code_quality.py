"""Lint and types, run with the tests so `.ci/run` (the README's test command) keeps them:
ruff over the whole tree, mypy strict on the data layer and clean on the app shell
(configured in pyproject.toml). A failure prints the tool's own findings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_finds_nothing():
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing():
    done = _run("mypy", "data_access", "dashboard")
    assert done.returncode == 0, done.stdout + done.stderr


def test_bandit_finds_nothing():
    """Security lint over the product's code (each reviewed exception is a "nosec" with its reason)."""
    done = _run("bandit", "-c", "pyproject.toml", "-r", "data_access", "dashboard", "pages", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
