"""Build the demo ERP (with its finance system and legacy copy), inject go-live faults, write ground truth.

By default the three databases are SQLite files in ``directory`` (``erp.db``, ``finance.db``,
``legacy.db``); any of them can be a PostgreSQL or MariaDB/MySQL URL instead. Building again into the same
place replaces the previous demo. The same seed and ``as_of`` give the same data, row for row.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection, Engine

from hypercare.demo.cutover import expected_tickets
from hypercare.demo.cutover import plant as cutover_plant
from hypercare.demo.erp_schema import ERP, FINANCE, LEGACY
from hypercare.demo.faults import FaultKind, InjectedFault, inject, resolve_kinds
from hypercare.demo.generate import Simulation
from hypercare.demo.injection import FaultContext
from hypercare.demo.loader import BulkLoader, build_engine, finish_schema, replace_schema, row_counts
from hypercare.demo.masterdata import Calendar

GROUND_TRUTH = "ground_truth.json"


@dataclass(frozen=True)
class DemoErp:
    directory: Path
    erp_url: str
    finance_url: str
    legacy_url: str
    ground_truth_path: Path
    as_of: datetime  # aware UTC
    faults: tuple[InjectedFault, ...]
    counts: dict[str, int]
    dual_run: tuple[InjectedFault, ...] = ()
    """The dual-run tickets the demo's comparison must open (hypercare/demo/cutover.py)."""


def default_as_of() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve().as_posix()}"


def _fresh_default(directory: Path, name: str) -> str:
    """The default SQLite file of one of the demo's databases, with any previous build removed."""
    path = directory / name
    for leftover in (path, *(path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    return _sqlite_url(path)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        yield bar


def build_demo_erp(
    directory: Path,
    *,
    seed: int = 42,
    scale: float = 1.0,
    faults: Sequence[str] | None = None,
    as_of: datetime | None = None,
    erp_url: str | None = None,
    finance_url: str | None = None,
    legacy_url: str | None = None,
    progress: bool = False,
    cutover: bool | None = None,
) -> DemoErp:
    """Build the demo ERP; ``faults=None`` injects every kind, ``[]`` none. See the module docstring.

    ``cutover``: plant the dual run's timing and mapping differences in the legacy copy; by default
    with every fault (``faults=None``) and not with a chosen list.
    """
    kinds = resolve_kinds(faults)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    as_of = as_of or default_as_of()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    as_of = as_of.astimezone(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    urls = {
        "erp": erp_url or _fresh_default(directory, "erp.db"),
        "finance": finance_url or _fresh_default(directory, "finance.db"),
        "legacy": legacy_url or _fresh_default(directory, "legacy.db"),
    }
    cal = Calendar.build(as_of)
    engines: dict[str, Engine] = {name: build_engine(url) for name, url in urls.items()}
    try:
        with ExitStack() as stack:
            erp, finance, legacy = (
                stack.enter_context(engines[n].begin()) for n in ("erp", "finance", "legacy")
            )
            bar = stack.enter_context(_progress(progress))
            injected, counts = _build(erp, finance, legacy, cal, seed=seed, scale=scale, kinds=kinds, bar=bar)
            planted = cutover_plant(legacy, seed) if (faults is None if cutover is None else cutover) else []
    finally:
        for engine in engines.values():
            engine.dispose()
    truth = directory / GROUND_TRUTH
    document = {
        "seed": seed,
        "scale": scale,
        "as_of": as_of.isoformat(),
        "faults": [asdict(f) for f in injected],
        "dual_run": [asdict(f) for f in expected_tickets(injected, planted)],
        "planted_cutover_differences": [asdict(p) for p in planted],
    }
    truth.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return DemoErp(
        directory,
        urls["erp"],
        urls["finance"],
        urls["legacy"],
        truth,
        as_of,
        tuple(injected),
        counts,
        tuple(expected_tickets(injected, planted)),
    )


def _build(
    erp: Connection,
    finance: Connection,
    legacy: Connection,
    cal: Calendar,
    *,
    seed: int,
    scale: float,
    kinds: Sequence[FaultKind],
    bar: Progress | None,
) -> tuple[list[InjectedFault], dict[str, int]]:
    schemas = ((erp, ERP), (finance, FINANCE), (legacy, LEGACY))
    for conn, metadata in schemas:
        replace_schema(conn, metadata)
    loaders = [BulkLoader(conn, metadata) for conn, metadata in schemas]
    simulate = bar.add_task("Simulating the ERP, day by day", total=len(cal.days())) if bar else None

    def advance() -> None:
        if bar is not None and simulate is not None:
            bar.advance(simulate)

    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not security
    sim = Simulation(rng, scale, cal, erp=loaders[0], finance=loaders[1], legacy=loaders[2])
    world = sim.run(advance)
    for loader in loaders:
        loader.flush()
    indexing = bar.add_task("Indexes and constraints", total=len(schemas)) if bar else None
    for conn, metadata in schemas:
        finish_schema(conn, metadata)
        if bar is not None and indexing is not None:
            bar.advance(indexing)
    ctx = FaultContext(erp, finance, world)
    injected = inject(ctx, kinds, seed)
    counts = {**row_counts(erp, ERP), **row_counts(finance, FINANCE), **row_counts(legacy, LEGACY)}
    return injected, counts
