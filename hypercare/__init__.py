"""Hypercare: observability and post-go-live support for ERP operations."""

__version__ = "0.1.0"
