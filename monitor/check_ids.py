"""Check ids: the syntax of the names results, events and tickets carry, owned here once.

A check id is dot-separated text whose first segment is its *kind*. Probes and collectors make theirs from
their settings, with the builders below:

- ``probe.<probe>``: an HTTP probe
- ``host.<signal>``: the host collector (disk_usage, memory, process)
- ``db.<signal>``: the database health collector, per source (connections, lock_waits...)
- ``integration.<interface>.<signal>``: an integration interface (backlog, oldest_age, failed)
- ``job.<job>.<signal>``: a background job (stale, failed, duration)
- ``collector.<collector>[.<name>]``: a collector that could not look (an ``error`` result)
- ``dualrun.<comparison>[.<entity>]``: a dual-run comparison

Any other id belongs to a check of a pack or check file (``ar.duplicate_invoice``), named by its author.

Configured names may themselves hold dots (``core.settings.NAME_PATTERN``); the readers here then take
the id as the three-segment form only when it has exactly three segments, as they always have.

The monitor defines check ids, so the syntax lives here; runbooks/, anomaly/ and dashboards/ read it from
here. tickets/ never parses a check id (it stores and matches it as text), so nothing in core/ is needed.
"""

from __future__ import annotations

PROBE = "probe"
HOST = "host"
DB = "db"
INTEGRATION = "integration"
JOB = "job"
COLLECTOR = "collector"
DUALRUN = "dualrun"

BUILTIN_KINDS = frozenset({PROBE, HOST, DB, INTEGRATION, JOB, COLLECTOR})
"""Kinds of the ids probes and collectors make (as opposed to checks written in packs and files)."""
_NAMED_SIGNAL_KINDS = frozenset({INTEGRATION, JOB})
"""Kinds of ``<kind>.<name>.<signal>`` ids."""


def probe(name: str) -> str:
    return f"{PROBE}.{name}"


def host(signal: str) -> str:
    return f"{HOST}.{signal}"


def db(signal: str) -> str:
    return f"{DB}.{signal}"


def integration(interface: str, signal: str) -> str:
    return f"{INTEGRATION}.{interface}.{signal}"


def job(name: str, signal: str) -> str:
    return f"{JOB}.{name}.{signal}"


def collector(kind_: str, name: str | None = None) -> str:
    """``collector.<kind>[.<name>]``: the error result of a collector that could not run."""
    return f"{COLLECTOR}.{kind_}" + (f".{name}" if name else "")


def dualrun(comparison: str, entity: str | None = None) -> str:
    """``dualrun.<comparison>[.<entity>]``: an entity's differences, or the comparison that failed to run."""
    return f"{DUALRUN}.{comparison}" + (f".{entity}" if entity else "")


def kind(check_id: str) -> str:
    """The first segment: ``probe`` for ``probe.erp-login``, ``ar`` for ``ar.duplicate_invoice``."""
    return check_id.split(".", 1)[0]


def probe_name(check_id: str) -> str | None:
    """The probe of a ``probe.<probe>`` id, else None."""
    prefix = f"{PROBE}."
    return check_id.removeprefix(prefix) if check_id.startswith(prefix) else None


def collector_kind(check_id: str) -> str | None:
    """The collector of a ``collector.<collector>[...]`` error id (``db_health``), else None."""
    parts = check_id.split(".")
    return parts[1] if parts[0] == COLLECTOR and len(parts) > 1 else None


def collector_unit(check_id: str, source: str) -> str | None:
    """The collector run (as ``monitor.collectors.run_collector`` names it: ``host``,
    ``db_health:<source>``, ``integration:<interface>``, ``job:<job>``) that produces ``check_id``; None
    when no collector does."""
    parts = check_id.split(".")
    if parts[0] == HOST:
        return "host"
    if parts[0] == DB or check_id == collector("db_health"):
        return f"db_health:{source}"
    if parts[0] in _NAMED_SIGNAL_KINDS and len(parts) == 3:
        return f"{parts[0]}:{parts[1]}"
    if parts[0] == COLLECTOR and len(parts) == 3:
        return f"{parts[1]}:{parts[2]}"
    return None


def family(check_id: str) -> str:
    """The id with its configured name made a wildcard: ``integration.*.backlog``, ``job.*.stale``,
    ``probe.*``, ``collector.*``; any other id is its own family."""
    parts = check_id.split(".")
    if parts[0] in _NAMED_SIGNAL_KINDS and len(parts) == 3:
        return f"{parts[0]}.*.{parts[2]}"
    if parts[0] in (PROBE, COLLECTOR):
        return f"{parts[0]}.*"
    return check_id
