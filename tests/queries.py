"""The statements code sends to the database, recorded so that a test can count them and an N+1 shows up."""

from __future__ import annotations

from sqlalchemy import Engine, event


def record_statements(engine: Engine) -> list[str]:
    """A list that fills with every statement ``engine`` executes from now on, in order."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return statements
