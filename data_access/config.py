"""Settings: one typed class, every value overridable by an OHJAUSTAULU_ variable.

Every field carries a description; docs/settings.md lists them all and a test
fails when one is missing there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"

ELECTRONIC_CHANNELS_DEFAULT = ("chat", "chatbot", "e_message", "digital_form", "video")


class CareGuaranteeRule(BaseModel):
    """Maximum days from needs assessment to service start, effective from a date.

    ``min_age``/``max_age`` bound the client's age (inclusive/exclusive); an age band
    is placed by its midpoint because ages are banded at ingest and not stored.
    """

    effective_from: dt.date
    days: int = Field(gt=0)
    min_age: int | None = None
    max_age: int | None = None


DEFAULT_CARE_GUARANTEE = [
    CareGuaranteeRule(effective_from=dt.date(2023, 9, 1), days=14),
    # HE 134/2024: 3 months for clients aged 23 or over, under-23s keep 14 days.
    CareGuaranteeRule(effective_from=dt.date(2025, 1, 1), days=90, min_age=23),
    CareGuaranteeRule(effective_from=dt.date(2025, 1, 1), days=14, max_age=23),
]


DEMO_PUBLICATION_KEY = "ohjaustaulu-demo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OHJAUSTAULU_", env_nested_delimiter="__", extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the database. Empty: a SQLite file in data_dir, "
        "created and filled with sample data on first run.",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Folder for the embedded SQLite database and other local files.",
    )
    snapshot_dir: Path | None = Field(
        default=None,
        description="Folder for the saved snapshot of the fact frames, which lets a restarted server "
        "skip reading every row. Empty: beside the SQLite file, or data_dir/snapshots for PostgreSQL.",
    )
    snapshot_save: bool = Field(
        default=True, description="Save the snapshot after large loads, for fast restarts."
    )
    memory_days: int = Field(
        default=120, ge=0,
        description="Days of recent rows the server keeps in memory; older rows are read from monthly files "
        "beside the snapshot when a period reaches them. 0: every row in memory.",
    )
    timing_log: Path | None = Field(
        default=None,
        description="Append each page run's data time to this file as JSON lines (for the concurrency benchmark).",
    )
    refresh_seconds: float = Field(
        default=10.0, ge=1.0, description="How often open pages check for new data, in seconds."
    )
    page_runs_at_once: int = Field(
        default=2, ge=1,
        description="Page runs the server lets run at once; more wait their turn. Page runs are mostly "
        "Python, which runs one thread at a time: with 20 at once each one's figures took several "
        "times longer, and none finished sooner.",
    )
    earliest_record_date: dt.date = Field(
        default=dt.date(2000, 1, 1),
        description="Times before this date are refused at ingest (quarantined with the reason): a year "
        "0001 or 1900 is a default value of an export, not a contact.",
    )
    future_tolerance_minutes: int = Field(
        default=60, ge=0,
        description="Times later than now plus this many minutes are refused at ingest: a contact in "
        "2099 would mark its source up to date for ever and 9999-12-31 broke pages.",
    )
    small_cell_threshold: int = Field(
        default=5,
        description="Counts from 1 to threshold-1 are shown as '<threshold'. Never below 3.",
    )
    target_first_contact_resolution: float = Field(
        default=0.50, ge=0, le=1, description="Target share of contacts resolved at the first contact."
    )
    target_electronic_share: float = Field(
        default=0.45, ge=0, le=1, description="Target share of contacts through electronic channels."
    )
    target_same_day_callback: float = Field(
        default=0.90, ge=0, le=1, description="Target share of callbacks completed the same day."
    )
    electronic_channels: tuple[str, ...] = Field(
        default=ELECTRONIC_CHANNELS_DEFAULT,
        description="Channels counted as electronic (JSON list in the environment variable).",
    )
    verified_resolution_days: int = Field(
        default=7, ge=1, description="Verified resolution: no new contact by the same client within this many days."
    )
    multi_service_min_lines: int = Field(
        default=3, ge=2, description="Multi-service client: contacts in at least this many service lines."
    )
    multi_service_window_days: int = Field(
        default=365, ge=30, description="Rolling window for multi-service clients, in days."
    )
    care_guarantee: list[CareGuaranteeRule] = Field(
        default_factory=lambda: list(DEFAULT_CARE_GUARANTEE),
        description="Date-effective, age-dependent care-guarantee rules (JSON list of "
        "{effective_from, days, min_age, max_age}).",
    )
    quiet_source_minutes: int = Field(
        default=60, ge=1, description="A source system with no new record for this long is flagged as quiet."
    )
    sign_in: bool = Field(
        default=False,
        description="Require sign-in through OpenID Connect (st.login; the provider in .streamlit/secrets.toml, "
        "docs/deployment.md). Without it the dashboard runs in demo mode, allowed only on an SQLite database.",
    )
    publication_key: SecretStr = Field(
        default=SecretStr(DEMO_PUBLICATION_KEY),
        description="The county's secret behind the perturbation of published figures (cell-key method); set your own in production.",
    )
    audit_keep_days: int = Field(default=400, ge=1, description="Audit trail rows older than this are deleted.")
    default_language: Literal["fi", "sv", "en"] = Field(default="fi", description="Language of the interface.")
    seed_contacts: int = Field(
        default=300_000, ge=0, description="Contacts generated on first run of the embedded database."
    )
    seed_days: int = Field(default=730, ge=1, description="Days of history generated on first run.")

    @field_validator("publication_key")
    @classmethod
    def _publication_key_not_empty(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < 8:
            raise ValueError("publication_key must be a secret of at least 8 characters (it decides the noise of published figures)")
        return value

    @property
    def publication_ready(self) -> bool:
        """Figures may be published: with the county's own secret, or on the embedded sample
        data (the demo key is in this repository, so anyone could undo its noise)."""
        return self.demo_allowed or self.publication_key.get_secret_value() != DEMO_PUBLICATION_KEY

    @field_validator("small_cell_threshold")
    @classmethod
    def _threshold_not_below_three(cls, value: int) -> int:
        if value < 3:
            raise ValueError("small_cell_threshold below 3 would expose identifiable counts; use 3 or more")
        return value

    @model_validator(mode="after")
    def _known_channels(self) -> Settings:
        from data_access.codes import CHANNELS

        unknown = set(self.electronic_channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"electronic_channels has unknown channels: {sorted(unknown)}")
        if self.memory_days and self.memory_days <= self.verified_resolution_days + 31:
            # A row is moved out of memory only once no later contact can change it.
            raise ValueError(
                f"memory_days must be 0 or more than verified_resolution_days + 31 ({self.verified_resolution_days + 31})"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ohjaustaulu.sqlite3'}"

    @property
    def resolved_snapshot_dir(self) -> Path:
        if self.snapshot_dir is not None:
            return self.snapshot_dir
        url = make_url(self.resolved_database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(f"{url.database}.snapshot")
        name = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
        return self.data_dir / "snapshots" / name

    @property
    def is_embedded(self) -> bool:
        return not self.database_url

    @property
    def demo_allowed(self) -> bool:
        """Demo mode (no sign-in, every municipality) is for SQLite: the embedded sample data
        or a developer's copy, never the county's PostgreSQL database."""
        return self.resolved_database_url.startswith("sqlite")

    def care_guarantee_days(self, *, on: dt.date, age: float | None) -> int:
        """Days allowed on a date for an age (None: the rule without an age bound)."""
        applicable = [r for r in self.care_guarantee if r.effective_from <= on]
        if not applicable:
            applicable = sorted(self.care_guarantee, key=lambda r: r.effective_from)[:1]
        latest = max(r.effective_from for r in applicable)
        current = [r for r in applicable if r.effective_from == latest]
        for rule in current:
            if age is None and rule.min_age is None and rule.max_age is None:
                return rule.days
            if age is not None and (rule.min_age is None or age >= rule.min_age) and (
                rule.max_age is None or age < rule.max_age
            ):
                return rule.days
        return max(r.days for r in current)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
