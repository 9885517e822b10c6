"""Dual-run comparisons for cutover: the legacy and the new ERP compared entity by entity.

* :mod:`monitor.dualrun.model` — the plain-data contract: the YAML configuration (pydantic) and the
  results (frozen dataclasses). No I/O; everything else builds on it.
* :mod:`monitor.dualrun.config` — loading a comparison file, resolving its sources.
* :mod:`monitor.dualrun.normalise` — per-dialect SQL rendering a value to the same canonical text everywhere.
* :mod:`monitor.dualrun.keyed` — the keyed row diff (checksum segments pushed down, bisected, rows compared).
* :mod:`monitor.dualrun.aggregate` — totals pushed down per group, compared with tolerances.
* :mod:`monitor.dualrun.objects` — header + lines business objects.
* :mod:`monitor.dualrun.classify` — timing / mapping / data / defect rules.
* :mod:`monitor.dualrun.runner` — runs a whole comparison.
"""

from __future__ import annotations
