"""Alerts of an Alertmanager webhook the intake cannot take in, kept as evidence for the on-call admin.

Alertmanager drops a delivery answered 4xx and never retries it, so one bad alert must not cost its group:
the intake stores the good alerts and records the bad ones as one *intake-error* event per delivery (category
technical, fingerprint per receiver and reason: a storm of bad alerts is one ticket with an occurrence per
delivery). Its evidence holds each bad alert as received, made safe to keep and to show: NULs and lone
surrogates replaced (PostgreSQL refuses both), long strings, deep or wide structures cut, values that look
like secrets (a ``token`` annotation, a URL's password, a bearer token) redacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anomaly.events import Event, fingerprint
from core.vocabulary import Category, Priority

INTAKE_ERROR_CHECK = "alertmanager.intake_error"
INVALID_ALERT = "invalid_alert"
"""The reason of an alert that does not validate on its own (a NUL, an impossible time, a missing field)."""
MAX_KEPT_ALERTS = 20
"""Bad alerts of one delivery kept as evidence; the rest are counted."""
MAX_STRING = 512
MAX_ITEMS = 50
MAX_DEPTH = 5
REDACTED = "[redacted]"
NUL_SHOWN = "\u2400"  # SYMBOL FOR NULL: shows where the NUL was
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[-_]?key|authori[sz]ation|cookie|credential|private[-_]?key|session",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:[a-z0-9_-]*(?:token|secret|password|passwd|api[-_]?key|sig|signature))=)[^&;#\s]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\b(?:bearer|basic)\s+)[a-z0-9._~+/=-]{8,}", re.IGNORECASE)


def unstorable_text(value: str) -> str | None:
    """Why a string cannot be kept in the store (PostgreSQL refuses NUL and invalid UTF-8), or None."""
    if "\x00" in value:
        return "holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds an unpaired surrogate (not valid UTF-8)"
    return None


def storable(value: Any) -> Any:
    """``value`` (parsed JSON) with NULs shown as U+2400 and unpaired surrogates replaced, nothing else
    changed."""
    if isinstance(value, str):
        if unstorable_text(value) is None:
            return value
        return value.replace("\x00", NUL_SHOWN).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def clean_text(value: str) -> str:
    value = storable(value)
    value = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", value)
    value = _QUERY_SECRET.sub(rf"\g<head>{REDACTED}", value)
    value = _BEARER.sub(rf"\g<head>{REDACTED}", value)
    if len(value) > MAX_STRING:
        value = f"{value[:MAX_STRING]}... [{len(value) - MAX_STRING} more characters]"
    return value


def sanitise(value: Any, depth: int = 0) -> Any:
    """``value`` (parsed JSON) made safe to store and show: see the module's docstring."""
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for n, (key, item) in enumerate(value.items()):
            if n == MAX_ITEMS:
                out["[more keys]"] = len(value) - MAX_ITEMS
                break
            name = clean_text(str(key))[:128]
            out[name] = REDACTED if _SECRET_KEY.search(name) else sanitise(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        items = [sanitise(item, depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"[{len(value) - MAX_ITEMS} more items]")
        return items
    return clean_text(repr(value))


@dataclass(frozen=True, slots=True)
class Rejected:
    """One alert of the delivery the intake refused: where it was, why, and what was sent."""

    index: int
    problem: str
    raw: Any

    @property
    def fingerprint(self) -> str:
        value = self.raw.get("fingerprint") if isinstance(self.raw, dict) else None
        return clean_text(value)[:64] if isinstance(value, str) else ""

    @property
    def status(self) -> str:
        value = self.raw.get("status") if isinstance(self.raw, dict) else None
        return value if value in ("firing", "resolved") else "unknown"


def intake_error_fingerprint(receiver: str, reason: str) -> str:
    return fingerprint(INTAKE_ERROR_CHECK, reason, entity={"receiver": receiver})


def intake_error_event(
    rejected: list[Rejected],
    *,
    receiver: str,
    group_key: str,
    external_url: str,
    alerts_in_delivery: int,
    severity: Priority,
    now: datetime,
) -> Event:
    """The intake-error event recording a delivery's bad alerts (``rejected`` is not empty)."""
    name = clean_text(receiver)[:64] or "(unnamed)"
    count = len(rejected)
    return Event(
        fingerprint=intake_error_fingerprint(receiver, INVALID_ALERT),
        action="trigger",
        severity=severity,
        category=Category.TECHNICAL,
        summary=(
            f"Alertmanager receiver {name}: {count} of {alerts_in_delivery} alerts could not be taken in"
        )[:300],
        source="alertmanager",
        check_id=INTAKE_ERROR_CHECK,
        producer="alertmanager",
        labels={"receiver": name, "reason": INVALID_ALERT},
        entity={"receiver": name},
        evidence={
            "reason": INVALID_ALERT,
            "receiver": name,
            "group_key": clean_text(group_key),
            "external_url": clean_text(external_url),
            "alerts_in_delivery": alerts_in_delivery,
            "rejected_count": count,
            "rejected": [
                {"index": r.index, "problem": clean_text(r.problem), "alert": sanitise(r.raw)}
                for r in rejected[:MAX_KEPT_ALERTS]
            ],
            "fix": "The alerts listed were refused as sent: fix the alerting rule or the labels/annotations "
            "templates that produce them. The other alerts of the delivery were taken in.",
        },
        occurred_at=now,
    )
