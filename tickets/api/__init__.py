"""The HTTP side of the ticket queue: ``create_app`` builds the API, the web UI, health and metrics."""

from tickets.api.app import create_app

__all__ = ["create_app"]
