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

from data_access.bootstrap import prepare_database
from data_access.config import get_settings
from data_access.engine import DatabaseNeedsUpgrade, DatabaseUnavailable
from dashboard.launch import say
from dashboard.state import start_preload

APP = Path(__file__).resolve().parent / "app.py"
SWITCH_INTERVAL_SECONDS = 0.0005


def _prepare_the_first_page_run() -> None:
    """Do, while Streamlit boots and the browser loads the page shell (a time the server
    mostly waits), what the first page run would otherwise do first and only once: import
    what it renders with and load the data it looks up. At 5 M contacts the first overview
    run took 1.6 s against 0.09 s for later ones; of that, a sampling profile (py-spy) found
    0.45 s importing pandas and pyarrow (st.dataframe converts through them), 0.3 s Altair
    importing narwhals' polars support, 0.2 s Streamlit's one-time inspect.stack() at the
    first element, 0.14 s numpy.ma, 0.12 s the holiday calendars, 0.1 s babel's Finnish
    locale data (docs/performance.md)."""
    import datetime as dt
    import importlib
    import inspect
    import pkgutil

    import dashboard

    for module in ("altair", "pandas", "pyarrow", "numpy.ma"):
        importlib.import_module(module)
    # Every module the pages use: all of the dashboard's but the app script itself (importing
    # it would run the app) and the command line's.
    for module in pkgutil.iter_modules(dashboard.__path__):
        if module.name not in ("__main__", "app", "cli"):
            importlib.import_module(f"dashboard.{module.name}")
    import narwhals.stable.v1 as narwhals
    import polars as pl

    from dashboard.formatting import format_number
    from data_access.periods import is_holiday

    narwhals.from_native(pl.DataFrame({"a": [1]}), eager_only=True)
    for language in ("fi", "sv", "en"):
        format_number(1234.5, decimals=1, language=language)
    is_holiday(dt.date.today())
    # inspect keeps a map of module files; filled here, the first element's stack walk is short.
    inspect.stack()


def main() -> int:
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    # Before listening: a first run creates the sample data here (with its progress on the
    # terminal), and a database that cannot be used stops the server with one sentence.
    try:
        engine = prepare_database(get_settings(), progress=say)
    except (DatabaseNeedsUpgrade, DatabaseUnavailable, ValueError) as exc:
        say(f"ohjaustaulu: {exc}")
        return 2
    start_preload(engine)
    threading.Thread(target=_prepare_the_first_page_run, name="first-run-preparation", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    raise SystemExit(main())
