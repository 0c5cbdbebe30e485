"""What the browser tests share: Debian's Chromium, a free port, and signing in through the
test provider's page (tests/oidc_provider.py) as a person would."""

from __future__ import annotations

import socket
import subprocess
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


def sign_in(page, origin: str, email: str) -> None:
    """Through the provider's page, as a person would: the button, the address, continue."""
    page.goto(origin)
    page.get_by_role("button", name="Kirjaudu sisään").click()
    page.wait_for_selector("#email", timeout=30_000)
    page.fill("#email", email)
    page.click("#continue")
    page.wait_for_url(f"{origin}/**", timeout=30_000)
    page.wait_for_selector("[data-testid='stSidebar']", timeout=60_000)
