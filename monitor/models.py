"""Tables for what monitor/ observes: sources, check runs and results, metric samples."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, JSONType, Money, UTCDateTime, utcnow


class Source(Base):
    """A monitored system. Its connection URL lives in the settings, never in the store."""

    __tablename__ = "source"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="database")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CheckRun(Base):
    """One pass of the collectors: which checks ran, when, and how it went."""

    __tablename__ = "check_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errored: Mapped[int] = mapped_column(Integer, default=0)
    results: Mapped[list[CheckResultRow]] = relationship(back_populates="run", lazy="raise")


class CheckResultRow(Base):
    __tablename__ = "check_result"
    __table_args__ = (Index("ix_check_result_check_source_time", "check_id", "source", "finished_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("check_run.id", ondelete="CASCADE"), index=True)
    check_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # pass | warn | fail | error
    violations: Mapped[int] = mapped_column(Integer, default=0)
    measured_value: Mapped[float | None] = mapped_column(Float)
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Money)
    sample: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    run: Mapped[CheckRun] = relationship(back_populates="results")


class MetricSampleRow(Base):
    """History of a metric. Labels are a bounded set (check id, source, probe) by convention."""

    __tablename__ = "metric_sample"
    __table_args__ = (
        # covering on PostgreSQL (migration 0009): a metric's series over a range is an index-only scan
        Index(
            "ix_metric_sample_name_time",
            "name",
            "ts",
            postgresql_include=["value", "labels"],
            info={"skip_compare": True},  # INCLUDE is PostgreSQL-only; SQLite has the plain (name, ts)
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    value: Mapped[float] = mapped_column(Float)


class WorkLease(Base):
    """One schedulable unit (a check, probe or collector) or a source's health, leased by one worker.

    Workers claim due rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL) and stamp
    ``leased_by``/``lease_expires_at``; a running unit's lease is renewed every tick, so a killed worker's
    unit is taken over once its lease expires. Rows of kind ``source`` hold the outage state of a monitored
    source (failures and back-off); they are due only while the source is down.
    """

    __tablename__ = "work_lease"
    __table_args__ = (Index("ix_work_lease_due", "next_due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # check | probe | collector | source
    source: Mapped[str] = mapped_column(String(64))
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(8))
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    backoff_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class CheckWatermark(Base):
    """Where an incremental check or volume watch stands (monitor/incremental.py): the high-water mark of
    each watched table at its last pass, the columns of the rows it keeps, and its last full pass."""

    __tablename__ = "check_watermark"
    __table_args__ = (UniqueConstraint("unit_id", "source"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(140))
    source: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the definition: a changed check starts over with a full pass."""
    marks: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    last_pass_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_full_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_drift: Mapped[int] = mapped_column(Integer, default=0)
    """Entities the last full pass found different from the incremental state (0: none)."""


class CheckEntityState(Base):
    """The rows an incremental check's query returns for one entity, as its last pass read them."""

    __tablename__ = "check_entity_state"
    __table_args__ = (UniqueConstraint("unit_id", "source", "entity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(140))
    source: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(500))
    """The entity's ``by`` values as a JSON list."""
    rows: Mapped[list[list[Any]]] = mapped_column(JSONType, default=list)
    """Each row's values in the order of :attr:`CheckWatermark.columns`."""
