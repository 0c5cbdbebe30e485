import datetime as dt
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from data_access.config import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_threshold_below_three_is_refused():
    with pytest.raises(ValidationError, match="below 3"):
        Settings(small_cell_threshold=2)
    assert Settings(small_cell_threshold=3).small_cell_threshold == 3


def test_settings_come_from_ohjaustaulu_variables(monkeypatch):
    monkeypatch.setenv("OHJAUSTAULU_TARGET_FIRST_CONTACT_RESOLUTION", "0.6")
    monkeypatch.setenv("OHJAUSTAULU_ELECTRONIC_CHANNELS", '["chat", "video"]')
    settings = Settings()
    assert settings.target_first_contact_resolution == 0.6
    assert settings.electronic_channels == ("chat", "video")


def test_unknown_electronic_channel_is_refused():
    with pytest.raises(ValidationError, match="unknown channels"):
        Settings(electronic_channels=("chat", "fax"))


def test_embedded_database_is_the_default(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.is_embedded
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'ohjaustaulu.sqlite3'}"


@pytest.mark.parametrize(
    ("on", "age", "days"),
    [
        (dt.date(2024, 6, 1), 40, 14),  # 14-day rule for everyone
        (dt.date(2025, 6, 1), 40, 90),  # 3 months from 23 years
        (dt.date(2025, 6, 1), 22, 14),  # under-23s keep the tighter rule
        (dt.date(2023, 1, 1), 40, 14),  # before the first rule: the earliest known rule
    ],
)
def test_care_guarantee_is_date_effective_and_age_dependent(on, age, days):
    assert Settings().care_guarantee_days(on=on, age=age) == days


def test_every_setting_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`OHJAUSTAULU_([A-Z_]+)`", text))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"settings without a line in docs/settings.md: {sorted(missing)}"
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no help text"
