"""Writing documents the way the ERP posts them: each with its journal entry, payment plan and side effects.

:class:`Books` is the bookkeeping half of the simulation. A posted invoice or bill is written with its lines,
its journal entry (receivable or payable, revenue or stock, VAT), the payments it will receive or make as far
as the simulation reaches, its outbox message and finance-inbox twin (after go-live) or its legacy copy and
migration-extract rows (before go-live). Money is integer cents throughout; the loader's :class:`Values`
turn it into what the database driver expects.
"""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from hypercare.demo.loader import BulkLoader
from hypercare.demo.masterdata import VAT_RATE_PCT, Calendar, Master, Partner, Product, make_master

LEGACY_CONTROL_ACCOUNTS = {"out": "1131", "in": "2121"}
"""The legacy system's receivable/payable control accounts (the pre-2007 PRC chart's 应收账款 1131 and
应付账款 2121); the new ERP posts to 1122 and 2202. The dual run maps one to the other."""

Line = tuple[int, int | None, int, int]  # account id, partner id, debit cents, credit cents


def vat(untaxed: int) -> int:
    """13 % VAT on an invoice's untaxed total, rounded half up to the fen (global rounding)."""
    return (untaxed * VAT_RATE_PCT + 50) // 100


def business_day(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7) if day.weekday() >= 5 else day


class Counters:
    """Next ids per table and next numbers per document sequence, shared with fault injection."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, key: str) -> int:
        value = self._next.get(key, 0) + 1
        self._next[key] = value
        return value


@dataclass
class World:
    """What fault injection needs from the generation: calendar, master data, ids and number sequences."""

    cal: Calendar
    master: Master
    accounts: dict[str, int]  # role -> account id
    periods: dict[tuple[int, int], int]  # (year, month) -> period id
    counters: Counters = field(default_factory=Counters)

    def period_id(self, day: date) -> int:
        return self.periods[(day.year, day.month)]

    def entry_number(self, journal: str, day: date, migrated: bool) -> str:
        prefix = "MIG/" if migrated else ""
        seq = self.counters.take(f"je:{prefix}{journal}:{day.year}")
        return f"{prefix}{journal}/{day.year}/{seq:07d}"

    def invoice_number(self, kind: str, day: date, migrated: bool) -> str:
        doc = "INV" if kind == "out" else "BILL"
        if migrated:
            return f"MIG/{doc}/{self.counters.take(f'inv:MIG:{doc}'):06d}"
        return f"{doc}/{day.year}/{self.counters.take(f'inv:{doc}:{day.year}'):06d}"

    def draft_number(self) -> str:
        return f"DRAFT/{self.counters.take('inv:DRAFT'):06d}"


class Books:
    """Document and ledger writing shared by the simulation and its run loop."""

    def __init__(
        self,
        rng: random.Random,
        scale: float,
        cal: Calendar,
        *,
        erp: BulkLoader,
        finance: BulkLoader,
        legacy: BulkLoader,
    ) -> None:
        self.rng, self.scale, self.cal = rng, scale, cal
        self.erp, self.finance, self.legacy = erp, finance, legacy
        self.v, self.fv, self.lv = erp.values, finance.values, legacy.values
        self.out = erp.buffers
        self.master = make_master(rng, scale, cal)
        self.world = World(cal, self.master, {}, {})
        self.ids = self.world.counters
        self.stock: dict[int, int] = {}
        self.due: list[tuple[date, int, bool, int, int, int, str]] = []  # scheduled payments (a heap)
        self.gl: dict[tuple[int, int, int], list[int]] = {}  # legacy GL: (account, year, month) -> dr, cr
        self.rate = self.v.decimal(f"0.{VAT_RATE_PCT:02d}00")

    def _partner_row(self, p: Partner, kind: str) -> tuple[Any, ...]:
        return (p.id, p.code, p.name, kind, p.tax_id, p.term, self.v.stamp(p.created_at))

    # --- postings -------------------------------------------------------------------------------------

    def entry(
        self,
        journal: str,
        day: date,
        lines: list[Line],
        *,
        ref: str,
        at: datetime,
        user: str,
        state: str = "posted",
    ) -> int:
        v, migrated = self.v, day < self.cal.go_live
        eid = self.ids.take("journal_entry")
        number = self.world.entry_number(journal, day, migrated)
        d = v.day(day)
        self.out["journal_entry"].append(
            (eid, number, journal, d, self.world.period_id(day), state, ref, v.stamp(at), user)
        )
        rows = self.out["journal_line"]
        for account_id, partner_id, debit, credit in lines:
            rows.append(
                (
                    self.ids.take("journal_line"),
                    eid,
                    account_id,
                    partner_id,
                    v.money(debit),
                    v.money(credit),
                    d,
                )
            )
            if migrated:
                totals = self.gl.setdefault((account_id, day.year, day.month), [0, 0])
                totals[0] += debit
                totals[1] += credit
        return eid

    def _outbox(self, doc_type: str, ref: str, amount: int, at: datetime, payload: dict[str, Any]) -> None:
        mid = self.ids.take("integration_outbox")
        body = json.dumps(
            {"type": doc_type, "number": ref, **payload}, ensure_ascii=False, separators=(",", ":")
        )
        created = at + timedelta(seconds=2)
        done = created + timedelta(seconds=self.rng.randint(1, 30))
        self.out["integration_outbox"].append(
            (mid, doc_type, ref, body, "sent", 1, self.v.stamp(created), self.v.stamp(done), None)
        )
        fv = self.fv
        self.finance.buffers["finance_inbox"].append(
            (self.ids.take("finance_inbox"), mid, doc_type, ref, fv.money(amount), body, fv.stamp(done))
        )

    def _schedule(self, day: date, due: date, total: int, inbound: bool) -> list[tuple[date, int]]:
        """When the document will be paid, as far as the simulation reaches; amounts in cents."""
        rng = self.rng
        roll = rng.random()
        if roll < (0.04 if inbound else 0.03):
            plan: list[tuple[int, int]] = []
        elif inbound and roll < 0.14:
            first = total // 200 * 100
            plan = [(round(rng.gauss(2, 6)), first), (30 + round(rng.gauss(2, 6)), total - first)]
        else:
            plan = [(round(rng.gauss(2, 6)) if inbound else rng.randint(-3, 5), total)]
        paid = []
        for offset, amount in plan:
            when = business_day(max(day + timedelta(days=1), due + timedelta(days=offset)))
            if when <= self.cal.last_day and amount > 0:
                paid.append((when, amount))
        return paid

    def _document(
        self,
        kind: str,
        partner: Partner,
        day: date,
        *,
        at: datetime,
        lines: list[tuple[Product, int, int]],
        user: str,
        extra: tuple[str | None, str | None],
    ) -> str:
        """Write a posted invoice or bill with its lines, journal entry and payment plan; its number."""
        v, cal, world = self.v, self.cal, self.world
        migrated = day < cal.go_live
        inv_id = self.ids.take("invoice")
        number = world.invoice_number(kind, day, migrated)
        untaxed = sum(qty * price for _, qty, price in lines)
        tax = vat(untaxed)
        total = untaxed + tax
        due = day + timedelta(days=partner.term)
        acc = world.accounts
        if kind == "out":
            postings: list[Line] = [(acc["ar_control"], partner.id, total, 0)]
            postings += [(acc["revenue"], None, 0, qty * price) for _, qty, price in lines]
            postings.append((acc["vat_output"], None, 0, tax))
            move = self.entry("SAL", day, postings, ref=number, at=at, user=user)
        else:
            postings = [(acc["inventory"], None, untaxed, 0), (acc["vat_input"], None, tax, 0)]
            postings.append((acc["ap_control"], partner.id, 0, total))
            move = self.entry("PUR", day, postings, ref=number, at=at, user=user)
        plan = self._schedule(day, due, total, kind == "out")
        for when, amount in plan:
            heapq.heappush(
                self.due, (when, self.ids.take("plan"), kind == "out", inv_id, partner.id, amount, number)
            )
        residual = total - sum(amount for _, amount in plan)
        legacy_ref = None
        if migrated:
            at_cutover = total - sum(amount for when, amount in plan if when < cal.go_live)
            amounts = (untaxed, tax, total, at_cutover)
            legacy_ref = self._migrated(kind, partner, day, due=due, amounts=amounts, extra=extra)
        else:
            payload: dict[str, Any] = {"partner": partner.code, "date": day.isoformat(), "currency": "CNY"}
            payload.update(amount_untaxed=untaxed / 100, amount_tax=tax / 100, amount_total=total / 100)
            if kind == "out":
                self._outbox("customer_invoice", number, total, at, {**payload, "fapiao_no": extra[0]})
            else:
                self._outbox("supplier_invoice", number, total, at, {**payload, "supplier_ref": extra[1]})
        self.out["invoice"].append(
            (
                inv_id,
                kind,
                number,
                legacy_ref,
                extra[0],
                extra[1],
                partner.id,
                v.day(day),
                v.day(due),
                "posted",
                v.money(untaxed),
                v.money(tax),
                v.money(total),
                v.money(residual),
                move,
                v.stamp(at),
                user,
            )
        )
        self._invoice_lines(inv_id, lines)
        return number

    def _migrated(
        self,
        kind: str,
        partner: Partner,
        day: date,
        *,
        due: date,
        amounts: tuple[int, int, int, int],
        extra: tuple[str | None, str | None],
    ) -> str:
        """The legacy system's copy of a migrated document, and its row in the open-item extract if it was
        open at cutover; returns the legacy document number."""
        untaxed, tax, total, at_cutover = amounts
        prefix = "XS" if kind == "out" else "CG"  # 销售 sales, 采购 purchases
        legacy_ref = f"{prefix}{day:%Y%m}-{self.ids.take('legacy:' + prefix):06d}"
        lv = self.lv
        self.legacy.buffers["doc_header"].append(
            (
                legacy_ref,
                "AR" if kind == "out" else "AP",
                partner.code,
                lv.day(day),
                lv.day(due),
                lv.money(untaxed),
                lv.money(tax),
                lv.money(total),
                lv.money(at_cutover),
                *extra,
                LEGACY_CONTROL_ACCOUNTS[kind],
            )
        )
        if at_cutover > 0:
            v = self.v
            self.out["mig_open_item_extract"].append(
                (
                    self.ids.take("mig_open_item_extract"),
                    legacy_ref,
                    kind,
                    partner.code,
                    v.day(day),
                    v.day(due),
                    v.money(total),
                    v.money(at_cutover),
                    v.stamp(self.cal.cutover_at - timedelta(hours=2)),
                )
            )
        return legacy_ref

    def _invoice_lines(self, inv_id: int, lines: list[tuple[Product, int, int]]) -> None:
        v, rows = self.v, self.out["invoice_line"]
        for product, qty, price in lines:
            rows.append(
                (
                    self.ids.take("invoice_line"),
                    inv_id,
                    product.id,
                    product.name,
                    qty,
                    v.money(price),
                    self.rate,
                    v.money(qty * price),
                )
            )

    def _move(self, product: Product, day: date, *, kind: str, qty: int, ref: str, at: datetime) -> None:
        self.stock[product.id] += qty
        self.out["stock_move"].append(
            (
                self.ids.take("stock_move"),
                product.id,
                self.v.day(day),
                kind,
                qty,
                self.v.money(product.cost),
                ref,
                self.v.stamp(at),
            )
        )
