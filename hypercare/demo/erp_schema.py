"""Tables of the demo ERP, of the finance system it feeds, and of the legacy system it replaced.

SQLAlchemy Core only: the builder bulk-loads them and the checks query them with plain SQL, so there is no
ORM layer to keep in step. Timestamps are naive UTC (``DateTime``), dates are ``Date``, money is
``Numeric(18, 2)``. Secondary indexes are declared on the tables but created after the bulk load (see
:mod:`hypercare.demo.loader`), as are foreign keys on server databases.

Three databases, three metadata objects:

* :data:`ERP` — the new ERP: ledger, AR/AP, inventory, the integration outbox, and the migration staging
  tables (the legacy extract loaded at cutover), plus ``demo_fault_config`` for simulated technical faults.
* :data:`FINANCE` — the finance system's inbox of messages received from the ERP outbox.
* :data:`LEGACY` — the legacy ERP as of cutover, with its own table and column names (for the dual run).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def Money() -> Numeric[Decimal]:
    return Numeric(18, 2)


def Quantity() -> Numeric[Decimal]:
    return Numeric(18, 3)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


ERP = MetaData(naming_convention=NAMING)

currency = Table(
    "currency",
    ERP,
    Column("code", String(3), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("symbol", String(8), nullable=False),
    Column("decimals", Integer, nullable=False),
)

company = Table(
    "company",
    ERP,
    _id(),
    Column("name", String(128), nullable=False),
    Column("name_en", String(128), nullable=False),
    Column("tax_id", String(32), nullable=False),
    Column("currency_code", String(3), ForeignKey("currency.code"), nullable=False),
    Column("vat_rate", Numeric(6, 4), nullable=False),
    Column("go_live_date", Date, nullable=False),
    Column("cutover_at", DateTime, nullable=False),
)

account = Table(
    "account",
    ERP,
    _id(),
    Column("code", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("type", String(16), nullable=False),
    Column("role", String(32)),
    Column("is_group", Boolean, nullable=False),
    Column("parent_id", Integer, ForeignKey("account.id")),
    CheckConstraint("type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="type"),
    Index(None, "code", unique=True),
    Index(None, "role"),
)

fiscal_period = Table(
    "fiscal_period",
    ERP,
    _id(),
    Column("year", Integer, nullable=False),
    Column("month", Integer, nullable=False),
    Column("date_start", Date, nullable=False),
    Column("date_end", Date, nullable=False),
    Column("state", String(8), nullable=False),
    Column("closed_at", DateTime),
    CheckConstraint("state IN ('open', 'closed')", name="state"),
    Index(None, "year", "month", unique=True),
)

app_user = Table(
    "app_user",
    ERP,
    _id(),
    Column("login", String(64), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

partner = Table(
    "partner",
    ERP,
    _id(),
    Column("code", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("tax_id", String(32), nullable=False),
    Column("payment_term_days", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("kind IN ('customer', 'supplier')", name="kind"),
    Index(None, "code", unique=True),
)

product = Table(
    "product",
    ERP,
    _id(),
    Column("sku", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("type", String(8), nullable=False),
    Column("unit_cost", Money(), nullable=False),
    Column("list_price", Money(), nullable=False),
    CheckConstraint("type IN ('stock', 'service')", name="type"),
    Index(None, "sku", unique=True),
)

journal_entry = Table(
    "journal_entry",
    ERP,
    _id(),
    Column("number", String(32), nullable=False),
    Column("journal", String(8), nullable=False),
    Column("date", Date, nullable=False),
    Column("period_id", Integer, ForeignKey("fiscal_period.id"), nullable=False),
    Column("state", String(8), nullable=False),
    Column("ref", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64), ForeignKey("app_user.login"), nullable=False),
    CheckConstraint("state IN ('draft', 'posted')", name="state"),
    Index(None, "number", unique=True),
    Index(None, "date"),
    Index(None, "ref"),
)

journal_line = Table(
    "journal_line",
    ERP,
    _id(),
    Column("entry_id", Integer, ForeignKey("journal_entry.id"), nullable=False),
    Column("account_id", Integer, ForeignKey("account.id"), nullable=False),
    Column("partner_id", Integer, ForeignKey("partner.id")),
    Column("debit", Money(), nullable=False),
    Column("credit", Money(), nullable=False),
    Column("date", Date, nullable=False),
    CheckConstraint("debit >= 0 AND credit >= 0", name="sign"),
    Index(None, "entry_id", "debit", "credit"),  # covers the per-entry balance check
    Index(None, "account_id", "date"),
)

invoice = Table(
    "invoice",
    ERP,
    _id(),
    Column("kind", String(4), nullable=False),
    Column("number", String(32), nullable=False),
    Column("legacy_ref", String(32)),
    Column("fapiao_no", String(20)),
    Column("supplier_ref", String(32)),
    Column("partner_id", Integer, ForeignKey("partner.id"), nullable=False),
    Column("invoice_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("state", String(12), nullable=False),
    Column("amount_untaxed", Money(), nullable=False),
    Column("amount_tax", Money(), nullable=False),
    Column("amount_total", Money(), nullable=False),
    Column("amount_residual", Money(), nullable=False),
    Column("move_id", Integer, ForeignKey("journal_entry.id")),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64), ForeignKey("app_user.login"), nullable=False),
    CheckConstraint("kind IN ('out', 'in')", name="kind"),
    CheckConstraint("state IN ('draft', 'posted', 'cancelled')", name="state"),
    Index(None, "kind", "number", unique=True),
    Index(None, "legacy_ref"),
    Index(None, "fapiao_no"),
    Index(None, "partner_id", "supplier_ref"),
    Index(None, "move_id"),
    Index(None, "state", "kind"),
)

invoice_line = Table(
    "invoice_line",
    ERP,
    _id(),
    Column("invoice_id", Integer, ForeignKey("invoice.id"), nullable=False),
    Column("product_id", Integer, ForeignKey("product.id"), nullable=False),
    Column("description", String(128), nullable=False),
    Column("quantity", Quantity(), nullable=False),
    Column("price_unit", Money(), nullable=False),
    Column("tax_rate", Numeric(6, 4), nullable=False),
    Column("amount_untaxed", Money(), nullable=False),
    Index(None, "invoice_id"),
)

payment = Table(
    "payment",
    ERP,
    _id(),
    Column("number", String(32), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("partner_id", Integer, ForeignKey("partner.id"), nullable=False),
    Column("invoice_id", Integer, ForeignKey("invoice.id"), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("date", Date, nullable=False),
    Column("move_id", Integer, ForeignKey("journal_entry.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64), ForeignKey("app_user.login"), nullable=False),
    CheckConstraint("kind IN ('inbound', 'outbound')", name="kind"),
    Index(None, "number", unique=True),
    Index(None, "invoice_id"),
    Index(None, "move_id"),
)

stock_move = Table(
    "stock_move",
    ERP,
    _id(),
    Column("product_id", Integer, ForeignKey("product.id"), nullable=False),
    Column("date", Date, nullable=False),
    Column("kind", String(12), nullable=False),
    Column("quantity", Quantity(), nullable=False),  # signed: receipts > 0, issues < 0
    Column("unit_cost", Money(), nullable=False),
    Column("ref", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("kind IN ('opening', 'receipt', 'delivery', 'issue')", name="kind"),
    Index(None, "product_id"),
    Index(None, "ref"),
)

stock_level = Table(
    "stock_level",
    ERP,
    _id(),
    Column("product_id", Integer, ForeignKey("product.id"), nullable=False),
    Column("quantity", Quantity(), nullable=False),
    Column("value", Money(), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index(None, "product_id", unique=True),
)

integration_outbox = Table(
    "integration_outbox",
    ERP,
    _id(),
    Column("doc_type", String(32), nullable=False),
    Column("doc_ref", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("processed_at", DateTime),
    Column("error", Text),
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    Index(None, "status", "created_at"),
)

mig_customer_extract = Table(
    "mig_customer_extract",
    ERP,
    _id(),
    Column("customer_code", String(16), nullable=False),
    Column("customer_name", String(128), nullable=False),
    Column("tax_id", String(32), nullable=False),
    Column("excluded_reason", String(128)),  # rows deliberately not migrated, with the reason
    Column("extracted_at", DateTime, nullable=False),
    Index(None, "customer_code"),
)

mig_open_item_extract = Table(
    "mig_open_item_extract",
    ERP,
    _id(),
    Column("document_number", String(32), nullable=False),
    Column("kind", String(4), nullable=False),
    Column("partner_code", String(16), nullable=False),
    Column("document_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("amount_total", Money(), nullable=False),
    Column("amount_residual", Money(), nullable=False),
    Column("extracted_at", DateTime, nullable=False),
    Index(None, "document_number"),
)

demo_fault_config = Table(
    "demo_fault_config",
    ERP,
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("description", Text, nullable=False),
)

FINANCE = MetaData(naming_convention=NAMING)

finance_inbox = Table(
    "finance_inbox",
    FINANCE,
    _id(),
    Column("source_message_id", Integer, nullable=False),
    Column("doc_type", String(32), nullable=False),
    Column("doc_ref", String(32), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Index(None, "source_message_id", unique=True),
)

LEGACY = MetaData(naming_convention=NAMING)

cust_master = Table(
    "cust_master",
    LEGACY,
    Column("cust_no", String(16), primary_key=True),
    Column("cust_name", String(128), nullable=False),
    Column("tax_no", String(32), nullable=False),
    Column("status", String(1), nullable=False),  # A active, B blocked
    Column("open_date", Date, nullable=False),
)

vend_master = Table(
    "vend_master",
    LEGACY,
    Column("vend_no", String(16), primary_key=True),
    Column("vend_name", String(128), nullable=False),
    Column("tax_no", String(32), nullable=False),
)

doc_header = Table(
    "doc_header",
    LEGACY,
    Column("doc_no", String(32), primary_key=True),
    Column("doc_kind", String(2), nullable=False),  # AR sales invoice, AP supplier bill
    Column("partner_no", String(16), nullable=False),
    Column("doc_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("net_amt", Money(), nullable=False),
    Column("tax_amt", Money(), nullable=False),
    Column("gross_amt", Money(), nullable=False),
    Column("open_amt", Money(), nullable=False),
    Column("fapiao_no", String(20)),
    Column("vendor_inv_no", String(32)),
    Column("ctrl_acct", String(16)),  # the legacy (pre-2007 chart) receivable/payable control account
)

gl_period_balance = Table(
    "gl_period_balance",
    LEGACY,
    Column("acct_code", String(16), nullable=False),
    Column("fiscal_yr", Integer, nullable=False),
    Column("fiscal_mth", Integer, nullable=False),
    Column("acct_name", String(128), nullable=False),
    Column("dr_amt", Money(), nullable=False),
    Column("cr_amt", Money(), nullable=False),
    PrimaryKeyConstraint("acct_code", "fiscal_yr", "fiscal_mth"),
)
