from __future__ import annotations

from tickets.ui.views import evidence_view


def test_one_offending_row_is_shown_as_a_one_row_table_and_scalars_as_facts() -> None:
    view = evidence_view({"row": {"entry_number": "JE-1", "difference": "5.00"}, "violations": 1})
    (table,) = view.tables
    assert (table.name, table.columns, table.rows) == (
        "row",
        ["entry_number", "difference"],
        [["JE-1", "5.00"]],
    )
    assert view.facts == [("violations", "1")]
