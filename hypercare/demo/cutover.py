"""The demo's dual run: differences planted in the legacy copy, and which dual-run tickets the demo's
comparison (``hypercare/demo/dualrun.yaml``) must open — the dual run's ground truth.

Two differences are planted in the legacy copy, the way they appear in a real cutover:

* **timing** — one supplier bill is dated a day later in the legacy system (it books on receipt, the new ERP
  on the invoice date): the comparison tolerates a day on dates, so it is classified *timing*;
* **mapping** — one paid sales invoice carries legacy control account 1133 (other receivables), which the
  comparison's code map (1131 -> 1122, 2121 -> 2202) does not cover: classified *mapping*, not data.

Besides, the dual run sees some go-live faults from its own angle (the legacy system is the reference):
the lost customer, the changed migrated amount, and every fault that moves a migrated period's ledger. Each
dual-run entity that must differ is one expected ticket (one per entity and period; the demo compares all
periods at once), whatever number of faults it reflects.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection, select, update

from hypercare.demo import erp_schema as s
from hypercare.demo.faults import InjectedFault
from monitor import check_ids

COMPARISON = "demo-cutover"
"""The ``name`` in hypercare/demo/dualrun.yaml."""
NEW_SOURCE = "erp"
UNMAPPED_ACCOUNT = "1133"
"""Legacy 其他应收款 (other receivables), deliberately absent from the comparison's code map."""

SEEN_BY: dict[str, tuple[str, ...]] = {
    "migrated_customer_lost": ("customers",),
    "migrated_amount_changed": ("ar_documents", "trial_balance"),
    "unbalanced_journal_entry": ("trial_balance",),
    "duplicate_supplier_invoice": ("trial_balance",),
    "posting_in_closed_period": ("trial_balance",),
}
"""Fault kind -> the dual-run entities that see it. The others touch live documents (after go-live),
stock or integration messages, which the legacy system never had."""
MONEY_FAULTS = {"migrated_amount_changed", "unbalanced_journal_entry", "duplicate_supplier_invoice"}
MONEY_FAULTS |= {"posting_in_closed_period"}
"""Faults that move money in what the dual run compares: at least the comparison's materiality
(1.00 CNY, zero tolerance on financial totals), so their entity's ticket is raised from P3 to P2."""


@dataclass(frozen=True, slots=True)
class PlantedDifference:
    kind: str  # timing | mapping
    entity: str
    document: str
    description: str


def _pick(legacy: Connection, rng: random.Random, doc_kind: str) -> str:
    """A fully paid migrated document of ``doc_kind`` (no go-live fault targets those)."""
    doc = s.doc_header.c
    numbers = list(
        legacy.execute(
            select(doc.doc_no).where(doc.doc_kind == doc_kind, doc.open_amt == 0).order_by(doc.doc_no)
        ).scalars()
    )
    if not numbers:
        raise RuntimeError(f"no paid {doc_kind} document in the legacy copy; build with a larger scale")
    return str(rng.choice(numbers))


def plant(legacy: Connection, seed: int) -> list[PlantedDifference]:
    """Plant the timing and the mapping difference in the legacy copy (see the module docstring)."""
    rng = random.Random(f"{seed}:cutover")  # noqa: S311 - a reproducible choice, not security
    doc = s.doc_header.c
    bill = _pick(legacy, rng, "AP")
    day: date = legacy.execute(select(doc.doc_date).where(doc.doc_no == bill)).scalar_one()
    booked = day + timedelta(days=1)
    legacy.execute(update(s.doc_header).where(doc.doc_no == bill).values(doc_date=booked))
    invoice = _pick(legacy, rng, "AR")
    legacy.execute(update(s.doc_header).where(doc.doc_no == invoice).values(ctrl_acct=UNMAPPED_ACCOUNT))
    return [
        PlantedDifference(
            "timing",
            "ap_documents",
            bill,
            f"Supplier bill {bill} is dated {booked} in the legacy system (booked on receipt) and {day} in "
            "the new ERP (invoice date): a one-day cut-off difference.",
        ),
        PlantedDifference(
            "mapping",
            "ar_documents",
            invoice,
            f"Sales invoice {invoice} sits on legacy control account {UNMAPPED_ACCOUNT} (other receivables), "
            "which the account map of the comparison does not cover.",
        ),
    ]


def expected_tickets(
    faults: Sequence[InjectedFault], planted: Sequence[PlantedDifference]
) -> list[InjectedFault]:
    """One expected dual-run ticket per entity that must differ, with its priority and why.

    Priority: dual-run differences are declared P3 (``dualrun.severity``); money affected at or above the
    comparison's materiality raises one level; an entity whose only differences are timing is lowered one.
    """
    reasons: dict[str, list[str]] = {}
    kinds: dict[str, set[str]] = {}
    for fault in faults:
        for entity in SEEN_BY.get(fault.kind, ()):
            reasons.setdefault(entity, []).append(f"go-live fault {fault.kind}")
            kinds.setdefault(entity, set()).add(fault.kind)
    for diff in planted:
        reasons.setdefault(diff.entity, []).append(f"planted {diff.kind} difference: {diff.description}")
        kinds.setdefault(diff.entity, set()).add(f"planted:{diff.kind}")
    expected = []
    for entity in sorted(reasons):
        found = kinds[entity]
        if found & MONEY_FAULTS:
            priority = "P2"
        elif found == {"planted:timing"}:
            priority = "P4"
        else:
            priority = "P3"
        expected.append(
            InjectedFault(
                kind=f"dual run: {entity}",
                category="data",
                expected_priority=priority,
                check_id=check_ids.dualrun(COMPARISON, entity),
                source=NEW_SOURCE,
                entity={},
                description="; ".join(reasons[entity]),
            )
        )
    return expected
