"""Screenshot dashboard pages in headless Debian Chromium: python scripts/screenshot.py URL OUT.png [...]"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def wait_until_rendered(page, *, timeout_ms: int = 90_000, settle_ms: int = 6000) -> None:
    """Wait for a page title and for the script run to finish (no running indicator)."""
    page.wait_for_selector("h1", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(settle_ms)


def shoot(pairs: list[tuple[str, str]], *, width: int = 1440, height: int = 1000) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height}, locale="fi-FI")
        for url, out in pairs:
            page.goto(url)
            page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
            wait_until_rendered(page)
            page.screenshot(path=out, full_page=True)
            print(out)
        browser.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    shoot(list(zip(args[0::2], args[1::2], strict=True)))
