"""The translation catalogue: every word a user sees comes through ``t``.

Messages live in ``messages.toml`` (one table per key, one entry per language); metric
labels and definitions come from the metric registry, code-list labels from the
``code.*`` tables of the same catalogue.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from data_access import codes

LANGUAGES = ("fi", "sv", "en")
CATALOGUE_FILE = Path(__file__).resolve().parent / "messages.toml"


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    with CATALOGUE_FILE.open("rb") as handle:
        nested = tomllib.load(handle)
    flat: dict[str, dict[str, str]] = {}

    def walk(prefix: str, node: dict) -> None:
        if all(isinstance(v, str) for v in node.values()) and set(node) <= set(LANGUAGES):
            flat[prefix] = node
            return
        for key, value in node.items():
            walk(f"{prefix}.{key}" if prefix else key, value)

    walk("", nested)
    return flat


def t(key: str, language: str = "fi", /, **values: object) -> str:
    """The message ``key`` in ``language`` (Finnish when missing), formatted with ``values``."""
    entry = catalogue().get(key)
    if entry is None:
        raise KeyError(f"no message {key!r} in the catalogue")
    text = entry.get(language) or entry["fi"]
    return text.format(**values) if values else text


def code_label(kind: str, code: str | None, language: str = "fi") -> str:
    """Label of a code-list value (channel, destination...); unknown codes are shown as they are."""
    if code is None:
        return t("common.unknown", language)
    kind = codes.LIST_OF.get(kind, kind)  # who identified a case: an initiator code
    entry = catalogue().get(f"code.{kind}.{code}")
    if entry is None:
        return str(code)
    return entry.get(language) or entry["fi"]


def place_name_column(level: str, language: str = "fi") -> str:
    """The reference table's name column for a municipality or a county (``level``) in
    ``language``: Swedish names in Swedish, Finnish ones otherwise (the reference data has
    no English names)."""
    prefix = {"municipality": "", "region": "region_"}[level]
    return f"{prefix}name_sv" if language == "sv" else f"{prefix}name_fi"
