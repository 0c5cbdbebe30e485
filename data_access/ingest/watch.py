"""Loading files dropped into a folder.

A file is read only once it has stopped changing (same size and modification time on
two polls at least ``settle_seconds`` apart) and does not look like a temporary file, so a
half-written file is never read. Each processed file moves to ``done/`` or ``failed/``
(with the reason beside it); after a restart nothing is loaded twice, because processed
files are gone from the folder and loading is idempotent anyway.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from data_access.ingest.pipeline import IngestReport, ingest_file
from data_access.ingest.profiles import Profile
from data_access.ingest.reading import FileError

SUFFIXES = {".csv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".pq"}
TEMPORARY = (".part", ".tmp", ".partial", ".crdownload", "~")


@dataclass
class Watcher:
    engine: Engine
    folder: Path
    profile: Profile
    kind: str | None = None
    source_system: str | None = None
    settle_seconds: float = 2.0
    _seen: dict[Path, tuple[int, float, float]] = field(default_factory=dict)

    def poll(self, *, now: float | None = None) -> list[tuple[Path, IngestReport | str]]:
        """Process every file that has settled; returns (file, report or error message)."""
        now = time.monotonic() if now is None else now
        results = []
        for path in sorted(self.folder.iterdir()):
            if not self._candidate(path):
                continue
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime)
            previous = self._seen.get(path)
            if previous is None or previous[:2] != signature:
                self._seen[path] = (*signature, now)
                continue
            if now - previous[2] < self.settle_seconds:
                continue
            del self._seen[path]
            results.append((path, self._process(path)))
        return results

    def _candidate(self, path: Path) -> bool:
        name = path.name
        return (
            path.is_file() and not name.startswith(".") and not name.endswith(TEMPORARY)
            and path.suffix.lower() in SUFFIXES
        )

    def _process(self, path: Path) -> IngestReport | str:
        """Load one file. Whatever goes wrong with the file moves it to ``failed/`` with its
        reason and the watcher goes on to the next; a database that cannot be reached leaves
        the file where it is, to be tried again."""
        try:
            report = ingest_file(self.engine, path, kind=self.kind, source_system=self.source_system, profile=self.profile)
        except FileError as exc:
            return self._fail(path, str(exc))
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            return f"{path}: the database cannot be reached; the file stays and is tried again ({_first_line(exc)})"
        except Exception as exc:  # one poison file must not stop the watcher
            return self._fail(path, f"{path}: the file could not be loaded ({type(exc).__name__}: {_first_line(exc)})")
        _move(path, self.folder / "done")
        return report

    def _fail(self, path: Path, reason: str) -> str:
        target = _move(path, self.folder / "failed")
        target.with_name(target.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
        return reason


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no message"


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(str(path), target)
    return target


def watch(watcher: Watcher, *, interval: float = 1.0, until: Callable[[], bool] = lambda: False,
          report: Callable[[Path, IngestReport | str], None] = lambda p, r: None) -> None:
    while not until():
        for path, result in watcher.poll():
            report(path, result)
        time.sleep(interval)
