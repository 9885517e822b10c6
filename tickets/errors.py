"""Errors of the ticket queue that a caller (API, UI, CLI) turns into a clear answer."""

from __future__ import annotations

from core.errors import HypercareError


class TicketError(HypercareError):
    """Base of the ticket queue's errors."""


class TicketNotFound(TicketError):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} not found")
        self.ticket_id = ticket_id


class InvalidTransition(TicketError):
    """The operation does not apply to the ticket in its current status (resolving a resolved ticket)."""

    def __init__(self, ticket_id: int, status: str, operation: str) -> None:
        super().__init__(f"ticket {ticket_id} is {status}: cannot {operation} it")
        self.ticket_id = ticket_id
        self.status = status
        self.operation = operation
