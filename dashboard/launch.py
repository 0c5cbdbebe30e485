"""The ``ohjaustaulu`` command's entry point.

``run`` replaces this process with the dashboard server (dashboard/serve.py, through
dashboard/runner.py) before the data layer is imported: the server imports it and prepares
the database anyway, and doing both here first cost a restart 1.3-1.9 s
(docs/performance.md). Every other command goes to dashboard/cli.py.
"""

from __future__ import annotations

import argparse
import sys

from dashboard.runner import add_run_arguments, run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        parser = argparse.ArgumentParser(prog="ohjaustaulu run", description="start the dashboard")
        add_run_arguments(parser)
        return run(parser.parse_args(argv[1:]))
    from dashboard.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
