"""The ticket queue: intake, dedup, triage, SLAs, escalation, audit trail, notifications, API and UI.

Importing the package installs the audit chain (``tickets.audit``): every ``ticket_audit`` row is chained
on flush, whoever writes it, so no code path can add an unchained row.
"""

from tickets import audit as _audit  # noqa: F401  (installs the flush listener)
