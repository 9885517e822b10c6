"""The demo ERP's HTTP API: a few read-only transactions, so HTTP probes have a real target.

``GET /api/health``, ``/api/invoices``, ``/api/invoices/{number}``, ``/api/partners/{code}`` and
``/api/trial-balance``. Simulated slowness comes from ``demo_fault_config`` rows keyed
``api_delay_s:<path>`` (seconds), read once at start-up and applied before the handler runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hypercare.demo import erp_schema as s

DELAY_PREFIX = "api_delay_s:"
CENT = Decimal("0.01")


class InvoiceSummary(BaseModel):
    number: str
    kind: Literal["out", "in"]
    state: str
    partner_code: str
    invoice_date: date
    due_date: date
    fapiao_no: str | None
    supplier_ref: str | None
    amount_untaxed: Decimal
    amount_tax: Decimal
    amount_total: Decimal
    amount_residual: Decimal


class InvoiceLine(BaseModel):
    sku: str
    description: str
    quantity: Decimal
    price_unit: Decimal
    amount_untaxed: Decimal


class InvoiceDetail(InvoiceSummary):
    journal_entry: str | None
    lines: list[InvoiceLine]


class PartnerDetail(BaseModel):
    code: str
    name: str
    kind: str
    tax_id: str
    payment_term_days: int
    open_invoices: int
    open_amount: Decimal


class TrialBalanceRow(BaseModel):
    code: str
    name: str
    debit: Decimal
    credit: Decimal
    balance: Decimal


class TrialBalance(BaseModel):
    period: str | None
    date_from: date | None
    date_to: date | None
    accounts: list[TrialBalanceRow]
    total_debit: Decimal
    total_credit: Decimal


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in {None, "", ":memory:"}:
        read_only = parsed.set(database=f"file:{parsed.database}?mode=ro", query={"uri": "true"})
        return create_engine(read_only, connect_args={"check_same_thread": False})
    return create_engine(parsed, pool_pre_ping=True)


def _delays(engine: Engine) -> dict[str, float]:
    cfg = s.demo_fault_config.c
    with engine.connect() as conn:
        rows = conn.execute(select(cfg.key, cfg.value).where(cfg.key.like(f"{DELAY_PREFIX}%")))
        return {key.removeprefix(DELAY_PREFIX): float(value) for key, value in rows}


def _connection(request: Request) -> Iterator[Connection]:
    engine: Engine = request.app.state.engine
    with engine.connect() as conn:
        yield conn


Conn = Annotated[Connection, Depends(_connection)]


def _summary_query() -> Any:
    i = s.invoice.c
    return select(
        i.id,
        i.number,
        i.kind,
        i.state,
        s.partner.c.code.label("partner_code"),
        i.invoice_date,
        i.due_date,
        i.fapiao_no,
        i.supplier_ref,
        i.amount_untaxed,
        i.amount_tax,
        i.amount_total,
        i.amount_residual,
        i.move_id,
    ).join(s.partner, s.partner.c.id == i.partner_id)


def _summary(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for key in ("amount_untaxed", "amount_tax", "amount_total", "amount_residual"):
        data[key] = _money(data[key])
    return data


router = APIRouter(prefix="/api")


@router.get("/health")
def health(conn: Conn) -> dict[str, str]:
    try:
        name, go_live = conn.execute(select(s.company.c.name, s.company.c.go_live_date)).one()
    except SQLAlchemyError as exc:
        raise HTTPException(503, f"ERP database unavailable: {type(exc).__name__}") from None
    return {"status": "ok", "company": name, "go_live_date": str(go_live)}


@router.get("/invoices")
def invoices(
    conn: Conn,
    state: Literal["draft", "posted", "cancelled"] | None = None,
    kind: Literal["out", "in"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[InvoiceSummary]:
    query = _summary_query().order_by(s.invoice.c.id.desc()).limit(limit)
    if state:
        query = query.where(s.invoice.c.state == state)
    if kind:
        query = query.where(s.invoice.c.kind == kind)
    return [InvoiceSummary(**_summary(row)) for row in conn.execute(query)]


@router.get("/invoices/{number:path}")
def invoice(number: str, conn: Conn) -> InvoiceDetail:
    row = conn.execute(_summary_query().where(s.invoice.c.number == number)).first()
    if row is None:
        raise HTTPException(404, f"invoice {number!r} not found")
    line, product = s.invoice_line.c, s.product.c
    lines = conn.execute(
        select(product.sku, line.description, line.quantity, line.price_unit, line.amount_untaxed)
        .join(s.product, product.id == line.product_id)
        .where(line.invoice_id == row.id)
        .order_by(line.id)
    )
    entry = conn.execute(select(s.journal_entry.c.number).where(s.journal_entry.c.id == row.move_id)).scalar()
    return InvoiceDetail(
        **_summary(row),
        journal_entry=entry,
        lines=[
            InvoiceLine(
                **{
                    **item._mapping,
                    "price_unit": _money(item.price_unit),
                    "amount_untaxed": _money(item.amount_untaxed),
                }
            )
            for item in lines
        ],
    )


@router.get("/partners/{code}")
def partner(code: str, conn: Conn) -> PartnerDetail:
    p = s.partner.c
    row = conn.execute(select(s.partner).where(p.code == code)).first()
    if row is None:
        raise HTTPException(404, f"partner {code!r} not found")
    i = s.invoice.c
    count, amount = conn.execute(
        select(func.count(), func.sum(i.amount_residual)).where(
            i.partner_id == row.id, i.state == "posted", i.amount_residual > 0
        )
    ).one()
    return PartnerDetail(
        code=row.code,
        name=row.name,
        kind=row.kind,
        tax_id=row.tax_id,
        payment_term_days=row.payment_term_days,
        open_invoices=count,
        open_amount=_money(amount),
    )


@router.get("/trial-balance")
def trial_balance(
    conn: Conn, period: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None
) -> TrialBalance:
    line, entry, account = s.journal_line.c, s.journal_entry.c, s.account.c
    query = (
        select(account.code, account.name, func.sum(line.debit), func.sum(line.credit))
        .select_from(s.journal_line)
        .join(s.journal_entry, entry.id == line.entry_id)
        .join(s.account, account.id == line.account_id)
        .where(entry.state == "posted")
        .group_by(account.code, account.name)
        .order_by(account.code)
    )
    start = end = None
    if period:
        year, month = (int(part) for part in re.findall(r"\d+", period))
        fp = s.fiscal_period.c
        found = conn.execute(
            select(fp.date_start, fp.date_end).where(fp.year == year, fp.month == month)
        ).first()
        if found is None:
            raise HTTPException(404, f"no fiscal period {period}")
        start, end = found
        query = query.where(line.date >= start, line.date <= end)
    rows = [
        TrialBalanceRow(
            code=code, name=name, debit=_money(dr), credit=_money(cr), balance=_money(dr) - _money(cr)
        )
        for code, name, dr, cr in conn.execute(query)
    ]
    return TrialBalance(
        period=period,
        date_from=start,
        date_to=end,
        accounts=rows,
        total_debit=sum((r.debit for r in rows), Decimal("0.00")),
        total_credit=sum((r.credit for r in rows), Decimal("0.00")),
    )


def create_erp_api(erp_url: str) -> FastAPI:
    """The API app; the database engine and the configured delays are set up in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = _engine(erp_url)
        app.state.engine = engine
        app.state.delays = _delays(engine)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(title="Demo ERP API (上海华东贸易有限公司)", version="1.0", lifespan=lifespan)

    @app.middleware("http")
    async def simulated_latency(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        delay = request.app.state.delays.get(request.url.path)
        if delay:
            await asyncio.sleep(delay)
        return await call_next(request)

    app.include_router(router)
    return app
