"""The domain's words, defined once: ticket priority, exception category, impact/urgency level."""

from __future__ import annotations

from typing import Literal

PRIORITIES = ("P1", "P2", "P3", "P4")
"""Most urgent first."""
Priority = Literal["P1", "P2", "P3", "P4"]
Category = Literal["data", "process", "technical", "user"]
Level = Literal["high", "medium", "low"]
