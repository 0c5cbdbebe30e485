"""A contact written while the overview is open in a browser: seconds until the page shows it.

    python benchmarks/live_update_browser.py --database-url sqlite:////tmp/ohjaustaulu_bench_5000000.sqlite3 [--writes 6]

Starts `ohjaustaulu run` on the database, opens the overview in headless Chromium (Debian's
package), then writes one contact at a time (occurred now, so "today so far" counts it) at a
random moment of the refresh interval and times, from the write's commit, how long until the
first card's figure on the page changes. The target (issue 5): the refresh interval plus one
second. Results go to benchmarks/results/live_update_browser_<database>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshot import CHROMIUM_ARGS, wait_until_rendered

from dashboard.runner import server_environment
from data_access.engine import create_db_engine
from tests.factories import add_contacts


def first_card(page) -> str:
    return page.locator('[data-testid="stMetricValue"]').first.inner_text()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--writes", type=int, default=6)
    parser.add_argument("--refresh", type=float, default=10)
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], check=True)
    from playwright.sync_api import sync_playwright

    port = 8500 + random.randrange(400)
    env = {**server_environment(), "OHJAUSTAULU_DATABASE_URL": args.database_url, "OHJAUSTAULU_REFRESH_SECONDS": str(args.refresh)}
    output = Path(tempfile.mkdtemp(prefix="ohjaustaulu-live-")) / "server.log"
    with output.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "run", "--port", str(port), "--address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    engine = create_db_engine(args.database_url)
    with engine.connect() as conn:  # a municipality of the county, so the overview counts it
        municipality = conn.execute(sa.text("select code from municipality order by code limit 1")).scalar()
    seconds: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="fi-FI")
            for _ in range(600):
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5_000)
                    break
                except Exception:
                    time.sleep(0.2)
            wait_until_rendered(page, timeout_ms=300_000)
            for n in range(args.writes):
                time.sleep(random.uniform(0, args.refresh))  # anywhere in the refresh cycle
                before = first_card(page)
                add_contacts(engine, [{"occurred_at": dt.datetime.now(dt.UTC), "municipality_code": municipality, "channel": "chat"}])
                written = time.perf_counter()
                while first_card(page) == before:
                    if time.perf_counter() - written > 4 * args.refresh:
                        raise SystemExit(f"write {n + 1}: the page still shows {before} after {4 * args.refresh:.0f} s")
                    time.sleep(0.05)
                seconds.append(round(time.perf_counter() - written, 2))
                print(f"write {n + 1}: {before} -> {first_card(page)} after {seconds[-1]} s", flush=True)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    result = {
        "database": args.database_url.split(":")[0].split("+")[0], "refresh_seconds": args.refresh,
        "seconds": seconds, "median_s": statistics.median(seconds), "max_s": max(seconds),
        "target_s": args.refresh + 1,
    }
    print(json.dumps(result))
    out = ROOT / "benchmarks" / "results" / f"live_update_browser_{result['database']}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
