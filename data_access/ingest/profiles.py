"""Mapping profiles: how one client system's export maps onto the data contract.

A profile is a TOML data file, not code: column renames, value spellings, and how to
read the file (delimiter, encoding, time formats, source system). The base profile
(Finnish and Swedish spellings every export may use) is always applied first.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_PROFILE = Path(__file__).resolve().parent / "base_profile.toml"


class ProfileError(ValueError):
    """A profile file that cannot be used."""


@dataclass(frozen=True)
class Profile:
    name: str = "base"
    kind: str | None = None
    source_system: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    datetime_formats: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: profile cannot be read ({exc})") from exc


def load_profile(path: Path | None = None) -> Profile:
    """The base profile, extended by the profile at ``path`` when given."""
    base = _read(BASE_PROFILE)
    values = {column: {k.lower(): v for k, v in mapping.items()} for column, mapping in base.get("values", {}).items()}
    if path is None:
        return Profile(values=values)
    data = _read(Path(path))
    for column, mapping in data.get("values", {}).items():
        values.setdefault(column, {}).update({k.strip().lower(): v for k, v in mapping.items()})
    delimiter = data.get("delimiter")
    if delimiter is not None and len(delimiter) != 1:
        raise ProfileError(f"{path}: delimiter must be one character, not {delimiter!r}")
    return Profile(
        name=data.get("name", Path(path).stem),
        kind=data.get("kind"),
        source_system=data.get("source_system"),
        delimiter=delimiter,
        encoding=data.get("encoding"),
        datetime_formats=tuple(data.get("datetime_formats", ())),
        columns={str(k).strip(): v for k, v in data.get("columns", {}).items()},
        values=values,
    )
