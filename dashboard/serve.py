"""The dashboard server: Streamlit, with the fact store already loading.

Streamlit runs the app only when the first browser connects; loading the store then adds
its seconds to the first page. Here a thread starts loading it as the process starts, while
Streamlit boots and the browser connects (dashboard/state.py picks it up).

    python -m dashboard.serve [streamlit options]      (what `ohjaustaulu run` starts)
"""

from __future__ import annotations

import sys
from pathlib import Path

from dashboard.state import start_preload

APP = Path(__file__).resolve().parent / "app.py"


def main() -> int:
    start_preload()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    raise SystemExit(main())
