"""Go-live faults injected into the demo ERP, each once, with ground truth.

Every fault is done the way it happens around a go-live — a migration loader that bypasses validation, a
replayed load, a user posting into the wrong period, an interface message that never leaves, a goods issue
for stock that was never loaded — and touches one entity only. Each kind maps to exactly one check of the
``demo_erp`` pack (or, for the slow endpoint, to the HTTP probe of the trial balance; for the replayed
integration queue, to the pack's invoice volume watch, whose ticket's entity is the key and the measure) and
is designed so that this check, and no other, fails: where the real-world fault would cascade (a changed
invoice amount also changes its journal entry), the injection keeps the rest consistent on purpose.

Targets are chosen with a random generator seeded from the build seed and the fault kind, so a fault hits
the same entity whatever other faults are injected, and never an entity another fault already took.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hypercare.demo import faults_ledger as ledger
from hypercare.demo import faults_ops as ops
from hypercare.demo.injection import FaultContext, Injected


@dataclass(frozen=True)
class InjectedFault:
    """Ground truth of one injected fault: what Hypercare should find, where, and how urgent it is."""

    kind: str
    category: str  # data | process | technical | user
    expected_priority: str  # P1..P4
    check_id: str
    source: str
    entity: dict[str, str]  # the check's key columns for the offending row, as text
    description: str


@dataclass(frozen=True)
class FaultKind:
    kind: str
    category: str
    priority: str
    check_id: str
    inject: Callable[[FaultContext], Injected]


# kind, category, expected priority, check id, injector. Order matters: a fault sees what earlier ones left
# (negative_stock reads the stock level after invoice_without_delivery gave some back).
FAULTS: tuple[FaultKind, ...] = tuple(
    FaultKind(*row)
    for row in (
        ("unbalanced_journal_entry", "data", "P1", "gl.unbalanced_entries", ledger.unbalanced_journal_entry),
        ("ar_subledger_gl_drift", "data", "P2", "ar.control_postings_without_open_item", ledger.ar_gl_drift),
        (
            "invoice_total_differs_from_entry",
            "data",
            "P1",
            "documents.header_lines_ledger_mismatch",
            ledger.invoice_total_differs_from_entry,
        ),
        (
            "duplicate_supplier_invoice",
            "data",
            "P2",
            "ap.duplicate_supplier_invoices",
            ledger.duplicate_supplier_invoice,
        ),
        (
            "duplicate_fapiao_number",
            "data",
            "P1",
            "sales.duplicate_fapiao_numbers",
            ledger.duplicate_fapiao_number,
        ),
        (
            "posting_in_closed_period",
            "user",
            "P1",  # declared P2, raised by materiality: the accrual is >= 500,000 CNY (anomaly.materiality)
            "gl.postings_in_closed_periods",
            ledger.posting_in_closed_period,
        ),
        ("future_dated_posting", "user", "P3", "gl.future_dated_postings", ledger.future_dated_posting),
        (
            "migrated_customer_lost",
            "data",
            "P2",
            "migration.customers_missing",
            ledger.migrated_customer_lost,
        ),
        (
            "migrated_amount_changed",
            "data",
            "P2",
            "migration.open_item_mismatch",
            ledger.migrated_amount_changed,
        ),
        ("integration_message_stuck", "technical", "P2", "integration.stuck_messages", ops.message_stuck),
        ("integration_message_failed", "technical", "P2", "integration.failed_messages", ops.message_failed),
        (
            "invoice_without_delivery",
            "process",
            "P3",
            "sales.invoiced_not_delivered",
            ops.invoice_without_delivery,
        ),
        ("negative_stock", "data", "P2", "inventory.negative_stock", ops.negative_stock),
        (
            "invoice_stuck_in_draft",
            "process",
            "P3",
            "sales.overdue_draft_invoices",
            ops.invoice_stuck_in_draft,
        ),
        ("slow_erp_endpoint", "technical", "P2", "probe.erp-trial-balance", ops.slow_erp_endpoint),
        ("integration_replay", "process", "P2", "sales.volume.invoices", ops.invoice_replay),
    )
)
FAULT_KINDS: tuple[str, ...] = tuple(f.kind for f in FAULTS)


def resolve_kinds(faults: Sequence[str] | None) -> list[FaultKind]:
    """The fault kinds to inject, in injection order; ``None`` means all. Unknown kinds are a ValueError."""
    if faults is None:
        return list(FAULTS)
    if isinstance(faults, str):
        raise ValueError(f"faults must be a sequence of kinds, not the string {faults!r}")
    unknown = sorted(set(faults) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown)}; valid kinds: {', '.join(FAULT_KINDS)}")
    return [f for f in FAULTS if f.kind in set(faults)]


def inject(ctx: FaultContext, kinds: Sequence[FaultKind], seed: int) -> list[InjectedFault]:
    injected = []
    for fault in kinds:
        ctx.rng = random.Random(f"{seed}:{fault.kind}")  # noqa: S311 - reproducible choice, not security
        entity, description = fault.inject(ctx)
        injected.append(
            InjectedFault(
                fault.kind, fault.category, fault.priority, fault.check_id, "erp", entity, description
            )
        )
    return injected
