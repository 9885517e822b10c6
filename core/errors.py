"""Errors a user can act on. The CLI prints their message on one line and exits non-zero."""

from __future__ import annotations


class HypercareError(Exception):
    """Base of every error whose message is meant for the person running Hypercare."""

    exit_code = 1


class ConfigError(HypercareError):
    """The configuration file or environment holds a wrong key, type or value."""

    exit_code = 2


class StoreError(HypercareError):
    """The Hypercare store is unreachable or its schema is not the one this code needs."""

    exit_code = 3


class SchemaOutOfDate(StoreError):
    """The store's schema revision differs from the code's head revision."""
