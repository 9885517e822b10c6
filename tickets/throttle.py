"""Login throttling: failed logins counted per user name and per client address, in the store.

``hypercare serve`` may run several processes (PostgreSQL): the counters are rows of ``login_throttle``,
locked ``FOR UPDATE`` while one process counts, so every process sees every failure. A key (``user:alice``,
``addr:203.0.113.7``) that reaches its limit within the window is locked for ``login_lockout_s``; each
further lock in a row doubles that, up to ``login_lockout_max_s``; a window without failures after the
lock has run out forgets the streak. A name that does not exist is counted and locked like one that does
(no user enumeration), and a successful login forgets its name's failures (never its address's: an
attacker with an account of their own cannot reset the count of the address they guess from).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tickets import security_log
from tickets.access_models import LoginThrottle
from tickets.settings import SecuritySettings

log = logging.getLogger(__name__)

FORGET_AFTER = timedelta(days=1)
"""Rows untouched this long (and not locked) are deleted as failures are counted."""


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    window: timedelta
    max_per_user: int
    max_per_address: int
    lockout: timedelta
    lockout_max: timedelta

    @classmethod
    def of(cls, settings: SecuritySettings) -> ThrottleRules:
        return cls(
            window=timedelta(seconds=settings.login_window_s),
            max_per_user=settings.login_max_failures_per_user,
            max_per_address=settings.login_max_failures_per_address,
            lockout=timedelta(seconds=settings.login_lockout_s),
            lockout_max=timedelta(seconds=settings.login_lockout_max_s),
        )


DEFAULT_RULES = ThrottleRules.of(SecuritySettings())


def user_key(username: str) -> str:
    return "user:" + username.strip().lower()[:150]


def address_key(address: str) -> str:
    return "addr:" + address[:150]


def _keys(username: str, address: str | None, rules: ThrottleRules) -> list[tuple[str, int]]:
    keys = [(user_key(username), rules.max_per_user)]
    if address:
        keys.append((address_key(address), rules.max_per_address))
    return keys


def locked_until(session: Session, username: str, address: str | None, now: datetime) -> datetime | None:
    """When the latest lock on this name or address ends, if one holds now."""
    keys = [user_key(username)] + ([address_key(address)] if address else [])
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).all()
    ends = [end for row in rows if (end := row.locked_until) is not None and end > now]
    return max(ends) if ends else None


def lock_length(lockouts: int, rules: ThrottleRules) -> timedelta:
    """The length of the lock after ``lockouts`` earlier ones in a row: doubling, capped."""
    length: timedelta = rules.lockout * 2 ** min(lockouts, 30)
    return min(length, rules.lockout_max)


def _row(session: Session, key: str, now: datetime) -> LoginThrottle:
    row = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = LoginThrottle(key=key, failures=0, window_start=now, lockouts=0, updated_at=now)
            session.add(row)
    except IntegrityError:  # another process counted the first failure of this key at the same moment
        row = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
        assert row is not None  # noqa: S101 - it was just inserted by the other process
    return row


def record_failure(
    session: Session, username: str, address: str | None, now: datetime, rules: ThrottleRules = DEFAULT_RULES
) -> datetime | None:
    """Count a failed login of ``username`` from ``address``; the end of the lock it earned, if any (the
    lockout is logged and recorded as a security event). The caller commits."""
    lock: datetime | None = None
    for key, limit in _keys(username, address, rules):
        row = _row(session, key, now)
        if now - row.window_start >= rules.window:
            quiet = row.locked_until is None or now - row.locked_until >= rules.window
            row.failures, row.window_start = 0, now
            if quiet:
                row.lockouts = 0
        row.failures += 1
        row.updated_at = now
        if row.failures >= limit:
            length = lock_length(row.lockouts, rules)
            row.locked_until = now + length
            row.lockouts += 1
            row.failures, row.window_start = 0, now
            lock = row.locked_until if lock is None else max(lock, row.locked_until)
            security_log.record(
                session,
                actor="-",
                action="login_locked",
                subject=key,
                address=address,
                detail={
                    "username": username[:64],
                    "lock_s": int(length.total_seconds()),
                    "lockouts": row.lockouts,
                },
                now=now,
                level=logging.WARNING,
            )
    # Stale rows are swept here; a row another login holds is skipped (never waited on: no deadlock).
    stale = (
        select(LoginThrottle.key)
        .where(
            LoginThrottle.updated_at < now - FORGET_AFTER,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
        )
        .limit(100)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(stale.scalar_subquery())))
    session.flush()
    return lock


def forget_user(session: Session, username: str) -> None:
    """A successful login: the name's failures are forgotten (the address's are not)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == user_key(username)))
