"""A real Tryton database on PostgreSQL for the Tryton pack's tests.

``build_tryton_database`` creates the database, activates ``account_invoice`` (and its dependencies) with
``trytond-admin``, then fills it through ``proteus`` in a child process (trytond keeps process-wide state:
its pool, its config, its caches, which must not leak into the test process): a company in USD, the
minimal chart of accounts, a fiscal year with monthly periods whose first period is closed, a customer, two
suppliers, three posted customer invoices, two posted supplier invoices and one fresh draft invoice.

Run as ``python -m tests.monitor.tryton_fixture <database> <trytond.conf>`` to do the proteus part alone.
"""

from __future__ import annotations

import datetime as dt
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
    from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, get_accounts
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

    period_model = Model.get("account.period")
    first = period_model.find([("fiscalyear", "=", fiscalyear.id)], order=[("start_date", "ASC")])[0]
    if first.start_date <= TODAY <= first.end_date:  # never close the period the invoices are in
        raise RuntimeError("the first period holds today; the fiscal year should start months earlier")
    first.click("close")


def tryton_skip(reason: str) -> None:
    """Skip locally, fail under CI=true, like tests.servers.unavailable."""
    if IN_CI:
        pytest.fail(f"Tryton database not available under CI: {reason}")
    pytest.skip(f"Tryton database not available: {reason}")


if __name__ == "__main__":  # pragma: no cover
    fill(sys.argv[1], sys.argv[2])
