"""What the configuration promises and cannot keep, found before anything runs: a pack, check file or
collector reading a source that is not configured under ``sources:``.

`config check` fails on these; `check run` and `collect` refuse to start with the same lines, instead of
failing every check of the pack one by one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from monitor.settings import MonitorConfig
from monitor.specs import CheckSpec
from monitor.volumes import VolumeSpec


def unconfigured_sources(
    settings: MonitorConfig, specs: Iterable[CheckSpec], volumes: Iterable[VolumeSpec] = ()
) -> list[str]:
    """One line per (pack or setting, missing source), naming how many checks or watches need it."""
    known = set(settings.sources)
    configured = ", ".join(sorted(known)) or "none"
    needs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for spec in specs:
        for source in spec.sources:
            if source not in known:
                needs[(f"check pack '{spec.pack}'", source)].append(spec.id)
    for watch in volumes:
        if watch.source not in known:
            needs[(f"check pack '{watch.pack}'", watch.source)].append(watch.id)
    collectors = settings.collectors
    for key, names in (
        ("collectors.integrations", [(i.name, i.source) for i in collectors.integrations]),
        ("collectors.jobs", [(j.name, j.source) for j in collectors.jobs]),
        ("collectors.trace", [(t.name, t.source) for t in collectors.trace]),
        ("collectors.db_health.sources", [(s, s) for s in collectors.db_health.sources]),
    ):
        for name, source in names:
            if source not in known:
                needs[(key, source)].append(name)
    lines = []
    for (where, source), users in sorted(needs.items()):
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        lines.append(
            f"{where}: {len(users)} item(s) read source '{source}' ({shown}), which is not configured "
            f"under sources: (configured: {configured})"
        )
    return lines
