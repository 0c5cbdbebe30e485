"""A live stream of synthetic contacts and referrals, for demonstrating the live dashboard."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

import numpy as np
import polars as pl
from sqlalchemy.engine import Engine

from sample_data.generator import generate
from sample_data.seed import municipalities_with_population, write_sample


def simulate(
    engine: Engine, *, rate: float, duration: float, seed: int | None = None,
    say: Callable[[str], None] = lambda _m: None, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> int:
    """Write about ``rate`` contacts a second (Poisson) for ``duration`` seconds; returns the count."""
    rng = np.random.default_rng(seed)
    municipalities = municipalities_with_population(engine)
    written, started, tick = 0, time.monotonic(), 0
    while time.monotonic() - started < duration:
        tick += 1
        count = int(rng.poisson(rate))
        if count:
            now = clock()
            # Attributes are drawn from yesterday and today so far (today alone has no
            # contacts just after midnight); every contact then happens now.
            data = generate(municipalities, contacts=count, days=2, seed=int(rng.integers(1 << 31)), end=now)
            run = f"SIM{now.strftime('%Y%m%d%H%M%S%f')}-"
            # The generator spreads contacts over the day; live ones happen now.
            contacts = data.contacts.with_columns(
                pl.lit(now).alias("occurred_at"),
                (pl.lit(run) + pl.col("contact_id")).alias("contact_id"),
                pl.when(pl.col("callback_requested_at").is_not_null()).then(pl.lit(now)).alias("callback_requested_at"),
                pl.lit(None, pl.Datetime("us", "UTC")).alias("callback_done_at"),
                pl.lit(None, pl.String).alias("case_id"),  # live contacts are not guidance visits
            )
            referrals = data.referrals.with_columns(
                (pl.lit(run) + pl.col("contact_id")).alias("contact_id"),
                (pl.lit(run) + pl.col("referral_id")).alias("referral_id"),
                pl.lit(now).alias("referred_at"),
                pl.lit(None, pl.Datetime("us", "UTC")).alias("service_started_at"),
                pl.when(pl.col("status").is_not_null()).then(pl.lit("planned")).alias("status"),
            )
            sample = dataclasses.replace(data, contacts=contacts, referrals=referrals, feedback=data.feedback.clear(), units=data.units.clear(),
                cases=data.cases.clear(), measurements=data.measurements.clear(),
            )
            write_sample(engine, sample, label="simulate")
            written += contacts.height
            say(f"{now:%H:%M:%S} +{contacts.height} contacts ({written} in all)")
        sleep(max(0.0, started + tick - time.monotonic()))
    return written
