"""The fact rows older than the store's recent window, on disk: one uncompressed Arrow file
per frame and local month, read lazily when a question reaches back that far.

Why: the store held every row in memory, about 105 MB per million contacts; the largest
county's three years (15 million contacts) needed 1.8 GB and each further year as much
again. Now memory holds the last ``memory_days`` (a setting) and a period reaching earlier
scans the months it needs from these files: polars reads only the columns and months a
question uses, through the operating system's file cache, which keeps what is read often
and gives it back under pressure (docs/performance.md, "Memory").

The rows in the files are the store's own derived rows, in time order, so a figure over
any period is computed by the same code from the same rows, whichever side of the window
they lie on (tests/test_history.py compares both on random data). A row is moved to the
files only once it is final: older than the verified-resolution window, so no later
contact changes it. A change that reaches a moved row (a correction, a referral naming an
old contact, a late row) brings the months from there back into memory, where the change
is applied as before, and the store moves them out again (snapshot.py).

A ``History`` is immutable: moving or bringing back months makes a new one, so a page
reading an older view keeps its files (they are deleted a while after they are retired).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

FRAMES = ("contacts", "referrals", "feedback")
KEY = ["source_system", "contact_id"]
log = logging.getLogger(__name__)


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Part:
    """One frame's rows of one local month."""

    month: dt.date
    path: Path
    rows: int
    max_id: int


@dataclass(frozen=True)
class History:
    """Every frame's rows with a local day before ``until``, as monthly parts."""

    folder: Path | None = None
    until: dt.date | None = None
    parts: dict[str, tuple[Part, ...]] = field(default_factory=lambda: {name: () for name in FRAMES})
    # What is asked of the parts again and again (newest rows, pending keys, absent keys),
    # kept with this immutable value.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def rows(self, name: str) -> int:
        return sum(part.rows for part in self.parts[name])

    def max_id(self, name: str) -> int:
        return max((part.max_id for part in self.parts[name]), default=-1)

    @property
    def empty(self) -> bool:
        return not any(self.parts.values())

    def intact(self) -> bool:
        """Whether every part's file is still there (someone may clean the folder)."""
        return all(part.path.is_file() for parts in self.parts.values() for part in parts)

    def scan(self, name: str, start: dt.date | None = None, end: dt.date | None = None) -> pl.LazyFrame | None:
        """The rows of ``name`` with a local day in [start, end] (either open), lazily; None
        when no part holds such days."""
        chosen = [
            part for part in self.parts[name]
            if (end is None or part.month <= end) and (start is None or next_month(part.month) > start)
        ]
        if not chosen:
            return None
        lazy = pl.scan_ipc([str(part.path) for part in chosen])
        if start is not None and start > chosen[0].month:
            lazy = lazy.filter(pl.col("day") >= start)
        if end is not None and end < next_month(chosen[-1].month) - dt.timedelta(days=1):
            lazy = lazy.filter(pl.col("day") <= end)
        return lazy

    def newest(self, name: str, columns: list[str], time: str) -> pl.DataFrame:
        """The newest ``time`` per value of ``columns`` (as strings) in the parts."""
        key = ("newest", name, *columns)
        if key not in self.memo:
            lazy = self.scan(name)
            self.memo[key] = (
                pl.DataFrame(schema={**dict.fromkeys(columns, pl.String), "newest": pl.Datetime("us", "UTC")}) if lazy is None
                else lazy.group_by(columns).agg(pl.col(time).max().alias("newest")).with_columns(pl.col(columns).cast(pl.String)).collect()
            )
        found: pl.DataFrame = self.memo[key]
        return found

    def pending(self, name: str, missing: pl.Expr) -> pl.DataFrame:
        """Keys and days of rows of ``name`` (referrals, feedback) whose contact was not found
        when they were derived (``missing``): a contact arriving later must reach them."""
        key = ("pending", name)
        if key not in self.memo:
            lazy = self.scan(name)
            self.memo[key] = (
                pl.DataFrame(schema={"source_system": pl.Categorical, "contact_id": pl.String, "day": pl.Date}) if lazy is None
                else lazy.filter(missing).select(*KEY, "day").collect()
            )
            self.memo[("missing", name)] = missing
        found: pl.DataFrame = self.memo[key]
        return found

    def lookup(self, keys: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """The contacts with ``keys`` (source system, contact id) found in the parts, with
        ``columns``. Keys looked for and not found are remembered: a referral waiting for its
        contact is derived again at every refresh of the recent rows."""
        lazy = self.scan("contacts")
        assert lazy is not None, "looked up in a history without contacts"
        absent: set[str] = self.memo.setdefault(("absent",), set())
        tag = pl.concat_str(pl.col("source_system").cast(pl.String), pl.col("contact_id"), separator="\x1f")
        wanted = keys.filter(~tag.is_in(list(absent))) if absent else keys
        if wanted.is_empty():
            return lazy.select(*KEY, *columns).head(0).collect()
        found = (
            lazy.filter(pl.col("contact_id").is_in(wanted["contact_id"].implode()))
            .select(*KEY, *columns)
            .collect()
            .join(wanted, on=KEY, how="semi")
        )
        absent.update(set(wanted.select(tag).to_series().to_list()) - set(found.select(tag).to_series().to_list()))
        return found

    def read(self, name: str, since: dt.date) -> list[pl.DataFrame]:
        """The rows of the parts from month ``since`` on, in time order."""
        return [pl.read_ipc(part.path) for part in self.parts[name] if part.month >= since]

    def without(self, since: dt.date) -> tuple[History, list[Path]]:
        """This history without the months from ``since`` on, and the files that leaves out."""
        kept = {name: tuple(p for p in parts if p.month < since) for name, parts in self.parts.items()}
        dropped = [p.path for parts in self.parts.values() for p in parts if p.month >= since]
        until = None if self.until is None else min(self.until, since)
        return History(self.folder, until, kept), dropped

    def with_rows(self, frames: dict[str, pl.DataFrame], until: dt.date) -> History:
        """This history with ``frames`` (rows before ``until``, none of them in a part yet)
        written as parts; ``until`` becomes the new edge."""
        assert self.folder is not None
        if any(not frame.is_empty() for frame in frames.values()):
            self.folder.mkdir(parents=True, exist_ok=True)
        parts = {name: list(found) for name, found in self.parts.items()}
        for name, frame in frames.items():
            if frame.is_empty():
                continue
            months = frame["day"].dt.truncate("1mo")
            bounds = [*months.search_sorted(months.unique(maintain_order=True), side="left").to_list(), frame.height]
            for start, stop in itertools.pairwise(bounds):
                rows = frame.slice(start, stop - start)
                month = months[start]
                path = self.folder / f"{name}-{month:%Y-%m}-{uuid.uuid4().hex[:10]}.arrow"
                rows.write_ipc(path, compression="uncompressed")
                parts[name].append(Part(month, path, rows.height, _max_id(rows)))
        grown = History(self.folder, until, {name: tuple(sorted(found, key=lambda p: p.month)) for name, found in parts.items()})
        # The pending rows known of this history, and those among the rows added, are the
        # grown history's: a first read adds a quarter at a time, and reading every part
        # again for them cost 4.5 s over a 15 M first read, more with each quarter.
        for name in FRAMES:
            if ("pending", name) in self.memo:
                missing = self.memo[("missing", name)]
                added = frames.get(name)
                pending = self.memo[("pending", name)]
                if added is not None and not added.is_empty():
                    pending = pl.concat([pending, added.filter(missing).select(*KEY, "day")], how="vertical_relaxed")
                grown.memo[("pending", name)], grown.memo[("missing", name)] = pending, missing
        return grown

    def manifest(self) -> dict[str, Any]:
        """What a saved snapshot records of this history (file names relative to it)."""
        return {
            "until": None if self.until is None else self.until.isoformat(),
            "parts": {name: [[p.month.isoformat(), p.path.name, p.rows, p.max_id] for p in parts] for name, parts in self.parts.items()},
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], source: Path, folder: Path) -> History:
        """The history a snapshot recorded, its files linked from ``source`` into ``folder``
        (a hard link: no copy; the snapshot can be replaced while this store reads them)."""
        folder.mkdir(parents=True, exist_ok=True)
        parts: dict[str, tuple[Part, ...]] = {}
        for name in FRAMES:
            found = []
            for month, file_name, rows, max_id in manifest["parts"][name]:
                link(source / file_name, folder / file_name)
                found.append(Part(dt.date.fromisoformat(month), folder / file_name, int(rows), int(max_id)))
            parts[name] = tuple(found)
        until = manifest["until"]
        return cls(folder, None if until is None else dt.date.fromisoformat(until), parts)


def _max_id(frame: pl.DataFrame) -> int:
    value = frame["id"].max()
    return int(value) if isinstance(value, int) else -1


def link(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source``, or a copy where links are not possible."""
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def split(frame: pl.DataFrame, until: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` (in time order, with a local ``day``) as the rows before ``until`` and the rest."""
    if frame.is_empty():
        return frame, frame
    at = frame["day"].search_sorted(until, side="left")
    return frame.slice(0, at), frame.slice(at)


class Folder:
    """This process's folder of history files, under the snapshot folder. Folders left by
    processes that have ended are removed; files retired by the store are removed a while
    later (a page may still be reading an older view)."""

    GRACE_SECONDS = 600.0

    def __init__(self, root: Path) -> None:
        self.root = root / "live"
        self.path = self.root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._retired: list[tuple[float, Path]] = []
        self._swept = False

    def retire(self, paths: list[Path]) -> None:
        now = time.monotonic()
        self._retired += [(now, path) for path in paths]
        kept = []
        for since, path in self._retired:
            if now - since >= self.GRACE_SECONDS:
                path.unlink(missing_ok=True)
            else:
                kept.append((since, path))
        self._retired = kept

    def sweep(self) -> None:
        """Remove the folders of processes that are no longer running (once per store)."""
        if self._swept or not self.root.is_dir():
            return
        self._swept = True
        for other in self.root.iterdir():
            pid = other.name.split("-")[0]
            if other == self.path or not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(other, ignore_errors=True)
            except PermissionError:  # another user's process: still running
                continue

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
