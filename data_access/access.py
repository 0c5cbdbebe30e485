"""Who may see what: users, their roles and the places granted to them, and the audit trail.

Deny by default. A user the table does not know, or knows as inactive, sees nothing; a known
user sees the municipalities granted to them and those of the counties granted to them, and
nothing else. The scope made here is what the registry's one exit applies to every figure
(data_access/metrics/exit.py); the pages never narrow it themselves.

Roles: ``viewer`` reads the pages; ``analyst`` also downloads; ``admin`` also reads and
exports the audit trail. None of them widens the places a user may see.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from data_access.metrics.types import Scope
from data_access.models import AppUser, AuditEvent, Municipality, UserGrant, table_of

ROLES = ("viewer", "analyst", "admin")
# What an audit row may say about a request: codes and dates, never client data.
AUDIT_ACTIONS = ("sign_in", "sign_out", "refused", "page", "download", "export", "pruned")


class AccessError(ValueError):
    """A user or grant the command cannot make (unknown role, place or user)."""


@dataclass(frozen=True)
class User:
    email: str
    name: str | None
    role: str
    scope: Scope

    @property
    def may_download(self) -> bool:
        return self.role in ("analyst", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def normalise_email(email: str) -> str:
    cleaned = email.strip().casefold()
    if "@" not in cleaned or any(c.isspace() for c in cleaned) or len(cleaned) > 254:
        raise AccessError(f"not an e-mail address: {email!r}")
    return cleaned


def find_user(engine: Engine, email: str | None) -> User | None:
    """The signed-in person as this database knows them; None when unknown or inactive."""
    if not email:
        return None
    try:
        key = normalise_email(email)
    except AccessError:
        return None
    users, grants, places = table_of(AppUser), table_of(UserGrant), table_of(Municipality)
    with engine.connect() as conn:
        found = conn.execute(sa.select(users.c.id, users.c.name, users.c.role).where(users.c.email == key, users.c.active.is_(True))).first()
        if found is None:
            return None
        granted = conn.execute(sa.select(grants.c.municipality_code, grants.c.region_code).where(grants.c.user_id == found.id)).all()
        regions = [r for _, r in granted if r]
        in_regions = conn.execute(sa.select(places.c.code).where(places.c.region_code.in_(regions))).scalars().all() if regions else []
        every = set(conn.execute(sa.select(places.c.code)).scalars().all())
    municipalities = frozenset({m for m, _ in granted if m} | set(in_regions))
    # Granted every county: the whole area, which also sees what has no municipality (rows
    # refused at ingest, referrals waiting for their contact; metrics/exit.py).
    scope = Scope.everything() if every and municipalities >= every else Scope(municipalities=municipalities)
    return User(email=key, name=found.name, role=found.role, scope=scope)


def add_user(engine: Engine, email: str, *, role: str, name: str | None = None) -> None:
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    key = normalise_email(email)
    users = table_of(AppUser)
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.email == key)).first() is not None:
            conn.execute(sa.update(users).where(users.c.email == key).values(role=role, name=name, active=True))
        else:
            conn.execute(sa.insert(users).values(email=key, name=name, role=role, active=True, created_at=dt.datetime.now(dt.UTC)))


def remove_user(engine: Engine, email: str) -> None:
    """Deactivate (the audit trail keeps naming them) and drop every grant."""
    users, grants = table_of(AppUser), table_of(UserGrant)
    with engine.begin() as conn:
        user_id = _user_id(conn, email)
        conn.execute(sa.delete(grants).where(grants.c.user_id == user_id))
        conn.execute(sa.update(users).where(users.c.id == user_id).values(active=False))


def grant(engine: Engine, email: str, *, municipality: str | None = None, region: str | None = None) -> None:
    _check_place(engine, municipality=municipality, region=region)
    grants = table_of(UserGrant)
    with engine.begin() as conn:
        user_id = _user_id(conn, email)
        exists = conn.execute(sa.select(grants.c.id).where(
            grants.c.user_id == user_id, _same(grants.c.municipality_code, municipality), _same(grants.c.region_code, region),
        )).first()
        if exists is None:
            conn.execute(sa.insert(grants).values(user_id=user_id, municipality_code=municipality, region_code=region))


def revoke(engine: Engine, email: str, *, municipality: str | None = None, region: str | None = None) -> int:
    """Remove a grant; returns how many were removed (0: there was none)."""
    _check_place(engine, municipality=municipality, region=region)
    grants = table_of(UserGrant)
    with engine.begin() as conn:
        user_id = _user_id(conn, email)
        done = conn.execute(sa.delete(grants).where(
            grants.c.user_id == user_id, _same(grants.c.municipality_code, municipality), _same(grants.c.region_code, region),
        ))
    return int(done.rowcount or 0)


def list_users(engine: Engine) -> list[dict[str, Any]]:
    users, grants = table_of(AppUser), table_of(UserGrant)
    with engine.connect() as conn:
        people = conn.execute(sa.select(users).order_by(users.c.email)).mappings().all()
        granted = conn.execute(sa.select(grants).order_by(grants.c.region_code, grants.c.municipality_code)).mappings().all()
    places: dict[int, list[str]] = {}
    for g in granted:
        places.setdefault(g["user_id"], []).append(f"county {g['region_code']}" if g["region_code"] else g["municipality_code"])
    return [
        {"email": p["email"], "name": p["name"], "role": p["role"], "active": p["active"], "places": ", ".join(places.get(p["id"], [])) or "-"}
        for p in people
    ]


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


def _user_id(conn: sa.Connection, email: str) -> int:
    users = table_of(AppUser)
    found = conn.execute(sa.select(users.c.id).where(users.c.email == normalise_email(email))).scalar()
    if found is None:
        raise AccessError(f"no user {email!r}: add them first (ohjaustaulu users add)")
    return int(found)


def _check_place(engine: Engine, *, municipality: str | None, region: str | None) -> None:
    if (municipality is None) == (region is None):
        raise AccessError("grant either one municipality (--municipality) or one county (--county)")
    places = table_of(Municipality)
    with engine.connect() as conn:
        column = places.c.code if municipality else places.c.region_code
        if conn.execute(sa.select(column).where(column == (municipality or region)).limit(1)).first() is None:
            raise AccessError(f"unknown {'municipality' if municipality else 'county'} code {municipality or region!r}")


def audit(engine: Engine, action: str, *, email: str | None, page: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """One row of the audit trail. ``detail`` holds codes, dates and file names only."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    events = table_of(AuditEvent)
    with engine.begin() as conn:
        conn.execute(sa.insert(events).values(
            at=dt.datetime.now(dt.UTC), email=email, action=action, page=page,
            detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str),
        ))


def audit_sign_in(engine: Engine, email: str, *, signed_in_at: object) -> bool:
    """Record a sign-in once, however many sessions it opens; True when recorded now."""
    detail = {"signed_in_at": signed_in_at} if signed_in_at is not None else {}
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    events = table_of(AuditEvent)
    with engine.connect() as conn:
        seen = conn.execute(sa.select(events.c.id).where(
            events.c.action == "sign_in", events.c.email == email, events.c.detail == text,
        ).limit(1)).first()
    if seen is not None and detail:
        return False
    audit(engine, "sign_in", email=email, detail=detail)
    return True


def audit_rows(engine: Engine, *, since: dt.datetime | None = None, limit: int = 5000) -> list[dict[str, Any]]:
    events = table_of(AuditEvent)
    query = sa.select(events.c.at, events.c.email, events.c.action, events.c.page, events.c.detail).order_by(col(AuditEvent.id).desc()).limit(limit)
    if since is not None:
        query = query.where(events.c.at >= since)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings().all()]


def prune_audit(engine: Engine, *, keep_days: int, now: dt.datetime | None = None) -> int:
    """Delete audit rows older than ``keep_days``; returns how many. The deletion is itself
    a row of the trail (how many, and before when), so that a gap can be told from a purge."""
    if keep_days < 1:
        raise ValueError("the audit trail is kept for at least one day")
    events = table_of(AuditEvent)
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
    with engine.begin() as conn:
        done = conn.execute(sa.delete(events).where(events.c.at < cutoff))
    deleted = int(done.rowcount or 0)
    if deleted:
        audit(engine, "pruned", email=None, detail={"deleted": deleted, "before": cutoff.date().isoformat(), "keep_days": keep_days})
    return deleted
