"""Where a server start's seconds go, restart by restart.

    python benchmarks/start_timeline.py --database-url sqlite:////tmp/ohjaustaulu_bench_5000000.sqlite3 --starts 6

Headless Chromium (Debian's package) is started first, as a user's browser is already open.
Then, for each start: `ohjaustaulu run` is started; the health check is polled; the browser
opens the overview, and the times are taken when the page shell, the page title and the first
card appear. The server's own timing log adds when the fact store's preload finished and
when the first page run began and ended. The first start may write the saved snapshot, so
it is reported but left out of the summary. Each start opens the page in a new browser context,
with an empty cache, as on a first visit; with --browser-cache one context is kept, so the
page's scripts (5.4 MB in 140 files, served as immutable for a year) come from the browser's
cache, as they do for a user who opened the dashboard the day before.
Results: benchmarks/results/start_timeline_<database>[_browser_cache].json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from concurrency_benchmark import free_port, start_server, stop_server
from screenshot import CHROMIUM_ARGS

from dashboard.runner import server_environment

PHASES = ("health", "shell", "title", "first_card")


def one_start(browser, port: int, env: dict[str, str], folder: Path, log: Path) -> dict:
    """One server start timed; ``browser`` is a browser context, whose cache may hold the
    page's scripts from an earlier start (--browser-cache)."""
    base = f"http://127.0.0.1:{port}/"
    seen = len(log.read_text().splitlines())
    started_wall, started = time.time(), time.perf_counter()
    server = start_server(port, env, folder / "server.log")
    marks: dict[str, float] = {}
    try:
        while True:
            try:
                with urllib.request.urlopen(base + "_stcore/health", timeout=1) as answer:  # noqa: S310 - http to our own server
                    if answer.status == 200:
                        break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"the server stopped before it answered; see {folder / 'server.log'}") from None
                time.sleep(0.05)
        marks["health"] = time.perf_counter() - started
        page = browser.new_page()
        page.goto(base, timeout=60_000, wait_until="commit")
        for phase, selector in (("shell", "[data-testid='stApp']"), ("title", "h1"), ("first_card", "[data-testid='stMetricValue']")):
            page.wait_for_selector(selector, timeout=120_000)
            marks[phase] = time.perf_counter() - started
        # The server logs the page run when it ends, often after the first card is drawn;
        # closing the page before then would stop the run unlogged.
        deadline = time.perf_counter() + 10
        while True:
            lines = [json.loads(line) for line in log.read_text().splitlines()[seen:]]
            if any("run_ms" in line for line in lines) or time.perf_counter() > deadline:
                break
            time.sleep(0.1)
        page.close()
    finally:
        if server.poll() is None:
            stop_server(server)
    server_side: dict[str, float] = {}
    preload = next((line for line in lines if "preload_started_at" in line), None)
    if preload is not None:
        server_side["store_preloaded"] = preload["at"] - started_wall
    first_run = next((line for line in lines if "run_ms" in line), None)
    if first_run is not None:
        server_side["first_run_began"] = first_run["at"] - first_run["run_ms"] / 1000 - started_wall
        server_side["first_run_ended"] = first_run["at"] - started_wall
    return {name: round(value, 2) for name, value in {**marks, **server_side}.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--starts", type=int, default=6, help="restarts timed after the first start")
    parser.add_argument("--browser-cache", action="store_true", help="keep the browser's cache from start to start")
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], check=True)
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="ohjaustaulu-start-"))
    log = folder / "timing.jsonl"
    log.touch()
    env = {**server_environment(), "OHJAUSTAULU_DATABASE_URL": args.database_url, "OHJAUSTAULU_TIMING_LOG": str(log)}
    port = free_port()
    timelines = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        kept = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="fi-FI")
        for number in range(args.starts + 1):
            context = kept if args.browser_cache else browser.new_context(viewport={"width": 1440, "height": 1000}, locale="fi-FI")
            timeline = one_start(context, port, env, folder, log)
            if context is not kept:
                context.close()
            timelines.append(timeline)
            print(("first start " if number == 0 else f"restart {number}: ") + json.dumps(timeline), flush=True)
            time.sleep(15 if number == 0 else 3)  # the first start may save the snapshot in the background
        browser.close()
    restarts = timelines[1:]
    summary = {
        name: {"median_s": round(statistics.median(values), 2), "min_s": min(values), "max_s": max(values)}
        for name in (*PHASES, "store_preloaded", "first_run_began", "first_run_ended")
        if (values := [t[name] for t in restarts if name in t])
    }
    for name, row in summary.items():
        print(f"{name:>16}: median {row['median_s']:5.2f} s  ({row['min_s']:.2f}–{row['max_s']:.2f})")
    database = args.database_url.split(":")[0].split("+")[0]
    out = ROOT / "benchmarks" / "results" / f"start_timeline_{database}{'_browser_cache' if args.browser_cache else ''}.json"
    out.write_text(json.dumps({
        "database": database, "browser_cache": args.browser_cache, "first_start": timelines[0], "restarts": restarts,
        "summary": summary,
    }, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
