"""A real Tryton database on PostgreSQL for the Tryton pack's tests.

``build_tryton_database`` creates the database, activates ``account_invoice``, ``stock``, ``sale`` and
``purchase`` (and their dependencies) with ``trytond-admin``, then fills it through ``proteus`` in a child
process (trytond keeps process-wide state: its pool, its config, its caches, which must not leak into the
test process): a company in USD, the minimal chart of accounts, a fiscal year with monthly periods whose
first period is closed, a customer, two suppliers, three posted customer invoices, two posted supplier
invoices, one fresh draft invoice, a fourth posted customer invoice with a 10 % tax and a posted journal
entry in euros; in stock, one product received and shipped before a closed stock period (dated 30 days
ago) and after it, an inventory counted two days ago with one unit missing, and a draft move planned for
later; a purchase of another product received and billed, and a sale of it shipped and invoiced.

Run as ``python -m tests.monitor.tryton_fixture <database> <trytond.conf>`` to do the proteus part alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.servers import IN_CI

TODAY = dt.datetime.now(dt.UTC).date()  # the container clock is UTC, like trytond's default
ADMIN_PASSWORD = "hypercare-test-admin"


class TrytonUnavailable(RuntimeError):
    """trytond, proteus or the database build is not available here."""


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise TrytonUnavailable(f"{what} failed (exit {done.returncode}):\n{tail}")


def build_tryton_database(database: str, pg_uri: str, workdir: Path) -> None:
    """Activate the modules and load the books; the database must exist and be empty."""
    try:
        import proteus  # noqa: F401
        import trytond  # noqa: F401
    except ImportError as exc:
        raise TrytonUnavailable(f"trytond/proteus not installed: {exc}") from exc
    conf = workdir / "trytond.conf"
    conf.write_text(f"[database]\nuri = {pg_uri}\n", encoding="utf-8")
    passfile = workdir / "admin.pass"
    passfile.write_text(ADMIN_PASSWORD, encoding="utf-8")
    env = {**os.environ, "TRYTONPASSFILE": str(passfile), "PYTHONWARNINGS": "ignore"}
    admin = str(Path(sys.executable).with_name("trytond-admin"))
    _run(
        [
            admin,
            "-c",
            str(conf),
            "-d",
            database,
            "-u",
            "account_invoice",
            "stock",
            "sale",
            "purchase",
            "--activate-dependencies",
            "--email",
            "admin@example.com",
        ],
        env,
        "trytond-admin",
    )
    root = Path(__file__).resolve().parents[2]
    _run(
        [sys.executable, "-m", "tests.monitor.tryton_fixture", f"{pg_uri.rstrip('/')}/{database}", str(conf)],
        {**env, "PYTHONPATH": str(root)},
        "proteus build",
    )


# --- the proteus part (child process) -------------------------------------------------------------------


def _invoice(
    model: Any, party: Any, kind: str, amount: str, account: Any, *, reference: str | None = None
) -> Any:
    invoice = model(type=kind, party=party, invoice_date=TODAY)
    if reference:
        invoice.reference = reference
    line = invoice.lines.new()
    line.account = account
    line.description = "services" if kind == "out" else "goods"
    line.quantity = 1
    line.unit_price = Decimal(amount)
    return invoice


def fill(database_uri: str, config_file: str) -> None:  # pragma: no cover - runs in the child process
    from proteus import Model, config

    config.set_trytond(database=database_uri, config_file=config_file)  # before trytond picks a backend
    from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, create_tax, get_accounts
    from trytond.modules.account_invoice.tests.tools import (
        create_payment_term,
        set_fiscalyear_invoice_sequences,
    )
    from trytond.modules.company.tests.tools import create_company, get_company

    create_company()
    company = get_company()
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(company, today=TODAY))
    fiscalyear.click("create_period")
    create_chart(company)
    accounts = get_accounts(company)
    term = create_payment_term()
    term.save()

    party_model = Model.get("party.party")
    customer = party_model(name="Acme Retail")
    customer.save()
    suppliers = [party_model(name=name) for name in ("Globex Supplies", "Initech Parts")]
    for supplier in suppliers:
        supplier.save()

    invoice_model = Model.get("account.invoice")
    posted = [
        _invoice(invoice_model, customer, "out", amount, accounts["revenue"])
        for amount in ("1200.00", "350.50", "89.99")
    ]
    posted += [
        _invoice(invoice_model, supplier, "in", amount, accounts["expense"], reference=ref)
        for supplier, amount, ref in ((suppliers[0], "640.00", "GS-1001"), (suppliers[1], "75.25", "IP-77"))
    ]
    for invoice in posted:
        invoice.payment_term = term
        invoice.save()
        invoice.click("post")
        assert invoice.state == "posted", invoice.state
    draft = _invoice(invoice_model, customer, "out", "10.00", accounts["revenue"])
    draft.payment_term = term
    draft.save()
    tax = create_tax(Decimal("0.10"))
    tax.save()
    taxed = _invoice(invoice_model, customer, "out", "200.00", accounts["revenue"])
    taxed.lines[0].taxes.append(Model.get("account.tax")(tax.id))
    taxed.payment_term = term
    taxed.save()
    taxed.click("post")
    assert (taxed.state, taxed.total_amount) == ("posted", Decimal("220.00")), (
        taxed.state,
        taxed.total_amount,
    )

    period_model = Model.get("account.period")
    _euro_expense(accounts, period_model)
    first = period_model.find([("fiscalyear", "=", fiscalyear.id)], order=[("start_date", "ASC")])[0]
    if first.start_date <= TODAY <= first.end_date:  # never close the period the invoices are in
        raise RuntimeError("the first period holds today; the fiscal year should start months earlier")
    first.click("close")

    _stock()
    _flows(accounts, term, customer, suppliers[0])


def _flows(accounts: dict[str, Any], term: Any, customer: Any, supplier: Any) -> None:  # pragma: no cover
    """Procure to pay and order to cash, end to end: 12 gadgets bought at 15.00, received and billed; 7 sold at
    40.00, shipped and invoiced (invoice method 'fulfillment': the invoice follows the goods)."""
    from proteus import Model

    category = Model.get("product.category")(name="Gadgets", accounting=True)
    category.account_revenue, category.account_expense = accounts["revenue"], accounts["expense"]
    category.save()
    unit = Model.get("product.uom").find([("name", "=", "Unit")])[0]
    template = Model.get("product.template")(
        name="Gadget",
        default_uom=unit,
        type="goods",
        salable=True,
        purchasable=True,
        list_price=Decimal("40"),
        account_category=category,
    )
    template.save()
    gadget = template.products[0]

    purchase = Model.get("purchase.purchase")(party=supplier, payment_term=term, invoice_method="fulfillment")
    line = purchase.lines.new()
    line.product, line.quantity, line.unit_price = gadget, 12, Decimal("15.00")
    purchase.click("quote")
    purchase.click("confirm")
    move_model = Model.get("stock.move")
    shipment_in = Model.get("stock.shipment.in")(supplier=supplier)
    for move in purchase.moves:
        shipment_in.incoming_moves.append(move_model(move.id))
    shipment_in.save()
    shipment_in.click("receive")
    shipment_in.click("do")
    purchase.reload()
    (bill,) = purchase.invoices
    bill.invoice_date = TODAY
    bill.reference = "GS-2002"
    bill.click("post")
    assert bill.total_amount == Decimal("180.00"), bill.total_amount

    sale = Model.get("sale.sale")(party=customer, payment_term=term, invoice_method="fulfillment")
    line = sale.lines.new()
    line.product, line.quantity, line.unit_price = gadget, 7, Decimal("40.00")
    sale.click("quote")
    sale.click("confirm")
    (shipment,) = sale.shipments
    for button in ("assign_try", "pick", "pack", "do"):
        shipment.click(button)
    sale.reload()
    (invoice,) = sale.invoices
    invoice.click("post")
    assert invoice.total_amount == Decimal("280.00"), invoice.total_amount


def _euro_expense(accounts: dict[str, Any], period_model: Any) -> None:  # pragma: no cover - child process
    """A posted journal entry in euros (EUR is 2.0 per USD): 100 EUR of expense paid in cash, 50.00 USD."""
    from proteus import Model
    from trytond.modules.currency.tests.tools import get_currency

    euro = get_currency("EUR")
    (period,) = period_model.find(
        [("start_date", "<=", TODAY), ("end_date", ">=", TODAY), ("type", "=", "standard")]
    )
    (journal,) = Model.get("account.journal").find([("code", "=", "MISC")])
    move = Model.get("account.move")(journal=journal, period=period, date=TODAY, description="EUR expense")
    for account, debit, credit, euros in (
        (accounts["expense"], "50.00", "0", "100.00"),
        (accounts["cash"], "0", "50.00", "-100.00"),
    ):
        line = move.lines.new()
        line.account = account
        line.debit, line.credit = Decimal(debit), Decimal(credit)
        line.second_currency, line.amount_second_currency = euro, Decimal(euros)
    move.save()
    move.click("post")
    assert move.state == "posted", move.state


STOCK_MOVES = (  # (days before today, from, to, quantity, unit price); the stock period closes 30 days ago
    (40, "SUP", "STO", 100, "10.00"),
    (35, "STO", "CUS", 30, "25.00"),
    (3, "SUP", "STO", 20, "10.50"),
    (1, "STO", "CUS", 15, "25.00"),
)
STOCK_PERIOD_DAYS_AGO = 30
INVENTORY_DAYS_AGO = 2  # counts 89 where 90 are expected: one unit goes to lost and found


def _stock() -> None:  # pragma: no cover - runs in the child process
    from proteus import Model, config
    from trytond.modules.currency.tests.tools import get_currency

    currency = get_currency()
    unit = Model.get("product.uom").find([("name", "=", "Unit")])[0]
    template = Model.get("product.template")(
        name="Widget", default_uom=unit, type="goods", list_price=Decimal("25"), cost_price_method="average"
    )
    template.save()
    product = template.products[0]
    locations = {
        loc.code: loc for loc in Model.get("stock.location").find([("code", "in", ["SUP", "STO", "CUS"])])
    }
    move_model = Model.get("stock.move")

    def move(days_ago: int, src: str, dst: str, quantity: int, price: str) -> Any:
        when = TODAY - dt.timedelta(days=days_ago)
        return move_model(
            product=product,
            unit=unit,
            quantity=quantity,
            from_location=locations[src],
            to_location=locations[dst],
            planned_date=when,
            effective_date=when if days_ago >= 0 else None,
            unit_price=Decimal(price),
            currency=currency,
        )

    def done(moves: list[Any]) -> None:
        for record in moves:  # one at a time, in date order: a shipment needs the stock received before it
            record.save()
            # With sale and purchase active, Tryton asks to confirm a move from a supplier or to a customer
            # without an order (a user warning): confirmed here as the client would.
            warning = (
                hashlib.md5(f"stock.move,{record.id}".encode(), usedforsecurity=False).hexdigest() + ".done"
            )
            Model.get("res.user.warning")(
                user=Model.get("res.user")(config.get_config().user), name=warning
            ).save()
            if record.from_location.type == "storage":  # reserved before it is done, as a shipment would
                move_model.write([record], {"state": "assigned"}, config.get_config().context)
                record.reload()
            record.click("do")

    done([move(*m) for m in STOCK_MOVES if m[0] > STOCK_PERIOD_DAYS_AGO])
    period = Model.get("stock.period")(date=TODAY - dt.timedelta(days=STOCK_PERIOD_DAYS_AGO))
    period.save()
    period.click("close")
    after = [move(*m) for m in STOCK_MOVES if m[0] <= STOCK_PERIOD_DAYS_AGO]
    done(after[:1])  # received 3 days ago; the inventory two days ago; shipped yesterday
    inventory = Model.get("stock.inventory")(
        location=locations["STO"], date=TODAY - dt.timedelta(days=INVENTORY_DAYS_AGO), empty_quantity="keep"
    )
    inventory.save()
    inventory.click("complete_lines")
    (line,) = inventory.lines
    assert line.expected_quantity == 90, line.expected_quantity
    line.quantity = 89
    inventory.save()
    inventory.click("confirm")
    done(after[1:])
    planned = move(-2, "STO", "CUS", 5, "25.00")  # work in progress: a draft move planned for later
    planned.save()


def tryton_skip(reason: str) -> None:
    """Skip locally, fail under CI=true, like tests.servers.unavailable."""
    if IN_CI:
        pytest.fail(f"Tryton database not available under CI: {reason}")
    pytest.skip(f"Tryton database not available: {reason}")


if __name__ == "__main__":  # pragma: no cover
    fill(sys.argv[1], sys.argv[2])
