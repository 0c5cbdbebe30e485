"""The fact store's frames saved to disk, so a restarted server does not read every row.

Reading 5 million contacts from SQLite takes most of a minute whatever the driver (the
database's own row decoding is the cost); reading the saved frames takes a second or two.
A saved snapshot is used only when it belongs to the same database (its random identity,
migration 0002), was derived under the same settings and reference data, and is not newer
than the database. The store then reads the changes since it, like any refresh, and
checks its row counts against the database; any doubt means a full read.

Each save is a folder named by its data version, with ``meta.json`` written last, so a
half-written save is never read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from data_access.config import Settings
from data_access.history import History, link

# Bump when the columns or meaning of the stored frames change.
STORE_FORMAT = 10
FRAMES = ("contacts", "referrals", "feedback", "visits", "cases", "measurements")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    version: int
    as_of: dt.datetime
    frames: dict[str, pl.DataFrame]
    path: Path
    history: dict[str, Any] | None = None  # History.manifest(); its files are in path / "history"


def fingerprint(settings: Settings, municipalities: pl.DataFrame) -> str:
    """What the derived columns depend on besides the rows themselves."""
    parts = {
        "format": STORE_FORMAT,
        "electronic": sorted(settings.electronic_channels),
        "window": settings.verified_resolution_days,
        "guarantee": [rule.model_dump(mode="json") for rule in settings.care_guarantee],
        "regions": sorted(municipalities.select("municipality_code", "region_code").iter_rows()),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def save(
    folder: Path, *, database_id: str, print_: str, version: int, as_of: dt.datetime, frames: dict[str, pl.DataFrame],
    history: History | None = None,
) -> Path:
    """Write the frames under ``folder/v<version>``, with the history's files linked (not
    copied) beside them; older saves are removed afterwards."""
    target = folder / f"v{version}"
    partial = folder / f".v{version}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in FRAMES:
        frames[name].write_ipc(partial / f"{name}.arrow", compression="lz4")
    meta: dict[str, Any] = {
        "database_id": database_id, "fingerprint": print_, "version": version, "as_of": as_of.isoformat(),
        "rows": {name: frames[name].height for name in FRAMES},
    }
    if history is not None and not history.empty:
        (partial / "history").mkdir()
        for parts in history.parts.values():
            for part in parts:
                link(part.path, partial / "history" / part.path.name)
        meta["history"] = history.manifest()
    (partial / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    for old in folder.glob("v*"):
        old_version = _version_of(old)
        if old != target and old_version is not None and old_version < version:
            shutil.rmtree(old, ignore_errors=True)
    return target


def load(folder: Path, *, database_id: str | None, print_: str, current_version: int) -> Saved | None:
    """The newest usable save, or None (with the reason logged)."""
    if database_id is None or not folder.is_dir():
        return None
    for version, path in reversed(_saves(folder)):
        try:
            meta = json.loads((path / "meta.json").read_text())
            if meta["database_id"] != database_id or meta["fingerprint"] != print_ or version > current_version:
                log.info("snapshot %s is for another database, settings or data; not used", path)
                continue
            frames = {name: pl.read_ipc(path / f"{name}.arrow").rechunk() for name in FRAMES}
            if any(frames[name].height != meta["rows"][name] for name in FRAMES):
                log.warning("snapshot %s is incomplete; not used", path)
                continue
            history = meta.get("history")
            if history is not None and any(not (path / "history" / part[1]).is_file() for parts in history["parts"].values() for part in parts):
                log.warning("snapshot %s misses history files; not used", path)
                continue
            return Saved(version=version, as_of=dt.datetime.fromisoformat(meta["as_of"]), frames=frames, path=path, history=history)
        except (OSError, ValueError, KeyError, pl.exceptions.PolarsError) as error:
            log.warning("snapshot %s could not be read (%s); not used", path, error)
    return None


def any_saved(folder: Path) -> bool:
    """Whether ``folder`` holds a finished save (``load`` may still find it unusable)."""
    return folder.is_dir() and bool(_saves(folder))


def _saves(folder: Path) -> list[tuple[int, Path]]:
    """Finished saves (``meta.json`` is written last), oldest first."""
    return sorted((v, path) for path in folder.glob("v*") if (v := _version_of(path)) is not None and (path / "meta.json").exists())


def _version_of(path: Path) -> int | None:
    name = path.name
    return int(name[1:]) if name.startswith("v") and name[1:].isdigit() else None
