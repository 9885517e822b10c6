"""``hypercare demo``: build the simulated ERP, watch it once, score the result against the ground truth,
then serve the ticket UI.

The demo is also the end-to-end test: every injected fault must come out as exactly one ticket of the
expected priority, and nothing else may.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import uvicorn
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anomaly.dualrun import difference_fingerprint
from anomaly.events import fingerprint
from core.session import make_engine, session_factory, session_scope
from hypercare.app import build_app
from hypercare.config import Settings, load_settings
from hypercare.demo.builder import DemoErp, build_demo_erp
from hypercare.demo.erp_api import create_erp_api
from hypercare.demo.faults import FAULT_KINDS, InjectedFault
from hypercare.demo.masterdata import GO_LIVE_DAYS_BEFORE_AS_OF
from hypercare.demo.oncall import DEMO_USER, oncall_demo_settings
from hypercare.demo.sink import NotificationSink
from hypercare.pipeline import DualRunReport, PipelineReport, process_dualrun, run_pipeline
from hypercare.serving import BackgroundServer
from hypercare.store import upgrade
from monitor.checks import load_checks
from monitor.dualrun.model import ComparisonResult
from monitor.dualrun.readiness import evaluate
from monitor.dualrun.schedule import load_comparison, run_comparison
from monitor.volumes import load_volumes
from tickets.audit_chain import use_keyring
from tickets.audit_keys import keyring_for
from tickets.auth import create_user
from tickets.models import Ticket

DUALRUN_CONFIG = Path(__file__).resolve().parent / "dualrun.yaml"
"""The demo's dual-run comparison: the legacy copy against the new ERP."""
DEMO_EXIT_CRITERIA: list[dict[str, object]] = [
    {
        "name": "trial-balance-3-days",
        "description": "Trial balance equal for 3 consecutive daily runs",
        "kind": "consecutive_matches",
        "entity": "trial_balance",
        "runs": 3,
    },
    {
        "name": "open-ar-within-tolerance",
        "description": "Open AR (migrated sales invoices) within tolerance",
        "kind": "within_tolerance",
        "entity": "ar_documents",
    },
    {
        "name": "open-ap-within-tolerance",
        "description": "Open AP (migrated supplier bills) within tolerance",
        "kind": "within_tolerance",
        "entity": "ap_documents",
    },
    {
        "name": "no-unexplained-differences",
        "description": "Zero unexplained differences above materiality",
        "kind": "unexplained",
    },
]
PROBE_LATENCY_FAIL_S = 1.0


def parse_faults(value: str) -> list[str] | None:
    """``all`` -> every kind (None), ``none`` -> [], else the comma list, checked against the known kinds."""
    value = value.strip()
    if value == "all":
        return None
    if value in {"none", ""}:
        return []
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}")
    return kinds


@dataclass
class FaultScore:
    fault: InjectedFault
    tickets: list[Ticket]

    @property
    def detected(self) -> bool:
        return len(self.tickets) == 1

    @property
    def priority_ok(self) -> bool:
        return self.detected and self.tickets[0].priority == self.fault.expected_priority


@dataclass
class Scorecard:
    faults: list[FaultScore]
    unexpected: list[Ticket] = field(default_factory=list)

    @property
    def missed(self) -> list[FaultScore]:
        return [f for f in self.faults if not f.detected]

    @property
    def perfect(self) -> bool:
        return not self.missed and not self.unexpected


def expected_fingerprint(fault: InjectedFault) -> str:
    return fingerprint(fault.check_id, fault.source, entity=dict(fault.entity))


def score(session: Session, faults: Sequence[InjectedFault]) -> Scorecard:
    tickets = list(session.scalars(select(Ticket).order_by(Ticket.id)))
    by_fp: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        by_fp.setdefault(ticket.fingerprint, []).append(ticket)
    scores = [FaultScore(f, by_fp.get(expected_fingerprint(f), [])) for f in faults]
    matched = {t.id for s in scores for t in s.tickets}
    return Scorecard(scores, [t for t in tickets if t.id not in matched])


def demo_settings(
    directory: Path, erp: DemoErp, *, erp_api_url: str, sink_url: str, port: int, store_url: str | None = None
) -> Settings:
    """The settings the demo runs with; also written to <dir>/hypercare.yaml for later CLI use."""
    data = {
        "data_dir": str(directory),
        "database_url": store_url or f"sqlite:///{(directory / 'hypercare.db').as_posix()}",
        "server": {"host": "127.0.0.1", "port": port},
        # a Shanghai site: 简体中文 for users who chose no language, times in China Standard Time, amounts in
        # yuan, business days by China's public holidays and make-up working days (调休)
        "site": {"language": "zh_CN", "timezone": "Asia/Shanghai", "currency": "CNY", "locale": "zh_CN"},
        "sla": {"calendar": {"country": "CN"}},
        "sources": {
            "erp": {"url": erp.erp_url, "description": "Demo ERP (Shanghai trading company)"},
            "finance": {"url": erp.finance_url, "description": "Finance system receiving ERP documents"},
            "legacy": {"url": erp.legacy_url, "description": "Legacy ERP as of cutover (the dual run)"},
        },
        "probes": [
            {
                "name": "erp-trial-balance",
                "url": f"{erp_api_url}/api/trial-balance",
                "latency_warn_s": 0.5,
                "latency_fail_s": PROBE_LATENCY_FAIL_S,
                "severity": "P2",
                "runbook": "erp-slow-transaction",
            },
            {
                "name": "erp-invoice-list",
                "url": f"{erp_api_url}/api/invoices?limit=50",
                "latency_warn_s": 0.5,
                "latency_fail_s": PROBE_LATENCY_FAIL_S,
                "severity": "P2",
                "runbook": "erp-slow-transaction",
            },
        ],
        "checks": {"packs": ["demo_erp"]},
        # the team channel, the on-call's and the manager's own; P1 escalation; the on-call rotation
        **oncall_demo_settings(sink_url, erp.as_of.date() - timedelta(days=GO_LIVE_DAYS_BEFORE_AS_OF)),
        "dualrun": {"comparisons": [str(DUALRUN_CONFIG)], "exit_criteria": DEMO_EXIT_CRITERIA},
        # the demo user is an agent; let it into the managers' dashboards too (`hypercare dashboard`)
        "dashboard": {
            "login_roles": ["viewer", "manager", "admin", "agent"],
            "go_live_date": (erp.as_of.date() - timedelta(days=GO_LIVE_DAYS_BEFORE_AS_OF)).isoformat(),
        },
    }
    path = directory / "hypercare.yaml"
    path.write_text(
        f"# Written by `hypercare demo`. Use: hypercare --config {path} <command>\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    path.chmod(0o600)  # it holds connection URLs
    return load_settings(path)


@dataclass
class DemoOutcome:
    erp: DemoErp
    settings: Settings
    factory: sessionmaker[Session]
    report: PipelineReport
    scorecard: Scorecard
    password: str
    sink: NotificationSink
    comparison: ComparisonResult | None = None
    dualrun: DualRunReport | None = None


def watch_once(settings: Settings, factory: sessionmaker[Session], console: Console) -> PipelineReport:
    """One pipeline pass with a progress bar."""
    checks = load_checks(settings.checks.packs)
    volumes = load_volumes(settings.checks.packs, check_ids=[c.id for c in checks])
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("Watching the ERP", total=len(checks) + len(volumes) + len(settings.probes))
        return run_pipeline(
            settings,
            factory,
            checks,
            progress=lambda _id: bar.advance(task),
            trigger="demo",
            volumes=volumes,
        )


def watch_dualrun(
    settings: Settings, factory: sessionmaker[Session], console: Console, *, trigger: str = "demo"
) -> tuple[ComparisonResult, DualRunReport]:
    """Compare the legacy copy with the new ERP once (with a progress bar); differences become tickets."""
    config = load_comparison(DUALRUN_CONFIG)
    enabled = [e.name for e in config.entities if e.enabled]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("Dual run: legacy vs new ERP", total=len(enabled))
        seen: set[str] = set()

        def progress(entity: str, _step: str) -> None:
            if entity not in seen:
                seen.add(entity)
                bar.update(task, completed=len(seen) - 1, description=f"Dual run: {entity}")

        comparison = run_comparison(settings, config, None, progress=progress)
        bar.update(task, completed=len(enabled))
    return comparison, process_dualrun(settings, factory, comparison, trigger=trigger)


@contextmanager
def demo_environment(
    directory: Path,
    *,
    seed: int = 42,
    faults: list[str] | None = None,
    port: int = 8080,
    store_url: str | None = None,
    console: Console | None = None,
) -> Iterator[DemoOutcome]:
    """Build the ERP, start its API and the notification sink, watch once; yield while all still run."""
    console = console or Console()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    started = time.perf_counter()
    with console.status("Building the demo ERP (Shanghai trading company, CNY)..."):
        erp = build_demo_erp(directory / "erp", seed=seed, faults=faults)
    console.print(
        f"Demo ERP built in {time.perf_counter() - started:.1f}s: "
        f"{erp.counts.get('journal_line', 0):,} journal lines, {len(erp.faults)} faults injected"
    )
    with (
        BackgroundServer(create_erp_api(erp.erp_url)) as erp_api_url,
        NotificationSink(directory / "notifications.jsonl") as sink,
    ):
        settings = demo_settings(
            directory, erp, erp_api_url=erp_api_url, sink_url=sink.apprise_url, port=port, store_url=store_url
        )
        use_keyring(keyring_for(settings))  # the demo's own key, in its directory
        engine = make_engine(settings.store_url)
        try:
            upgrade(engine)
            factory: sessionmaker[Session] = session_factory(engine)
            password = secrets.token_urlsafe(9)
            with session_scope(factory) as session:
                create_user(session, DEMO_USER, password, "agent", display_name="Demo support agent")
            report = watch_once(settings, factory, console)
            comparison, dual = watch_dualrun(settings, factory, console)
            with factory() as session:
                card = score(session, [*erp.faults, *erp.dual_run])
            yield DemoOutcome(erp, settings, factory, report, card, password, sink, comparison, dual)
        finally:
            engine.dispose()


def print_summary(outcome: DemoOutcome, console: Console) -> None:
    card = outcome.scorecard
    table = Table(title="Injected go-live faults and what Hypercare made of them")
    for col in ("fault", "category", "expected", "check", "ticket", "priority", "detected"):
        table.add_column(col)
    for s in card.faults:
        ticket = s.tickets[0] if s.tickets else None
        mark = (
            "[green]yes[/]"
            if s.detected
            else ("[red]no[/]" if not s.tickets else f"[red]{len(s.tickets)}x[/]")
        )
        prio = ticket.priority if ticket else "-"
        if ticket and not s.priority_ok:
            prio = f"[yellow]{prio}[/]"
        table.add_row(
            s.fault.kind,
            s.fault.category,
            s.fault.expected_priority,
            s.fault.check_id,
            f"#{ticket.id}" if ticket else "-",
            prio,
            mark,
        )
    console.print(table)
    if outcome.comparison is not None:
        print_dualrun(outcome, console)
    by_priority = Counter(t.priority for s in card.faults for t in s.tickets) + Counter(
        t.priority for t in card.unexpected
    )
    summary = Table(title="Summary", show_header=False)
    summary.add_row("faults injected", str(len(card.faults)))
    summary.add_row("faults detected", f"{len(card.faults) - len(card.missed)}")
    summary.add_row(
        "tickets opened", ", ".join(f"{p}: {by_priority.get(p, 0)}" for p in ("P1", "P2", "P3", "P4"))
    )
    summary.add_row("unexpected tickets", str(len(card.unexpected)))
    summary.add_row("notifications delivered", str(len(outcome.sink.received())))
    summary.add_row("checks run", str(len(outcome.report.results)))
    console.print(summary)
    for ticket in card.unexpected:
        console.print(f"[yellow]unexpected ticket #{ticket.id} {ticket.priority}: {ticket.title}[/]")


def print_dualrun(outcome: DemoOutcome, console: Console) -> None:
    """The dual run's differences per entity, the ticket each opened, and the cutover go/no-go."""
    comparison = outcome.comparison
    if comparison is None:
        return
    with outcome.factory() as session:
        found = session.scalars(select(Ticket).where(Ticket.check_id.like("dualrun.%")))
        tickets = {t.fingerprint: t for t in found}
        readiness = evaluate(session, outcome.settings)
    table = Table(title=f"Dual run {comparison.comparison}: legacy vs new ERP")
    for col in ("entity", "matched", "changed", "missing in new", "extra in new", "classified", "money"):
        table.add_column(col, justify="left" if col in {"entity", "classified"} else "right")
    table.add_column("ticket")
    for e in comparison.entities:
        fp = difference_fingerprint(comparison.comparison, e.entity, e.period, comparison.new_source)
        ticket = tickets.get(fp)
        classes = ", ".join(f"{c} {n}" for c, n in sorted(e.by_classification.items())) or "-"
        table.add_row(
            e.entity,
            f"{e.matched:,}",
            str(e.changed),
            str(e.missing_in_new),
            str(e.extra_in_new),
            classes if e.error is None else f"[red]error: {e.error}[/]",
            f"{e.money_affected:,.2f}",
            f"#{ticket.id} {ticket.priority}" if ticket else "-",
        )
    console.print(table)
    colour = "green" if readiness.status == "go" else "red"
    passed = sum(1 for c in readiness.criteria if c.passed)
    console.print(
        f"Cutover readiness: [{colour}]{readiness.status.upper()}[/] "
        f"({passed} of {len(readiness.criteria)} exit criteria met)"
    )
    for c in readiness.criteria:
        mark = "[green]met[/]" if c.passed else "[red]not met[/]"
        console.print(f"  {mark}  {c.description}: {c.detail}")


def run_demo(
    directory: Path,
    *,
    port: int = 8080,
    seed: int = 42,
    faults: list[str] | None = None,
    once: bool = False,
    console: Console | None = None,
) -> bool:
    """Run the demo; True when the pipeline found exactly the injected faults."""
    console = console or Console()
    with demo_environment(directory, seed=seed, faults=faults, port=port, console=console) as outcome:
        print_summary(outcome, console)
        ok = outcome.scorecard.perfect
        if not ok:
            console.print("[red]The pipeline's tickets differ from the ground truth (see above).[/]")
        if not once:
            _serve(outcome, console)
    return ok


def _serve(outcome: DemoOutcome, console: Console) -> None:
    settings = outcome.settings
    base = settings.server.base_url()
    console.print(f"\nTicket UI:   {base}/tickets   (login: {DEMO_USER} / {outcome.password})")
    console.print(f"API:         {base}/docs      metrics: {base}/metrics")
    console.print(
        f"Dashboards:  hypercare --config {settings.data_dir / 'hypercare.yaml'} dashboard   "
        f"-> http://{settings.dashboard.host}:{settings.dashboard.port}/  (same login)"
    )
    console.print(
        f"Notifications received by the local on-call sink: {settings.data_dir / 'notifications.jsonl'}"
    )
    console.print(
        f"Settings for further runs: hypercare --config {settings.data_dir / 'hypercare.yaml'} collect"
    )
    console.print("Press Ctrl-C to stop.")
    uvicorn.run(
        build_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_level="warning",
        log_config=None,
    )
