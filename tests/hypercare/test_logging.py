"""Secrets never leave through the log formatters: a one-click link in uvicorn's access line is a bearer
credential (it acknowledges, resolves or silences a ticket without a login) and is scrubbed."""

from __future__ import annotations

import json
import logging

from hypercare.logging import ConsoleFormatter, JsonFormatter, scrub

TOKEN = (
    "djF8MXxhY2tub3dsZWRnZXwwfDE3OTY3MzQyOTV8MzgxY2JlNzU3YTRhMjllNDUzNDBiZWI4ZTk2MGIzZjQ.fNbVSx5_A4uWYk-TH4q"
)


def access_record(path: str) -> logging.LogRecord:
    """The record uvicorn.access writes for a request (its own format and arguments)."""
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:55334", "GET", path, "1.1", 200), None,
    )  # fmt: skip


def test_a_one_click_link_in_an_access_line_is_scrubbed_by_both_formatters() -> None:
    record = access_record(f"/act/{TOKEN}")
    line = json.loads(JsonFormatter().format(record))["msg"]
    assert line == '127.0.0.1:55334 - "GET /act/*** HTTP/1.1" 200'
    assert TOKEN not in ConsoleFormatter().format(access_record(f"/act/{TOKEN}"))
    assert (
        scrub(f"Acknowledge: https://hc.example.com/act/{TOKEN}\n")
        == "Acknowledge: https://hc.example.com/act/***\n"
    )


def test_other_paths_are_logged_as_they_are() -> None:
    line = json.loads(JsonFormatter().format(access_record("/tickets/42?status=new")))["msg"]
    assert line == '127.0.0.1:55334 - "GET /tickets/42?status=new HTTP/1.1" 200'
