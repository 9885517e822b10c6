"""What a fault injection works with: the open ERP and finance connections, the generated world, and
a way to pick a random target that no other fault has taken."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, exists, func, insert, select

from hypercare.demo import erp_schema as s
from hypercare.demo.books import World
from hypercare.demo.masterdata import Calendar


@dataclass
class FaultContext:
    erp: Connection
    finance: Connection
    world: World
    used: dict[str, set[int]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    @property
    def cal(self) -> Calendar:
        return self.world.cal

    def pick(
        self,
        table: Table,
        where: Sequence[ColumnElement[bool]],
        accept: Callable[[Row[Any]], bool] = lambda _row: True,
    ) -> Row[Any]:
        """A random row of ``table`` matching ``where`` (and ``accept``), not taken by another fault."""
        taken = self.used.setdefault(table.name, set())
        conditions = [*where, table.c.id.not_in(sorted(taken))]
        low, high = self.erp.execute(
            select(func.min(table.c.id), func.max(table.c.id)).where(*conditions)
        ).one()
        if low is None:
            raise RuntimeError(f"no candidate row in {table.name} for this fault; build with a larger scale")
        start = self.rng.randint(low, high)
        for half in (table.c.id >= start, table.c.id < start):
            query = select(table).where(*conditions, half).order_by(table.c.id).limit(500)
            for row in self.erp.execute(query):
                if accept(row):
                    taken.add(row.id)
                    return row
        raise RuntimeError(f"no acceptable candidate row in {table.name} for this fault")

    def business_day_before(self, days: int) -> date:
        day = self.cal.last_day - timedelta(days=days)
        return day - timedelta(days=max(0, day.weekday() - 4))

    def at(self, day: date, hour: int) -> datetime:
        return datetime.combine(day, time(hour, self.rng.randint(0, 59), self.rng.randint(0, 59)))

    def post(
        self,
        journal: str,
        day: date,
        lines: list[tuple[str, Decimal, Decimal]],
        *,
        ref: str,
        at: datetime,
        user: str,
    ) -> str:
        """Post a balanced manual entry (account role, debit, credit); return its number."""
        world = self.world
        entry_id = world.counters.take("journal_entry")
        number = world.entry_number(journal, day, migrated=False)
        self.erp.execute(
            insert(s.journal_entry).values(
                id=entry_id,
                number=number,
                journal=journal,
                date=day,
                period_id=world.period_id(day),
                state="posted",
                ref=ref,
                created_at=at,
                created_by=user,
            )
        )
        self.erp.execute(
            insert(s.journal_line),
            [
                {
                    "id": world.counters.take("journal_line"),
                    "entry_id": entry_id,
                    "account_id": world.accounts[role],
                    "partner_id": None,
                    "debit": debit,
                    "credit": credit,
                    "date": day,
                }
                for role, debit, credit in lines
            ],
        )
        return number

    def entry_lines(self, entry_id: int, role: str) -> list[Row[Any]]:
        account_id = self.world.accounts[role]
        query = select(s.journal_line).where(
            s.journal_line.c.entry_id == entry_id, s.journal_line.c.account_id == account_id
        )
        return list(self.erp.execute(query))


Injected = tuple[dict[str, str], str]
CENT = Decimal("0.01")


def yuan(ctx: FaultContext, low: int, high: int) -> Decimal:
    return Decimal(ctx.rng.randint(low, high) * 100) + Decimal(ctx.rng.randint(0, 99)) / 100


def entry_number_of(ctx: FaultContext, entry_id: int) -> str:
    return str(
        ctx.erp.execute(select(s.journal_entry.c.number).where(s.journal_entry.c.id == entry_id)).scalar_one()
    )


def migrated_sales() -> list[ColumnElement[bool]]:
    inv = s.invoice.c
    return [inv.kind == "out", inv.state == "posted", inv.number.like("MIG/INV/%")]


def live_sales() -> list[ColumnElement[bool]]:
    inv = s.invoice.c
    return [inv.kind == "out", inv.state == "posted", inv.number.like("INV/%")]


def open_at_cutover() -> ColumnElement[bool]:
    extract = s.mig_open_item_extract.c
    return exists().where(extract.document_number == s.invoice.c.legacy_ref)
