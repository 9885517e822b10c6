"""Faults in operations: interfaces that stop, processes the new ERP changed, stock, and a slow endpoint."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, delete, exists, func, insert, select, update

from hypercare.demo import erp_schema as s
from hypercare.demo.injection import (
    CENT,
    FaultContext,
    Injected,
    live_sales,
)


def _break_message(ctx: FaultContext, **values: Any) -> Row[Any]:
    o = s.integration_outbox.c
    message = None
    # The last 3 days when they hold a message; a small build after a weekend may have none there, so the
    # window widens (the checks that find these faults look at status and age, not at how old beyond 4 h).
    for days in (3, 4, 7, 30):
        recent = [
            o.status == "sent",
            o.created_at < ctx.cal.as_of - timedelta(hours=6),
            o.created_at > ctx.cal.as_of - timedelta(days=days),
        ]
        free = o.id.not_in(sorted(ctx.used.get("integration_outbox", set())))
        if ctx.erp.execute(select(o.id).where(*recent, free).limit(1)).first() is not None:
            message = ctx.pick(s.integration_outbox, recent)
            break
    if message is None:
        message = ctx.pick(s.integration_outbox, [o.status == "sent"])
    ctx.erp.execute(update(s.integration_outbox).where(o.id == message.id).values(**values))
    inbox = s.finance_inbox.c
    ctx.finance.execute(delete(s.finance_inbox).where(inbox.source_message_id == message.id))
    return message


def message_stuck(ctx: FaultContext) -> Injected:
    message = _break_message(ctx, status="pending", attempts=0, processed_at=None)
    return {"message_id": str(message.id)}, (
        f"Outbox message {message.id} ({message.doc_type} {message.doc_ref}) has been pending since "
        f"{message.created_at:%Y-%m-%d %H:%M} UTC: the sender job stopped after a certificate change."
    )


def message_failed(ctx: FaultContext) -> Injected:
    error = "HTTP 422 from finance system: account 6001 has no mapping in the GL interface"
    message = _break_message(ctx, status="failed", attempts=5, error=error)
    return {"message_id": str(message.id)}, (
        f"Outbox message {message.id} ({message.doc_type} {message.doc_ref}) failed: {error}."
    )


def invoice_without_delivery(ctx: FaultContext) -> Injected:
    inv = s.invoice.c
    old_enough = inv.invoice_date < ctx.cal.last_day - timedelta(days=3)
    invoice = ctx.pick(s.invoice, [*live_sales(), old_enough])
    move, level = s.stock_move.c, s.stock_level.c
    moves = list(
        ctx.erp.execute(select(s.stock_move).where(move.ref == invoice.number, move.kind == "delivery"))
    )
    for m in moves:
        ctx.erp.execute(
            update(s.stock_level)
            .where(level.product_id == m.product_id)
            .values(quantity=level.quantity - m.quantity, value=level.value - m.quantity * m.unit_cost)
        )
    ctx.erp.execute(delete(s.stock_move).where(move.ref == invoice.number, move.kind == "delivery"))
    entry = s.journal_entry.c
    cogs = select(entry.id).where(entry.ref == invoice.number, entry.journal == "STK").scalar_subquery()
    ctx.erp.execute(delete(s.journal_line).where(s.journal_line.c.entry_id == cogs))
    ctx.erp.execute(delete(s.journal_entry).where(entry.ref == invoice.number, entry.journal == "STK"))
    return {"invoice_number": invoice.number}, (
        f"Invoice {invoice.number} was raised from the order before the goods left: the new billing policy "
        "invoices on order, and nothing was delivered."
    )


def negative_stock(ctx: FaultContext) -> Injected:
    product = ctx.pick(s.product, [s.product.c.type == "stock"])
    level = s.stock_level.c
    on_hand: Decimal = ctx.erp.execute(
        select(level.quantity).where(level.product_id == product.id)
    ).scalar_one()
    issued = on_hand + ctx.rng.randint(1, 20)
    cost = product.unit_cost
    day = ctx.business_day_before(1)
    at = ctx.at(day, 7)
    world = ctx.world
    ref = f"GI/{day.year}/{world.counters.take('gi'):05d}"
    ctx.erp.execute(
        insert(s.stock_move).values(
            id=world.counters.take("stock_move"),
            product_id=product.id,
            date=day,
            kind="issue",
            quantity=-issued,
            unit_cost=cost,
            ref=ref,
            created_at=at,
        )
    )
    ctx.erp.execute(
        update(s.stock_level)
        .where(level.product_id == product.id)
        .values(quantity=on_hand - issued, value=(on_hand - issued) * cost, updated_at=at)
    )
    value = (issued * cost).quantize(CENT)
    ctx.post(
        "STK",
        day,
        [("cogs", value, Decimal(0)), ("inventory", Decimal(0), value)],
        ref=ref,
        at=at,
        user="zhao.min",
    )
    return {"sku": product.sku}, (
        f"Goods issue {ref} took {issued} of {product.sku} with {on_hand} on hand: the item's opening stock "
        "was loaded short at cutover and the issue was forced through."
    )


def invoice_stuck_in_draft(ctx: FaultContext) -> Injected:
    p = s.partner.c
    customer = ctx.pick(s.partner, [p.kind == "customer", exists().where(s.invoice.c.partner_id == p.id)])
    product = ctx.pick(s.product, [s.product.c.type == "stock"])
    world, day = ctx.world, ctx.cal.go_live + timedelta(days=ctx.rng.randint(1, 3))
    price, qty = product.list_price, ctx.rng.randint(10, 60)
    untaxed = price * qty
    tax = (untaxed * 13 / 100).quantize(CENT)
    invoice_id, number = world.counters.take("invoice"), world.draft_number()
    ctx.erp.execute(
        insert(s.invoice).values(
            id=invoice_id,
            kind="out",
            number=number,
            partner_id=customer.id,
            invoice_date=day,
            due_date=day + timedelta(days=15),
            state="draft",
            amount_untaxed=untaxed,
            amount_tax=tax,
            amount_total=untaxed + tax,
            amount_residual=untaxed + tax,
            created_at=ctx.at(day, 2),
            created_by="chen.jie",
        )
    )
    ctx.erp.execute(
        insert(s.invoice_line).values(
            id=world.counters.take("invoice_line"),
            invoice_id=invoice_id,
            product_id=product.id,
            description=product.name,
            quantity=qty,
            price_unit=price,
            tax_rate=Decimal("0.13"),
            amount_untaxed=untaxed,
        )
    )
    return {"invoice_number": number}, (
        f"Draft invoice {number} for {customer.code} ({untaxed + tax}) was never posted: the approver role "
        f"was not assigned in the new ERP. It was due on {day + timedelta(days=15)}."
    )


SLOW_PATH = "/api/trial-balance"
SLOW_DELAY_S = "1.5"


def slow_erp_endpoint(ctx: FaultContext) -> Injected:
    ctx.erp.execute(
        insert(s.demo_fault_config).values(
            key=f"api_delay_s:{SLOW_PATH}",
            value=SLOW_DELAY_S,
            description="Trial balance query without the new (account, date) index after go-live",
        )
    )
    return {}, (
        f"GET {SLOW_PATH} of the ERP API answers in about {SLOW_DELAY_S} s: the report runs a full scan "
        "since the go-live index rebuild was skipped."
    )


REPLAY_FACTOR = 20
"""The replay day holds up to this many times the usual sales invoices (as many as the recent orders)."""


def replay_day(ctx: FaultContext) -> date:
    """The last business day (Monday to Friday) that is complete at ``as_of`` with two hours to spare, so
    the volume watch (grace 30 minutes) judges it on the demo's one pass."""
    as_of = ctx.cal.as_of
    day = as_of.date() - timedelta(days=1)
    if as_of - datetime.combine(as_of.date(), time()) < timedelta(hours=2):
        day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def invoice_replay(ctx: FaultContext) -> Injected:
    """The web-shop connector replays its queue after a restart: every recent sales order comes again and
    becomes a draft sales invoice, so one business day holds ~20x the usual invoices. Drafts (no fapiao, no
    journal entry yet), so only the volume watch sees them before someone posts the duplicates."""
    inv = s.invoice.c
    day = replay_day(ctx)
    usual = ctx.erp.execute(
        select(func.count())
        .select_from(s.invoice)
        .where(inv.kind == "out", inv.state != "cancelled", inv.invoice_date == day)
    ).scalar_one()
    copies = list(
        ctx.erp.execute(
            select(s.invoice)
            .where(*live_sales(), inv.invoice_date < day)
            .order_by(inv.invoice_date.desc(), inv.id.desc())
            .limit(max(usual, 10) * (REPLAY_FACTOR - 1))
        )
    )
    world = ctx.world
    lines_of: dict[int, list[Row[Any]]] = {}
    for line in ctx.erp.execute(
        select(s.invoice_line).where(s.invoice_line.c.invoice_id.in_([c.id for c in copies]))
    ):
        lines_of.setdefault(line.invoice_id, []).append(line)
    invoices, lines = [], []
    for n, original in enumerate(copies):
        invoice_id = world.counters.take("invoice")
        at = datetime.combine(day, time(13, 5)) + timedelta(seconds=n)
        invoices.append(
            {
                "id": invoice_id,
                "kind": "out",
                "number": world.draft_number(),
                "partner_id": original.partner_id,
                "invoice_date": day,
                "due_date": day + timedelta(days=30),
                "state": "draft",
                "amount_untaxed": original.amount_untaxed,
                "amount_tax": original.amount_tax,
                "amount_total": original.amount_total,
                "amount_residual": original.amount_total,
                "created_at": at,
                "created_by": "interface",
            }
        )
        lines += [
            {
                "id": world.counters.take("invoice_line"),
                "invoice_id": invoice_id,
                "product_id": line.product_id,
                "description": line.description,
                "quantity": line.quantity,
                "price_unit": line.price_unit,
                "tax_rate": line.tax_rate,
                "amount_untaxed": line.amount_untaxed,
            }
            for line in lines_of.get(original.id, [])
        ]
    ctx.erp.execute(insert(s.invoice), invoices)
    if lines:
        ctx.erp.execute(insert(s.invoice_line), lines)
    return {"kind": "out", "measure": "count"}, (
        f"The web-shop connector replayed its queue on {day}: {len(copies)} sales orders already invoiced "
        f"came again as draft invoices ({usual} real ones that day), created by 'interface' at 13:05."
    )
