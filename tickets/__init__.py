"""The ticket queue: intake, dedup, triage, SLAs, escalation, audit trail, notifications, API and UI.

Importing the package installs two session hooks, so that no code path can write around them: the audit
chain (``tickets.audit``: every ``ticket_audit`` row is chained on flush, whoever writes it) and the
tickets version (``tickets.cache``: a transaction that writes a ticket, occurrence, audit row or user moves
the version the response caches are filed under).
"""

from tickets import audit as _audit  # noqa: F401  (installs the flush listener)
from tickets import cache as _cache  # noqa: F401  (installs the version hook)
