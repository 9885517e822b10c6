"""The demo company's calendar and master data: chart of accounts, periods, users, products, partners.

Shanghai Huadong Trading Co., Ltd. (上海华东贸易有限公司) buys industrial supplies from suppliers in the
Yangtze delta and sells them to customers across China, in CNY with 13 % VAT. It went live on the new ERP
20 days before ``as_of``; the six months before go-live were migrated from the legacy system in detail.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

VAT_RATE_PCT = 13
GO_LIVE_DAYS_BEFORE_AS_OF = 20
HISTORY_MONTHS = 6
BUSINESS_START = time(1, 0)  # 09:00 in Shanghai (UTC+8)
BUSINESS_END = time(10, 0)  # 18:00 in Shanghai

COMPANY = ("上海华东贸易有限公司", "Shanghai Huadong Trading Co., Ltd.", "91310115MA1K4HDT8X")

# code, name, type, role, parent code. Accounts named as parents are groups.
ACCOUNTS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("1", "资产类 Assets", "asset", None, None),
    ("1001", "库存现金 Cash on hand", "asset", "cash", "1"),
    ("1002", "银行存款 Bank deposits", "asset", "bank", "1"),
    ("1122", "应收账款 Accounts receivable", "asset", "ar_control", "1"),
    ("1221", "其他应收款 Other receivables", "asset", "other_receivable", "1"),
    ("1405", "库存商品 Merchandise inventory", "asset", "inventory", "1"),
    ("1901", "待处理财产损溢 Suspense", "asset", "suspense", "1"),
    ("2", "负债类 Liabilities", "liability", None, None),
    ("2202", "应付账款 Accounts payable", "liability", "ap_control", "2"),
    ("2211", "应付职工薪酬 Payroll payable", "liability", "payroll", "2"),
    ("2221", "应交税费 Taxes payable", "liability", None, "2"),
    ("222101", "应交增值税-进项税额 VAT input", "liability", "vat_input", "2221"),
    ("222102", "应交增值税-销项税额 VAT output", "liability", "vat_output", "2221"),
    ("2241", "其他应付款 Other payables", "liability", "other_payable", "2"),
    ("4", "所有者权益类 Equity", "equity", None, None),
    ("4001", "实收资本 Paid-in capital", "equity", "capital", "4"),
    ("4104", "利润分配-未分配利润 Retained earnings", "equity", "retained_earnings", "4"),
    ("60", "收入类 Income", "income", None, None),
    ("6001", "主营业务收入 Sales revenue", "income", "revenue", "60"),
    ("6051", "其他业务收入 Other income", "income", "other_income", "60"),
    ("64", "成本费用类 Costs and expenses", "expense", None, None),
    ("6401", "主营业务成本 Cost of goods sold", "expense", "cogs", "64"),
    ("6601", "销售费用 Selling expenses", "expense", "selling_expense", "64"),
    ("6602", "管理费用 Administrative expenses", "expense", "admin_expense", "64"),
    ("6603", "财务费用 Finance expenses", "expense", "finance_expense", "64"),
)

# login, name, role
USERS: tuple[tuple[str, str, str], ...] = (
    ("migration", "数据迁移 Migration loader", "system"),
    ("interface", "接口用户 Interface", "system"),
    ("zhang.wei", "张伟", "ar_accountant"),
    ("li.na", "李娜", "ap_accountant"),
    ("wang.fang", "王芳", "gl_accountant"),
    ("chen.jie", "陈杰", "sales_admin"),
    ("liu.yang", "刘洋", "sales_admin"),
    ("zhao.min", "赵敏", "warehouse"),
)

# name pattern, unit cost range in yuan
PRODUCT_FAMILIES: tuple[tuple[str, float, float], ...] = (
    ("不锈钢六角螺栓 M{n}", 0.3, 3.0),
    ("铜芯电缆 BV-{n}mm² 100m", 80, 600),
    ("LED 平板灯 {n}W", 40, 300),
    ("深沟球轴承 62{n:02d}", 8, 120),
    ("瓦楞纸箱 {n}号", 1, 8),
    ("PVC 给水管 DN{n}", 10, 90),
    ("抗磨液压油 L-HM{n} 18L", 200, 700),
    ("ABS 安全帽 型号{n}", 15, 60),
    ("丁腈劳保手套 {n}双装", 20, 80),
    ("通用变频器 {n}kW", 900, 6000),
    ("电动工具套装 {n}件", 300, 2500),
    ("静音空气压缩机 {n}L", 1500, 9000),
    ("激光打印硒鼓 {n}A", 80, 500),
    ("人体工学办公椅 型号{n}", 200, 1200),
    ("网络服务器机柜 {n}U", 1200, 5000),
)
SERVICES = (("SVC-FREIGHT", "运费 Freight"), ("SVC-INSTALL", "安装调试服务 Installation"))

CITIES = (
    ("上海", "310115"),
    ("上海", "310104"),
    ("苏州", "320500"),
    ("杭州", "330100"),
    ("宁波", "330200"),
    ("无锡", "320200"),
    ("南京", "320100"),
    ("嘉兴", "330400"),
    ("常州", "320400"),
    ("合肥", "340100"),
    ("广州", "440100"),
    ("深圳", "440300"),
)
NAME_CHARS = "华恒金东远博中海天瑞永鸿新联德宏嘉盛长浦申明兴安信达通丰合泰和源隆昌顺利成创"
TRADES = (
    "贸易",
    "机电",
    "五金",
    "电子科技",
    "建材",
    "物流",
    "包装材料",
    "工业设备",
    "自动化",
    "电气",
    "实业",
)
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
EXCLUSION_REASONS = (
    "duplicate of {other}, merged before cutover",
    "blocked since 2019, no open items",
    "test customer created by IT",
)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Calendar:
    as_of: datetime  # naive UTC
    go_live: date
    cutover_at: datetime  # when the migration loaded the history (naive UTC)
    closed_at: datetime  # when the pre-go-live periods were closed
    history_start: date
    last_day: date  # last date with business activity

    @classmethod
    def build(cls, as_of: datetime) -> Calendar:
        naive = as_of.astimezone(UTC).replace(tzinfo=None)
        today = naive.date()
        go_live = today - timedelta(days=GO_LIVE_DAYS_BEFORE_AS_OF)
        cutover_at = datetime.combine(go_live - timedelta(days=1), time(14, 0))
        opened = datetime.combine(today, BUSINESS_START) + timedelta(minutes=30)
        return cls(
            as_of=naive,
            go_live=go_live,
            cutover_at=cutover_at,
            closed_at=cutover_at + timedelta(hours=3),
            history_start=add_months(go_live.replace(day=1), -HISTORY_MONTHS),
            last_day=today if naive >= opened else today - timedelta(days=1),
        )

    def days(self) -> list[date]:
        count = (self.last_day - self.history_start).days + 1
        return [self.history_start + timedelta(days=i) for i in range(count)]

    def window(self, day: date) -> tuple[datetime, float]:
        """Start of business on ``day`` and the seconds of business hours documents may be created in."""
        start = datetime.combine(day, BUSINESS_START)
        end = min(datetime.combine(day, BUSINESS_END), self.as_of - timedelta(minutes=5))
        return start, max((end - start).total_seconds(), 60.0)

    def periods(self) -> list[tuple[int, int, date, date, bool]]:
        """(year, month, first day, last day, closed) for every month of the fiscal years in play."""
        rows = []
        for year in range(self.history_start.year, self.as_of.year + 2):
            for month in range(1, 13):
                first = date(year, month, 1)
                last = add_months(first, 1) - timedelta(days=1)
                rows.append(
                    (year, month, first, last, (year, month) < (self.go_live.year, self.go_live.month))
                )
        return rows


@dataclass
class Product:
    id: int
    sku: str
    name: str
    stock: bool
    cost: int  # cents
    price: int  # cents
    supplier: int  # index into suppliers
    reorder: int


@dataclass
class Partner:
    id: int
    code: str
    name: str
    tax_id: str
    term: int
    weight: float
    created_at: datetime
    excluded: str | None = None  # in the legacy extract only, with the reason


@dataclass
class Master:
    products: list[Product]
    customers: list[Partner]  # includes excluded ones (no id in the ERP: id 0)
    new_customers: list[Partner]  # created after go-live
    suppliers: list[Partner]
    stock_products: list[Product] = field(init=False)
    stock_weights: list[float] = field(init=False)
    customer_pool: list[Partner] = field(init=False)
    customer_weights: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.stock_products = [p for p in self.products if p.stock]
        self.stock_weights = _cumulative([1.0 + (p.id * 7919 % 97) / 10 for p in self.stock_products])
        self.customer_pool = [c for c in self.customers if c.weight > 0]
        self.customer_weights = _cumulative([c.weight for c in self.customer_pool])


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _uscc(rng: random.Random, region: str) -> str:
    body = "".join(rng.choice(USCC_CHARS) for _ in range(9))
    return f"91{region}{body}{rng.choice(USCC_CHARS)}"


def _names(rng: random.Random, count: int, suffix: str) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    while len(out) < count:
        city, region = rng.choice(CITIES)
        core = rng.choice(NAME_CHARS) + rng.choice(NAME_CHARS)
        name = f"{city}{core}{rng.choice(TRADES)}{suffix}"
        if name not in seen:
            seen.add(name)
            out.append((name, region))
    return out


def make_master(rng: random.Random, scale: float, cal: Calendar) -> Master:
    breadth = math.sqrt(scale)
    n_products = max(40, round(300 * breadth))
    n_customers = max(60, round(800 * breadth))
    n_suppliers = max(12, round(80 * breadth))

    suppliers = [  # partner ids are given once the customers have theirs
        Partner(0, f"V{i + 1:05d}", name, _uscc(rng, region), rng.choice((30, 30, 60)), 1.0, cal.cutover_at)
        for i, (name, region) in enumerate(_names(rng, n_suppliers, "有限公司"))
    ]
    products: list[Product] = []
    for i in range(n_products):
        pattern, low, high = PRODUCT_FAMILIES[i % len(PRODUCT_FAMILIES)]
        cost = max(1, round(math.exp(rng.uniform(math.log(low), math.log(high))) * 100))
        typical_qty = max(1, round(3000 * 100 / cost))
        products.append(
            Product(
                id=i + 1,
                sku=f"SKU-{10001 + i}",
                name=pattern.format(n=i // len(PRODUCT_FAMILIES) + 1 + (i % 7)),
                stock=True,
                cost=cost,
                price=round(cost * rng.uniform(1.18, 1.45)),
                supplier=rng.randrange(n_suppliers),
                reorder=typical_qty * rng.randint(5, 10),
            )
        )
    for j, (sku, name) in enumerate(SERVICES):
        products.append(Product(n_products + j + 1, sku, name, False, 0, 0, 0, 0))

    customers: list[Partner] = []
    next_id = 1
    for i, (name, region) in enumerate(_names(rng, n_customers + n_customers // 60 + 3, "有限公司")):
        code = f"C{i + 1:05d}"
        term = rng.choices((30, 45, 60, 90), weights=(4, 3, 2, 1))[0]
        roll = rng.random()
        if i > 10 and roll < 0.015:
            reason = rng.choice(EXCLUSION_REASONS).format(other=f"C{rng.randint(1, i):05d}")
            customers.append(Partner(0, code, name, _uscc(rng, region), term, 0.0, cal.cutover_at, reason))
            continue
        weight = 0.0 if roll > 0.88 else min(rng.paretovariate(1.2), 40.0)
        customers.append(Partner(next_id, code, name, _uscc(rng, region), term, weight, cal.cutover_at))
        next_id += 1
    new_customers = []
    for k, (name, region) in enumerate(_names(rng, 5, "有限责任公司")):
        created = datetime.combine(cal.go_live + timedelta(days=2 * k), time(2, 15))
        code = f"C{len(customers) + k + 1:05d}"
        new_customers.append(Partner(next_id + k, code, name, _uscc(rng, region), 30, 1.0, created))
    for k, supplier in enumerate(suppliers):
        supplier.id = next_id + len(new_customers) + k
    return Master(products, customers, new_customers, suppliers)
