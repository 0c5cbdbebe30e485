"""Figures that leave the county (board papers are public): the cell-key method.

Inside the county, figures are exact and small counts hidden (``disclosure``). Hiding alone
cannot stop differencing: 1-15 November minus 1-14 November is one day, and two filters that
differ by one group leave that group. For what is published, every count is perturbed the
way the Australian Bureau of Statistics' TableBuilder does it:

- each stored row has a **record key**, a number 0..KEYS-1 drawn from its database id and the
  county's secret (``OHJAUSTAULU_PUBLICATION_KEY``) by a fixed hash (splitmix64, in polars
  integer arithmetic, so the same on every machine and version);
- a cell's **cell key** is the sum of its rows' record keys modulo KEYS: the same rows give
  the same cell key however the cell was asked for (another order, another route, another
  day), so asking again never averages the noise away;
- the cell key picks the **perturbation** from a fixed table: a count of 1..threshold-1 is
  published as 0 or as the threshold (with probabilities that keep its expected value), a
  larger count moves by -2..+2 (symmetric: unbiased), and never below the threshold. No
  published count is 1..threshold-1; zero stays zero.

A result's shares of a whole are computed from the perturbed counts of its cells, so within a
table the parts add up to the whole that is shown.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

RECORD_KEY = "__record_key"
KEYS = 1 << 16  # record and cell keys are 0..KEYS-1
# The perturbation of a count at or above the threshold, by where the cell key falls in [0, 1).
STEPS = np.array([-2, -1, 0, 1, 2])
CUMULATIVE = np.array([0.05, 0.25, 0.75, 0.95, 1.0])  # symmetric: 5 %, 20 %, 50 %, 20 %, 5 %

_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def seed_of(secret: str) -> int:
    """The 64-bit seed of the county's secret."""
    return int.from_bytes(hashlib.blake2b(secret.encode("utf-8"), digest_size=8).digest(), "little")


def record_key(ids: pl.Expr, seed: int) -> pl.Expr:
    """Each row's record key from its id: splitmix64(id xor seed) modulo KEYS. Polars wraps
    unsigned 64-bit arithmetic, as the reference algorithm does."""
    u64 = pl.UInt64
    z = (ids.cast(pl.Int64).cast(u64, wrap_numerical=True).xor(pl.lit(seed, u64)) + pl.lit(_GOLDEN, u64))
    z = (z.xor(z // pl.lit(1 << 30, u64))) * pl.lit(_MIX1, u64)
    z = (z.xor(z // pl.lit(1 << 27, u64))) * pl.lit(_MIX2, u64)
    z = z.xor(z // pl.lit(1 << 31, u64))
    return (z % pl.lit(KEYS, u64)).alias(RECORD_KEY)


def perturb(counts: np.ndarray, key_sums: np.ndarray, *, threshold: int) -> np.ndarray:
    """The published counts: each count moved by what its cell key picks (module docstring).
    NaN (no figure) stays NaN."""
    counts = np.asarray(counts, dtype=np.float64)
    known = ~np.isnan(counts) & ~np.isnan(key_sums)
    n = np.where(known, counts, 0.0)
    u = (np.nan_to_num(key_sums, nan=0.0).astype(np.uint64) % np.uint64(KEYS)).astype(np.float64) / KEYS
    small = (n >= 1) & (n < threshold)
    step = STEPS[np.minimum(np.searchsorted(CUMULATIVE, u, side="right"), len(STEPS) - 1)]
    published = np.where(n >= threshold, np.maximum(n + step, threshold), n)
    published = np.where(small, np.where(u < n / threshold, float(threshold), 0.0), published)
    return np.where(known, published, counts)
