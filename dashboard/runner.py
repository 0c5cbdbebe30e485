"""Starting the dashboard server from the command line: ``ohjaustaulu run``.

Shared by the entry point (dashboard/launch.py, which runs it before the data layer is
imported) and the CLI's parser (dashboard/cli.py, which lists it); neither imports the other.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays data)."""
    print(message, file=sys.stderr, flush=True)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=int(os.environ.get("OHJAUSTAULU_PORT", "8501")))
    parser.add_argument("--address", default="localhost")
    parser.add_argument("--secrets", help="the sign-in secrets file (TOML with an [auth] section; docs/deployment.md)")


def server_environment() -> dict[str, str]:
    """polars' allocator (jemalloc) keeps freed pages unless told to give them back: after
    loading 5 million contacts the server held 1.97 GB resident without this, 1.14 GB with it."""
    env = dict(os.environ)
    env.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0")
    # glibc's malloc gives each thread that allocates at once an arena of its own (up to 8 per
    # core); every session renders on its own thread.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def server_command(args: argparse.Namespace) -> list[str]:
    """The server's command line: our interpreter, the address, and the sign-in secrets file."""
    return [
        sys.executable, "-m", "dashboard.serve", "--server.port", str(args.port), "--server.address", args.address,
        *(["--secrets.files", str(Path(args.secrets).resolve())] if getattr(args, "secrets", None) else []),
    ]


def run(args: argparse.Namespace) -> int:
    command = server_command(args)
    say(f"Ohjaustaulu: http://{args.address}:{args.port}")
    # The server replaces this process: one process to stop, and no idle launcher holding
    # memory. It prepares the database (and creates the sample data on a first run) before
    # it listens, and stops with one plain sentence when the database cannot be used.
    os.chdir(ROOT)
    # Our own interpreter and module, no shell.
    os.execve(sys.executable, command, server_environment())  # noqa: S606  # nosec B606
