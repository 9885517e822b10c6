"""Money-aware severity: the check's declared priority, raised or lowered by business rules.

Each rule moves the priority one level and leaves a readable reason, so a person sees why a ticket is P1:
``raised to P1: amount at risk 1,204,330.00 CNY >= materiality 500,000``. Raises are cumulative and stop at
P1; the one lowering rule (a documented workaround while the amount is below materiality) stops at P4.
Severity never enters a fingerprint. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from anomaly.calendar import BusinessCalendar
from anomaly.settings import AnomalySettings
from core.vocabulary import Priority


@dataclass(frozen=True)
class SeverityContext:
    """What the rules need besides the settings: the calendar (None: no close window known)."""

    calendar: BusinessCalendar | None = None


@dataclass(frozen=True)
class Exposure:
    """What one exception puts at risk."""

    check_id: str
    when: datetime
    amount: Decimal | None = None
    affected: int = 1
    """Offending documents/customers of the check."""
    tags: tuple[str, ...] = ()


def money(amount: Decimal) -> str:
    """``1204330`` -> ``1,204,330.00``."""
    return f"{amount:,.2f}"


def threshold(amount: Decimal) -> str:
    """``500000`` -> ``500,000``; ``1500.5`` -> ``1,500.50``."""
    return f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"


def adjust(
    declared: Priority,
    exposure: Exposure,
    settings: AnomalySettings,
    context: SeverityContext | None = None,
) -> tuple[Priority, tuple[str, ...]]:
    """The adjusted priority and one reason per rule that applied, in the order applied."""
    context = context or SeverityContext()
    current = Priority(declared)  # callers may hand in the text ("P2") as well as the member
    reasons: list[str] = []

    def move(delta: int, why: str) -> None:
        """delta +1 raises (towards P1), -1 lowers (towards P4)."""
        nonlocal current
        moved = current.step(-delta)
        if moved == current:
            reasons.append(f"stays {current} (already {'most' if delta > 0 else 'least'} urgent): {why}")
        else:
            reasons.append(f"{'raised' if delta > 0 else 'lowered'} to {moved}: {why}")
        current = moved

    amount = abs(exposure.amount) if exposure.amount is not None else None
    material = amount is not None and amount >= settings.materiality
    cur = settings.currency
    if material and amount is not None:
        move(
            +1,
            f"amount at risk {money(amount)} {cur} >= materiality {threshold(settings.materiality)}",
        )
    if exposure.affected >= settings.many_entities:
        move(+1, f"{exposure.affected} documents/customers affected >= {settings.many_entities}")
    calendar = context.calendar
    if calendar is not None:
        day = calendar.local_date(exposure.when)
        before, after = settings.close_window_before_days, settings.close_window_after_days
        if calendar.in_close_window(day, before, after):
            move(
                +1, f"{day.isoformat()} is inside the period-close window (-{before}/+{after} business days)"
            )
    external = _external(exposure.tags, settings.external_party_tags)
    if external:
        move(+1, f"an external party is affected ({', '.join(external)})")
    if exposure.check_id in settings.workarounds and not material:
        below = f"{money(amount)} {cur}" if amount is not None else "no amount"
        move(
            -1,
            f"documented workaround exists and amount at risk {below} "
            f"< materiality {threshold(settings.materiality)}",
        )
    return current, tuple(reasons)


def _external(tags: Iterable[str], external: Iterable[str]) -> list[str]:
    wanted = {t.lower() for t in external}
    return sorted({t for t in tags if t.lower() in wanted})
