"""Server start, memory and data time with 1 and with 20 browser sessions on the live overview.

    python benchmarks/concurrency_benchmark.py --database-url sqlite:////tmp/ohjaustaulu_bench_5000000.sqlite3

1. Starts the dashboard (`ohjaustaulu run`) on the given database and times server start
   to the first rendered overview in headless Chromium (Debian's package).
2. Keeps 1, then N, sessions on the overview for a while, with a contact written every two
   seconds so the pages' live refresh keeps rerunning them. Sessions are websocket clients
   that do what the browser does for this page (protocol_sessions.py; `--clients browser`
   for headless Chromium pages, which on a 2-core machine starve the server of CPU).
3. The server logs each page run's data time (OHJAUSTAULU_TIMING_LOG); the benchmark
   prints medians and 95th percentiles for each phase, page errors and the server's
   resident memory. Results go to benchmarks/results/concurrency_<database>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshot import CHROMIUM_ARGS, wait_until_rendered

from dashboard.runner import server_environment
from data_access.engine import create_db_engine
from tests.factories import add_contacts

BENCHMARK_USER = "benchmark@example.fi"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resident_mb(pid: int) -> float:
    """Resident memory of the process and its children (the Streamlit server runs as a child)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            pending += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def spread(values) -> tuple[float | None, float | None]:
    """Median and 95th percentile, or None for no values."""
    ordered = sorted(values)
    return (statistics.median(ordered), percentile(ordered, 0.95)) if ordered else (None, None)


def writer(url: str, stop: threading.Event) -> None:
    engine = create_db_engine(url)
    while not stop.wait(2.0):
        add_contacts(engine, [{"occurred_at": dt.datetime.now(dt.UTC), "municipality_code": "091", "channel": "chat"}])


def writing(url: str, seconds: float) -> float:
    """Write a contact every two seconds for ``seconds``; returns when writing began."""
    started = time.time()
    stop = threading.Event()
    thread = threading.Thread(target=writer, args=(url, stop), daemon=True)
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return started


def summarise(sessions: int, log: Path, started: float, errors: int) -> dict:
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    runs = [run for run in lines if run["at"] >= started and "data_ms" in run]
    keeper = [line for line in lines if line["at"] >= started and "keeper" in line]
    data, store, run_time, queued = (spread(run[field] for run in runs) for field in ("data_ms", "store_ms", "run_ms", "queued_ms"))
    return {
        "sessions": sessions, "page_runs": len(runs),
        "median_ms": data[0], "p95_ms": data[1],
        "store_refresh_median_ms": store[0], "store_refresh_p95_ms": store[1],
        "page_errors": errors,
        # runs that computed a result themselves (a miss) or waited for another thread's
        "runs_computing": sum(1 for run in runs if run.get("computed")),
        "runs_waiting": sum(1 for run in runs if run.get("waited_ms")),
        "versions_published": len(keeper),
        "keeper_prepare_median_ms": spread(k["prepare_ms"] for k in keeper)[0],
        "keeper_prepare_max_ms": max((k["prepare_ms"] for k in keeper), default=None),
        # the whole page run (data and drawing), which the sessions' users wait for
        "run_median_ms": run_time[0], "run_p95_ms": run_time[1],
        # and before it, waiting for its turn (OHJAUSTAULU_PAGE_RUNS_AT_ONCE)
        "queued_median_ms": queued[0], "queued_p95_ms": queued[1],
        "page_runs_at_once": os.environ.get("OHJAUSTAULU_PAGE_RUNS_AT_ONCE", "2 (default)"),
        # where the data time went: each data function's time per page run
        "calls": {
            name: dict(zip(("median_ms", "p95_ms"), spread(run.get("calls", {}).get(name, 0.0) for run in runs), strict=True))
            for name in sorted({name for run in runs for name in run.get("calls", {})})
        },
    }


def protocol_phase(base: str, sessions: int, seconds: float, log: Path, url: str, cookies: dict[str, str] | None) -> dict:
    """``sessions`` websocket sessions without browsers (protocol_sessions.py), with a
    signed-in browser's ``cookies`` when sign-in is on."""
    from protocol_sessions import ProtocolSessions

    clients = ProtocolSessions(base.replace("http://", "ws://") + "_stcore/stream", sessions, cookies)
    clients.start()
    clients.wait_for_first_runs(timeout=300)
    started = writing(url, seconds)
    clients.stop()
    seen = clients.summary()
    outcome = summarise(sessions, log, started, seen["page_exceptions"] + len(seen["connection_errors"]))
    return {**outcome, "clients": "protocol", **seen}


def phase(browser, base: str, sessions: int, seconds: float, log: Path, url: str, state: dict | None) -> dict:
    errors: list[str] = []
    contexts, pages = [], []
    for _ in range(sessions):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=state)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(base, timeout=120_000)
        contexts.append(context)
        pages.append(page)
    for page in pages:
        wait_until_rendered(page, timeout_ms=180_000)
    started = writing(url, seconds)
    exceptions = sum(page.locator('[data-testid="stException"]').count() for page in pages)
    for context in contexts:
        context.close()
    return {**summarise(sessions, log, started, len(errors) + exceptions), "clients": "browser"}


def start_server(port: int, env: dict[str, str], log: Path, secrets: Path | None) -> subprocess.Popen:
    with log.open("a", encoding="utf-8") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "dashboard", "run", "--port", str(port), "--address", "127.0.0.1",
             *(["--secrets", str(secrets)] if secrets else [])],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )


def stop_server(server: subprocess.Popen) -> None:
    """Stop `ohjaustaulu run` and the Streamlit server it started (one process group)."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:  # seen with 20 sessions still connected: not a result
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def signed_in_setup(url: str, port: int, folder: Path):
    """Sign-in as a county runs it, against the tests' local OpenID Connect provider
    (tests/oidc_provider.py): the provider started, its secrets file written, and the
    benchmark's person an administrator of every county. PostgreSQL shows figures only to
    signed-in users."""
    from tests.factories import admin_of_every_county
    from tests.oidc_provider import Provider, secrets_toml

    provider = Provider().start()
    secrets = folder / "secrets.toml"
    secrets.write_text(secrets_toml(provider, app_port=port), encoding="utf-8")
    engine = create_db_engine(url)
    admin_of_every_county(engine, BENCHMARK_USER, name="Benchmark")
    engine.dispose()
    return provider, secrets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="how long the N sessions are measured")
    parser.add_argument(
        "--single-seconds", type=float, default=180,
        help="how long the single session is measured: one session reruns once per refresh, and "
             "the 95th percentile of 6 runs (60 s) is their largest",
    )
    parser.add_argument("--refresh", type=float, default=10)  # the product default
    parser.add_argument("--start-only", action="store_true", help="only time the two server starts")
    parser.add_argument(
        "--clients", choices=("protocol", "browser"), default="protocol",
        help="sessions as websocket clients without a browser (default; 20 headless browsers take "
             "both cores of a 2-core machine) or as headless Chromium pages",
    )
    parser.add_argument(
        "--sign-in", action=argparse.BooleanOptionalAction, default=None,
        help="sessions signed in through a local test provider (default: on for PostgreSQL, which requires it)",
    )
    parser.add_argument("--out", type=Path, help="the results file (default benchmarks/results/concurrency_<database>.json)")
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], check=True)
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="ohjaustaulu-concurrency-"))
    log = folder / "timing.jsonl"
    log.touch()
    port = free_port()
    env = {
        **server_environment(), "OHJAUSTAULU_DATABASE_URL": args.database_url, "OHJAUSTAULU_TIMING_LOG": str(log),
        "OHJAUSTAULU_REFRESH_SECONDS": str(args.refresh),
    }
    base = f"http://127.0.0.1:{port}/"
    results: dict = {"database": args.database_url.split(":")[0].split("+")[0], "refresh_seconds": args.refresh}
    print(f"server output: {folder / 'server.log'}", flush=True)
    server = None
    signing_in = args.sign_in if args.sign_in is not None else results["database"] == "postgresql"
    provider, secrets = signed_in_setup(args.database_url, port, folder) if signing_in else (None, None)
    if signing_in:
        env["OHJAUSTAULU_SIGN_IN"] = "true"
        results["signed_in"] = True
    state = None
    try:
        with sync_playwright() as p:
            # Twenty pages in one headless browser: without these, Chromium throttles the timers
            # of pages it considers in the background, and their live refresh stops.
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                *CHROMIUM_ARGS, "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
            ])
            # First start (the saved snapshot may not exist yet), then a restart, which is
            # what a server sees every morning after the first.
            for start in ("first_start", "restart"):
                if server is not None:
                    time.sleep(15)  # let the background snapshot save finish
                    stop_server(server)
                started = time.perf_counter()
                server = start_server(port, env, folder / "server.log", secrets)
                # One browser context for both starts: signed in at the first (the provider's
                # round trip is in that start's time), its cookie still valid after the restart.
                context = browser.new_context(storage_state=state)
                page = context.new_page()
                for _ in range(3000):
                    try:
                        page.goto(base, timeout=5_000)
                        break
                    except Exception:
                        time.sleep(0.2)
                if signing_in and state is None:
                    page.get_by_role("button", name="Kirjaudu sisään").click(timeout=600_000)
                    page.wait_for_selector("#email", timeout=30_000)
                    page.fill("#email", BENCHMARK_USER)
                    page.click("#continue")
                page.wait_for_selector('[data-testid="stMetricValue"]', timeout=600_000)
                if signing_in:
                    state = context.storage_state()
                results[f"{start}_to_first_page_s"] = round(time.perf_counter() - started, 1)
                print(f"{start}: server start to first rendered overview {results[f'{start}_to_first_page_s']} s", flush=True)
                context.close()
            cookies = {cookie["name"]: cookie["value"] for cookie in state["cookies"]} if state else None
            for sessions in () if args.start_only else (1, args.sessions):
                seconds = args.single_seconds if sessions == 1 else args.seconds
                if args.clients == "browser":
                    outcome = phase(browser, base, sessions, seconds, log, args.database_url, state)
                else:
                    outcome = protocol_phase(base, sessions, seconds, log, args.database_url, cookies)
                outcome["server_resident_mb"] = round(resident_mb(server.pid))
                results[f"sessions_{sessions}"] = outcome
                print(json.dumps(outcome), flush=True)
            browser.close()
    finally:
        if server is not None:
            stop_server(server)
        if provider is not None:
            provider.stop()
    if args.start_only:
        print(json.dumps(results))
        return
    one, many = results["sessions_1"], results[f"sessions_{args.sessions}"]
    if one["p95_ms"] and many["p95_ms"]:
        results["p95_ratio"] = round(many["p95_ms"] / one["p95_ms"], 2)
        print(f"p95 data time {args.sessions} sessions / 1 session: {results['p95_ratio']}")
    results["clients"] = args.clients
    out = args.out or ROOT / "benchmarks" / "results" / f"concurrency_{results['database']}{'' if args.clients == 'protocol' else '_browser'}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
