"""What the browser tests share: Debian's Chromium, a free port, and signing in through the
test provider's page (tests/oidc_provider.py) as a person would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent


def chromium() -> str:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        reason = f"Debian chromium not available: {result.stderr.strip() or result.stdout.strip()}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(page, origin: str, email: str, *, button: str = "Kirjaudu sisään") -> None:
    """Through the provider's page, as a person would: the button, the address, continue."""
    page.goto(origin)
    page.get_by_role("button", name=button).click()
    page.wait_for_selector("#email", timeout=30_000)
    page.fill("#email", email)
    page.click("#continue")
    page.wait_for_url(f"{origin}/**", timeout=30_000)
    page.wait_for_selector("[data-testid='stSidebar']", timeout=60_000)


def serve(port: int, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The dashboard as `ohjaustaulu run` serves it (the store preloaded and kept by a keeper
    thread) on 127.0.0.1:``port``, with ``env`` added to the environment; returns once it
    listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard.serve", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", *args],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.3)
    process.kill()
    pytest.fail(f"dashboard did not start: {process.stdout.read() if process.stdout else ''}")
