"""Loading files dropped into a folder.

A file is read once it has stopped changing (same size, modification time and inode on two
polls at least ``settle_seconds`` apart), no process has it open for writing and its name does
not look temporary (``.part``, ``.tmp``, ``.partial``, ``.crdownload``, ``~``, or a leading dot,
as rsync writes): those wait, however long.

Whether a process has the file open for writing is read from ``/proc`` (every process's ``fd``
links and ``fdinfo`` flags; about 3 ms for 100 processes). The watcher sees the open files of
every process when it runs as root, otherwise only those of its own user's processes, and it
never sees a writer on another machine. So a settled file counts as closed by its writer only
when the folder is on a local disk and the watcher could read the open files of every process
of the file's owner; then a load that saw no change moves it to ``done/`` at once. Otherwise (a
network share, a file another user wrote, no ``/proc``) a writer that merely paused is
indistinguishable from a finished one: the file is loaded, but stays in the folder until it has
been unchanged for ``done_after_seconds``, and is loaded again whenever it changes (a file that
changes while it is being read is read again too). Loading is idempotent, so the rows of an
earlier, shorter load are stored once. Nothing reaches ``done/`` before a load saw its final
content, so nothing written after that load is lost.

A file whose name the watcher will not read (another suffix such as ``.xlsx``, a compressed
``.csv.gz``, no suffix at all) moves to ``failed/`` with one sentence beside it naming the names
it reads. A county operator looks in ``failed/`` for whatever needs a hand; a file left in the
inbox would be silently ignored for ever, and a message repeated at every poll would bury the
rest. Unpacked or renamed, the file can be dropped in again.

Each load moves its file to ``done/``, or to ``failed/`` with the reason beside it. After a
restart a file still waiting in the folder is loaded again, which stores nothing twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
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

SUFFIXES = (".csv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")
TEMPORARY = (".part", ".tmp", ".partial", ".crdownload", "~")
# A writer on another machine never shows in this machine's /proc.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "afs", "davfs", "fuse", "fuseblk"}


@dataclass(frozen=True)
class Writers:
    """The files of a folder that some process has open for writing, as far as /proc shows."""

    paths: frozenset[str] = frozenset()
    hidden_owners: frozenset[int] = frozenset()  # users with a process whose open files could not be read
    complete: bool = False  # False without /proc or on a network share: any writer may be unseen

    def writing(self, path: Path) -> bool:
        return str(path.resolve()) in self.paths

    def certain(self, owner: int) -> bool:
        """Whether a file of ``owner`` that no seen process has open is really closed."""
        return self.complete and owner not in self.hidden_owners


def scan_writers(folder: Path) -> Writers:
    """Every file under ``folder`` open for writing (write-only or read-write) in a process
    whose open files this process may read."""
    folder = folder.resolve()
    if not Path("/proc/self/fdinfo").is_dir() or _filesystem(folder) in NETWORK_FILESYSTEMS:
        return Writers()
    paths: set[str] = set()
    hidden: set[int] = set()
    for process in os.scandir("/proc"):
        if not process.name.isdigit():
            continue
        try:
            fds = os.listdir(f"{process.path}/fd")
        except PermissionError:
            with contextlib.suppress(OSError):
                hidden.add(process.stat().st_uid)
            continue
        except OSError:  # ended meanwhile
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"{process.path}/fd/{fd}")
                if os.path.dirname(target) == str(folder) and _open_for_writing(f"{process.path}/fdinfo/{fd}"):
                    paths.add(target)
    return Writers(frozenset(paths), frozenset(hidden), complete=True)


def _open_for_writing(fdinfo: str) -> bool:
    with open(fdinfo, encoding="ascii") as handle:
        flags = next((int(line.split()[1], 8) for line in handle if line.startswith("flags:")), 0)
    return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


def _filesystem(folder: Path) -> str:
    """The type of the filesystem ``folder`` is on (its mount point's, from /proc/self/mounts)."""
    best, kind = "", ""
    with contextlib.suppress(OSError), open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 3:
                continue
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1])  # a space is written \040
            if len(point) > len(best) and (str(folder) == point or str(folder).startswith(point.rstrip("/") + "/")):
                best, kind = point, fields[2]
    return kind.split(".")[0]


@dataclass
class _Seen:
    signature: tuple[int, int, int]  # size, modification time (ns), inode
    since: float  # when it was first seen like this
    loaded: bool = False  # a load saw exactly this content


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


@dataclass(frozen=True)
class _Refused:
    reason: str
    retry: bool = False  # the database, not the file: the file stays and is tried again


@dataclass
class Watcher:
    engine: Engine
    folder: Path
    profile: Profile
    kind: str | None = None
    source_system: str | None = None
    settle_seconds: float = 2.0
    done_after_seconds: float = 60.0
    _seen: dict[Path, _Seen] = field(default_factory=dict)

    def poll(self, *, now: float | None = None) -> list[tuple[Path, IngestReport | str]]:
        """Look at the folder once; returns (file, report or message) for each file loaded,
        refused or not reachable in the database."""
        now = time.monotonic() if now is None else now
        results: list[tuple[Path, IngestReport | str]] = []
        writers: Writers | None = None
        present = set()
        for path in sorted(self.folder.iterdir()):
            signature = _signature(path) if self._watched(path) else None
            if signature is None:
                continue
            present.add(path)
            seen = self._seen.get(path)
            if seen is None or seen.signature != signature:
                self._seen[path] = _Seen(signature, since=now)
                continue
            if now - seen.since < self.settle_seconds:
                continue
            writers = writers or scan_writers(self.folder)
            if writers.writing(path):
                continue
            result = self._step(path, seen, writers, now)
            if result is not None:
                results.append((path, result))
        for gone in self._seen.keys() - present:
            del self._seen[gone]
        return results

    def _watched(self, path: Path) -> bool:
        name = path.name
        return path.is_file() and not name.startswith(".") and not name.endswith(TEMPORARY)

    def _step(self, path: Path, seen: _Seen, writers: Writers, now: float) -> IngestReport | str | None:
        """A settled file no seen process is writing: refuse it by its name, load it, or move
        it to ``done/`` once a load saw its final content."""
        if path.suffix.lower() not in SUFFIXES:
            return self._fail(path, _unread_name(path))
        if seen.loaded:
            if self._final(path, seen, writers, now):
                _move(path, self.folder / "done")
            return None
        outcome = self._load(path)
        after = _signature(path)
        if after is None:  # taken away meanwhile
            return outcome.reason if isinstance(outcome, _Refused) else outcome
        if after != seen.signature:
            self._seen[path] = _Seen(after, since=now)
            return outcome if isinstance(outcome, IngestReport) else f"{path}: the file changed while it was read; it is read again once it settles"
        if isinstance(outcome, _Refused):
            if outcome.retry:
                seen.since = now  # settle again before the next try, not every poll
                return outcome.reason
            return self._fail(path, outcome.reason)
        seen.loaded = True
        if self._final(path, seen, writers, now):
            _move(path, self.folder / "done")
        return outcome

    def _final(self, path: Path, seen: _Seen, writers: Writers, now: float) -> bool:
        with contextlib.suppress(OSError):
            if writers.certain(path.stat().st_uid):
                return True
        return now - seen.since >= self.done_after_seconds

    def _load(self, path: Path) -> IngestReport | _Refused:
        """Whatever goes wrong with the file refuses it, and the watcher goes on to the next; a
        database that cannot be reached leaves the file where it is, to be tried again."""
        try:
            return ingest_file(self.engine, path, kind=self.kind, source_system=self.source_system, profile=self.profile)
        except FileError as exc:
            return _Refused(str(exc))
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            return _Refused(f"{path}: the database cannot be reached; the file stays and is tried again ({_first_line(exc)})", retry=True)
        except Exception as exc:  # one poison file must not stop the watcher
            return _Refused(f"{path}: the file could not be loaded ({type(exc).__name__}: {_first_line(exc)})")

    def _fail(self, path: Path, reason: str) -> str:
        self._seen.pop(path, None)
        target = _move(path, self.folder / "failed")
        target.with_name(target.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
        return f"{reason} (moved to failed/)"


def _unread_name(path: Path) -> str:
    what = "is compressed" if path.suffix.lower() in (".gz", ".zip", ".bz2", ".xz", ".zst", ".7z") else "has a name the watch folder does not read"
    return (
        f"{path}: not loaded: the file {what}; the watch folder reads uncompressed files named "
        + ", ".join(f"*{s}" for s in SUFFIXES) + " (a file still being written should be named *.part or *.tmp until it is complete)"
    )


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
