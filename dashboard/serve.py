"""The dashboard server: Streamlit, with the fact store already loading.

Streamlit runs the app only when the first browser connects; loading the store then adds
its seconds to the first page. Here a thread starts loading it as the process starts, while
Streamlit boots and the browser connects (dashboard/state.py picks it up).

Every session's script runs on a thread of its own, and twenty sessions on the live overview
rerun within the same second. With Python's default 5 ms switch interval a short data lookup
that gives up the interpreter lock waits behind other sessions' rendering each time: at
5 M contacts and 20 sessions the data time was median 33 ms / p95 122 ms with 5 ms, 11 ms /
27 ms with 0.5 ms (docs/performance.md).

    python -m dashboard.serve [streamlit options]      (what `ohjaustaulu run` starts)
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from dashboard.runner import say
from dashboard.state import start_preload
from data_access.bootstrap import prepare_database
from data_access.config import get_settings
from data_access.engine import DatabaseNeedsUpgrade, DatabaseUnavailable
from sample_data.seed import seed_first_run

APP = Path(__file__).resolve().parent / "app.py"
SWITCH_INTERVAL_SECONDS = 0.0005


def _import_the_pages_modules() -> None:
    """Import what the first page run renders with (Altair, the dashboard's sections and
    charts: about a second on this machine) while Streamlit boots and the browser loads the
    page shell, a time the server mostly waits; the first page run then finds them imported."""
    import importlib

    for module in ("altair", "dashboard.charts", "dashboard.presenters", "dashboard.components", "dashboard.sections",
                   "dashboard.overview", "dashboard.filters", "dashboard.export", "dashboard.report"):
        importlib.import_module(module)


def main() -> int:
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    # Before listening: a first run creates the sample data here (with its progress on the
    # terminal), and a database that cannot be used stops the server with one sentence.
    try:
        settings = get_settings()
        if not settings.sign_in and not settings.demo_allowed:
            say("ohjaustaulu: a PostgreSQL database is shown only to signed-in users: configure sign-in "
                "(docs/deployment.md) and set OHJAUSTAULU_SIGN_IN=true")
            return 2
        engine = prepare_database(settings)
        seed_first_run(engine, settings, progress=say)
    except (DatabaseNeedsUpgrade, DatabaseUnavailable, ValueError) as exc:
        say(f"ohjaustaulu: {exc}")
        return 2
    start_preload(engine)
    threading.Thread(target=_import_the_pages_modules, name="page-imports", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    raise SystemExit(main())
