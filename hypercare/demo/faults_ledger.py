"""Faults in the ledger, the documents and the migration: what loaders, replays and users do at go-live."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import delete, exists, insert, select, update

from hypercare.demo import erp_schema as s
from hypercare.demo.injection import (
    CENT,
    FaultContext,
    Injected,
    entry_number_of,
    live_sales,
    migrated_sales,
    open_at_cutover,
    yuan,
)


def unbalanced_journal_entry(ctx: FaultContext) -> Injected:
    invoice = ctx.pick(s.invoice, migrated_sales())
    (line,) = ctx.entry_lines(invoice.move_id, "vat_output")
    ctx.erp.execute(delete(s.journal_line).where(s.journal_line.c.id == line.id))
    number = entry_number_of(ctx, invoice.move_id)
    return {"entry_number": number}, (
        f"The migration loader wrote journal entry {number} (invoice {invoice.legacy_ref}) without its "
        f"VAT line of {line.credit}: the entry is posted with debits exceeding credits."
    )


def ar_gl_drift(ctx: FaultContext) -> Injected:
    day = ctx.business_day_before(ctx.rng.randint(2, 8))
    amount = Decimal(ctx.rng.randint(20, 90) * 1000)
    lines = [("bank", amount, Decimal(0)), ("ar_control", Decimal(0), amount)]
    number = ctx.post(
        "MISC", day, lines, ref="客户回款 customer transfer", at=ctx.at(day, 3), user="zhang.wei"
    )
    return {"entry_number": number}, (
        f"A customer transfer of {amount} was booked by hand in {number} straight to the receivable control "
        "account, without a partner or an invoice: the AR ledger and the GL drift apart."
    )


def invoice_total_differs_from_entry(ctx: FaultContext) -> Injected:
    invoice = ctx.pick(s.invoice, live_sales(), accept=lambda row: row.amount_total % 1 != 0)
    exact = invoice.amount_total
    rounded = exact.to_integral_value(ROUND_FLOOR)
    ctx.erp.execute(update(s.invoice).where(s.invoice.c.id == invoice.id).values(amount_total=rounded))
    return {"invoice_number": invoice.number}, (
        f"抹零: the header total of invoice {invoice.number} was rounded down to {rounded} by a print-layout "
        f"customisation, while its journal entry and its lines keep {exact}."
    )


def duplicate_supplier_invoice(ctx: FaultContext) -> Injected:
    inv = s.invoice.c
    bill = ctx.pick(s.invoice, [inv.kind == "in", inv.number.like("MIG/BILL/%"), open_at_cutover()])
    world, at = ctx.world, ctx.cal.cutover_at + timedelta(minutes=50)
    entry_id = world.counters.take("journal_entry")
    day = bill.invoice_date
    number = world.entry_number("PUR", day, migrated=True)
    ctx.erp.execute(
        insert(s.journal_entry).values(
            id=entry_id,
            number=number,
            journal="PUR",
            date=day,
            period_id=world.period_id(day),
            state="posted",
            ref=bill.legacy_ref,
            created_at=at,
            created_by="migration",
        )
    )
    lines = ctx.erp.execute(
        select(s.journal_line).where(s.journal_line.c.entry_id == bill.move_id)
    ).mappings()
    ctx.erp.execute(
        insert(s.journal_line),
        [{**line, "id": world.counters.take("journal_line"), "entry_id": entry_id} for line in lines],
    )
    copy_id = world.counters.take("invoice")
    copy = {**bill._mapping, "id": copy_id, "number": world.invoice_number("in", day, migrated=True)}
    copy.update(move_id=entry_id, amount_residual=bill.amount_total, created_at=at)
    ctx.erp.execute(insert(s.invoice).values(copy))
    items = ctx.erp.execute(select(s.invoice_line).where(s.invoice_line.c.invoice_id == bill.id)).mappings()
    ctx.erp.execute(
        insert(s.invoice_line),
        [{**item, "id": world.counters.take("invoice_line"), "invoice_id": copy_id} for item in items],
    )
    supplier = ctx.erp.execute(select(s.partner.c.code).where(s.partner.c.id == bill.partner_id)).scalar_one()
    return {"partner_code": supplier, "supplier_ref": bill.supplier_ref}, (
        f"The open-payables load was replayed for bill {bill.legacy_ref}: supplier {supplier}'s invoice "
        f"{bill.supplier_ref} of {bill.amount_total} is posted twice ({bill.number} and {copy['number']})."
    )


def duplicate_fapiao_number(ctx: FaultContext) -> Injected:
    donor = ctx.pick(s.invoice, migrated_sales())
    victim = ctx.pick(s.invoice, live_sales())
    ctx.erp.execute(update(s.invoice).where(s.invoice.c.id == victim.id).values(fapiao_no=donor.fapiao_no))
    return {"fapiao_no": donor.fapiao_no}, (
        f"Fapiao number {donor.fapiao_no} of migrated invoice {donor.legacy_ref} was keyed again on new "
        f"invoice {victim.number}: the e-fapiao sequence was not moved past the migrated numbers."
    )


def posting_in_closed_period(ctx: FaultContext) -> Injected:
    day = ctx.cal.go_live.replace(day=1) - timedelta(days=1)
    posted = ctx.business_day_before(ctx.rng.randint(1, 6))
    amount = yuan(ctx, 5000, 30000)  # always >= the demo's materiality (500,000 CNY): raised to P1
    lines = [("admin_expense", amount, Decimal(0)), ("other_payable", Decimal(0), amount)]
    number = ctx.post("MISC", day, lines, ref="预提费用 accrual", at=ctx.at(posted, 6), user="wang.fang")
    return {"entry_number": number}, (
        f"An accrual of {amount} was posted on {posted} as {number} dated {day}, in a period closed at "
        "cutover: the posting date defaulted to the document date."
    )


def future_dated_posting(ctx: FaultContext) -> Injected:
    meant = ctx.business_day_before(ctx.rng.randint(1, 5))
    day = meant.replace(year=meant.year + 1, day=min(meant.day, 28))
    amount = yuan(ctx, 500, 4999)  # always below materiality (500,000 CNY): stays P3
    lines = [("selling_expense", amount, Decimal(0)), ("bank", Decimal(0), amount)]
    number = ctx.post("MISC", day, lines, ref="展会费用 trade fair", at=ctx.at(meant, 2), user="wang.fang")
    return {"entry_number": number}, (
        f"Entry {number} of {amount} keyed on {meant} is dated {day}: the year was mistyped."
    )


def migrated_customer_lost(ctx: FaultContext) -> Injected:
    p = s.partner.c
    dormant = [
        p.kind == "customer",
        p.created_at == ctx.cal.cutover_at,
        ~exists().where(s.invoice.c.partner_id == p.id),
    ]
    customer = ctx.pick(s.partner, dormant)
    ctx.erp.execute(delete(s.partner).where(p.id == customer.id))
    return {"customer_code": customer.code}, (
        f"Customer {customer.code} {customer.name} is in the legacy extract but was dropped by the loader "
        "(its name failed the GB2312 conversion) and never reached the new ERP."
    )


def migrated_amount_changed(ctx: FaultContext) -> Injected:
    paid = exists().where(s.payment.c.invoice_id == s.invoice.c.id)
    invoice = ctx.pick(s.invoice, [*migrated_sales(), open_at_cutover(), ~paid])
    untaxed, tax = invoice.amount_untaxed, invoice.amount_tax
    delta = tax - (untaxed * 9 / 100).quantize(CENT)
    total = invoice.amount_total - delta
    ctx.erp.execute(
        update(s.invoice)
        .where(s.invoice.c.id == invoice.id)
        .values(amount_tax=tax - delta, amount_total=total, amount_residual=total)
    )
    (receivable,) = ctx.entry_lines(invoice.move_id, "ar_control")
    (output_vat,) = ctx.entry_lines(invoice.move_id, "vat_output")
    line = s.journal_line.c
    ctx.erp.execute(
        update(s.journal_line).where(line.id == receivable.id).values(debit=receivable.debit - delta)
    )
    ctx.erp.execute(
        update(s.journal_line).where(line.id == output_vat.id).values(credit=output_vat.credit - delta)
    )
    return {"document_number": invoice.legacy_ref}, (
        f"Open item {invoice.legacy_ref} was migrated with 9 % instead of 13 % VAT (tax code V13 mapped to "
        f"9 %): {total} in the new ERP against {invoice.amount_total} in the legacy extract."
    )
