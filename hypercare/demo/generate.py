"""The simulation: six months of history migrated from the legacy system, then 20 days of live operation.

Day by day the company buys stock (replenishing before a sale would run a product short), sells, delivers,
invoices with a fapiao, and collects and pays on the partners' terms. Every document is written together
with its journal entry, so the generated ERP is consistent by construction: entries balance, invoice
headers equal their lines and their receivable/payable line, control accounts equal open items, stock
levels equal the sum of stock moves and never go negative, and every message the outbox marks as sent is in
the finance system's inbox. History (dated before go-live) is written as the migration loaded it: created
at cutover by ``migration``, mirrored in the legacy copy and in the migration extracts.

Rows are streamed into :class:`~hypercare.demo.loader.BulkLoader` buffers and flushed day by day, so memory
stays flat at any scale.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta

from hypercare.demo.books import Books, Line, World, vat
from hypercare.demo.masterdata import ACCOUNTS, COMPANY, USERS, Partner, Product, add_months

SALES_PER_UNIT_SCALE = 10_800


class Simulation(Books):
    """Static data, then the business day by day; :meth:`run` returns what fault injection needs."""

    # --- static data ----------------------------------------------------------------------------------

    def _static(self) -> None:
        v, lv, cal, out = self.v, self.lv, self.cal, self.out
        out["currency"] += [("CNY", "人民币 Renminbi", "¥", 2), ("USD", "美元 US dollar", "$", 2)]
        out["company"].append(
            (
                1,
                *COMPANY,
                "CNY",
                self.rate,
                v.day(cal.go_live),
                v.stamp(cal.cutover_at),
            )
        )
        parents = {parent for *_, parent in ACCOUNTS if parent}
        code_ids: dict[str, int] = {}
        self.account_names: dict[int, tuple[str, str]] = {}
        for i, (code, name, kind, role, parent) in enumerate(ACCOUNTS, start=1):
            code_ids[code] = i
            self.account_names[i] = (code, name)
            out["account"].append((i, code, name, kind, role, code in parents, code_ids.get(parent or "")))
            if role:
                self.world.accounts[role] = i
        for i, (year, month, first, last, closed) in enumerate(cal.periods(), start=1):
            self.world.periods[(year, month)] = i
            closed_at = v.stamp(cal.closed_at) if closed else None
            out["fiscal_period"].append(
                (i, year, month, v.day(first), v.day(last), "closed" if closed else "open", closed_at)
            )
        for i, (login, name, role) in enumerate(USERS, start=1):
            out["app_user"].append((i, login, name, role, True, v.stamp(cal.cutover_at - timedelta(days=30))))
        m = self.master
        extracted = v.stamp(cal.cutover_at - timedelta(hours=2))
        for c in m.customers:
            row_id = self.ids.take("mig_customer_extract")
            out["mig_customer_extract"].append((row_id, c.code, c.name, c.tax_id, c.excluded, extracted))
            status = "B" if c.excluded else "A"
            self.legacy.buffers["cust_master"].append(
                (c.code, c.name, c.tax_id, status, lv.day(cal.history_start))
            )
            if not c.excluded:
                out["partner"].append(self._partner_row(c, "customer"))
        for c in m.new_customers:
            out["partner"].append(self._partner_row(c, "customer"))
        for s in m.suppliers:
            out["partner"].append(self._partner_row(s, "supplier"))
            self.legacy.buffers["vend_master"].append((s.code, s.name, s.tax_id))
        for p in m.products:
            kind = "stock" if p.stock else "service"
            out["product"].append((p.id, p.sku, p.name, kind, v.money(p.cost), v.money(p.price)))

    # --- business events ------------------------------------------------------------------------------

    def _purchase(self, product: Product, shortfall: int, day: date, at: datetime) -> None:
        supplier = self.master.suppliers[product.supplier]
        qty = product.reorder + shortfall
        seq = self.ids.take("supplier_ref")
        ref = f"{day.year % 100:02d}{supplier.tax_id[2:4]}2000{seq:012d}"
        user = "migration" if day < self.cal.go_live else "li.na"
        lines = [(product, qty, product.cost)]
        number = self._document("in", supplier, day, at=at, lines=lines, user=user, extra=(None, ref))
        self._move(product, day, kind="receipt", qty=qty, ref=number, at=at)

    def _customer(self, day: date) -> Partner:
        m, rng = self.master, self.rng
        if day >= self.cal.go_live and rng.random() < 0.02:
            fresh = [c for c in m.new_customers if c.created_at.date() <= day]
            if fresh:
                return rng.choice(fresh)
        return rng.choices(m.customer_pool, cum_weights=m.customer_weights)[0]

    def _basket(self) -> list[tuple[Product, int, int]]:
        m, rng = self.master, self.rng
        wanted = 1 + min(5, int(rng.expovariate(0.6)))
        picked = {p.id: p for p in rng.choices(m.stock_products, cum_weights=m.stock_weights, k=wanted)}
        lines = []
        for product in picked.values():
            qty = max(1, round(300_000 / product.cost * rng.lognormvariate(0, 0.6)))
            discount = rng.choice((0, 0, 0, 2, 3, 5, 8))
            lines.append((product, qty, product.price * (100 - discount) // 100))
        if rng.random() < 0.2:
            lines.append((m.products[-2], 1, rng.randint(50, 800) * 100))
        return lines

    def _sale(self, day: date, at: datetime) -> None:
        migrated = day < self.cal.go_live
        customer = self._customer(day)
        lines = self._basket()
        for product, qty, _ in lines:
            if product.stock and self.stock[product.id] < qty:
                self._purchase(product, qty - self.stock[product.id], day, at - timedelta(minutes=3))
        seq = self.ids.take("fapiao")
        fapiao = f"{day.year % 100:02d}312000{seq:012d}"
        user = "migration" if migrated else self.rng.choice(("chen.jie", "liu.yang"))
        number = self._document("out", customer, day, at=at, lines=lines, user=user, extra=(fapiao, None))
        cogs = 0
        for product, qty, _ in lines:
            if product.stock:
                self._move(product, day, kind="delivery", qty=-qty, ref=number, at=at)
                cogs += qty * product.cost
        acc = self.world.accounts
        postings: list[Line] = [(acc["cogs"], None, cogs, 0), (acc["inventory"], None, 0, cogs)]
        self.entry("STK", day, postings, ref=number, at=at, user="migration" if migrated else "zhao.min")

    def _pay(self, day: date, at: datetime) -> None:
        _, _, inbound, inv_id, partner_id, amount, inv_number = heapq.heappop(self.due)
        migrated = day < self.cal.go_live
        pid = self.ids.take("payment")
        if migrated:
            number = f"MIG/PAY/{self.ids.take('pay:MIG'):07d}"
            user = "migration"
        else:
            direction = "IN" if inbound else "OUT"
            number = f"PAY/{direction}/{day.year}/{self.ids.take(f'pay:{direction}:{day.year}'):06d}"
            user = "zhang.wei" if inbound else "li.na"
        acc = self.world.accounts
        if inbound:
            lines: list[Line] = [(acc["bank"], None, amount, 0), (acc["ar_control"], partner_id, 0, amount)]
        else:
            lines = [(acc["ap_control"], partner_id, amount, 0), (acc["bank"], None, 0, amount)]
        move = self.entry("BNK", day, lines, ref=number, at=at, user=user)
        v = self.v
        self.out["payment"].append(
            (
                pid,
                number,
                "inbound" if inbound else "outbound",
                partner_id,
                inv_id,
                v.money(amount),
                v.day(day),
                move,
                v.stamp(at),
                user,
            )
        )
        if not migrated:
            doc_type = "customer_payment" if inbound else "supplier_payment"
            self._outbox(
                doc_type,
                number,
                amount,
                at,
                {"invoice": inv_number, "date": day.isoformat(), "amount": amount / 100, "currency": "CNY"},
            )

    def _draft(self, day: date, at: datetime, state: str) -> None:
        customer = self._customer(day)
        lines = self._basket()
        untaxed = sum(qty * price for _, qty, price in lines)
        total = untaxed + vat(untaxed)
        v = self.v
        inv_id = self.ids.take("invoice")
        self.out["invoice"].append(
            (
                inv_id,
                "out",
                self.world.draft_number(),
                None,
                None,
                None,
                customer.id,
                v.day(day),
                v.day(day + timedelta(days=customer.term)),
                state,
                v.money(untaxed),
                v.money(total - untaxed),
                v.money(total),
                v.money(total),
                None,
                v.stamp(at),
                "chen.jie",
            )
        )
        self._invoice_lines(inv_id, lines)

    # --- the run --------------------------------------------------------------------------------------

    def _opening(self) -> None:
        cal, acc = self.cal, self.world.accounts
        day, at = cal.history_start, cal.cutover_at
        inventory = 0
        for product in self.master.stock_products:
            self.stock[product.id] = 0
            self._move(product, day, kind="opening", qty=product.reorder, ref="OPENING", at=at)
            inventory += product.reorder * product.cost
        bank = round(800_000_000 * self.scale)
        capital = (inventory + bank) * 6 // 10
        lines: list[Line] = [
            (acc["inventory"], None, inventory, 0),
            (acc["bank"], None, bank, 0),
            (acc["capital"], None, 0, capital),
            (acc["retained_earnings"], None, 0, inventory + bank - capital),
        ]
        self.entry("OPEN", day, lines, ref="Opening balances", at=at, user="migration")

    def _daily_sales(self, days: list[date]) -> list[int]:
        weights = []
        for day in days:
            weight = (1.0, 1.0, 1.0, 1.0, 1.0, 0.25, 0.1)[day.weekday()]
            if (add_months(day.replace(day=1), 1) - day).days <= 3:
                weight *= 1.3  # month-end push
            weights.append(weight)
        total, whole = max(150, round(SALES_PER_UNIT_SCALE * self.scale)), sum(weights)
        counts, done, running = [], 0, 0.0
        for weight in weights:
            running += weight
            target = round(total * running / whole)
            counts.append(target - done)
            done = target
        return counts

    def run(self, advance: Callable[[], None] | None = None) -> World:
        cal, rng = self.cal, self.rng
        self._static()
        self._opening()
        days = cal.days()
        drafts_per_day = max(1, round(2 * math.sqrt(self.scale)))
        for day, sales in zip(days, self._daily_sales(days), strict=True):
            start, span = cal.window(day)
            migrated = day < cal.go_live
            while self.due and self.due[0][0] <= day:
                self._pay(
                    day, cal.cutover_at if migrated else start + timedelta(seconds=int(span * rng.random()))
                )
            for i in range(sales):
                at = (
                    cal.cutover_at
                    if migrated
                    else start + timedelta(seconds=int(span * (i + rng.random()) / sales))
                )
                self._sale(day, at)
            if not migrated and day >= cal.last_day - timedelta(days=2):
                for _ in range(drafts_per_day):
                    self._draft(day, start + timedelta(seconds=int(span * rng.random())), "draft")
            if not migrated and rng.random() < 0.25:
                self._draft(day, start + timedelta(seconds=int(span * rng.random())), "cancelled")
            for loader in (self.erp, self.finance, self.legacy):
                loader.flush_full()
            if advance:
                advance()
        self._closing()
        return self.world

    def _closing(self) -> None:
        cal, v, acc = self.cal, self.v, self.world.accounts
        for k in range(2):  # accruals prepared by the GL accountant, not yet posted
            amount = (k + 1) * 1_250_000
            lines: list[Line] = [
                (acc["admin_expense"], None, amount, 0),
                (acc["other_payable"], None, 0, amount),
            ]
            at = cal.window(cal.last_day)[0]
            self.entry(
                "MISC",
                cal.last_day,
                lines,
                ref=f"Accrual draft {k + 1}",
                at=at,
                user="wang.fang",
                state="draft",
            )
        for product in self.master.stock_products:
            qty = self.stock[product.id]
            self.out["stock_level"].append(
                (
                    self.ids.take("stock_level"),
                    product.id,
                    qty,
                    v.money(qty * product.cost),
                    v.stamp(cal.as_of),
                )
            )
        lv = self.lv
        for (account_id, year, month), (debit, credit) in sorted(self.gl.items()):
            code, name = self.account_names[account_id]
            self.legacy.buffers["gl_period_balance"].append(
                (code, year, month, name, lv.money(debit), lv.money(credit))
            )
