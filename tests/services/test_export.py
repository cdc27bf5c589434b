"""Exports of what a page shows: CSV with every column, formula cells defused, JSON of every table."""

from __future__ import annotations

import csv
import io

import orjson

from llm_console.presenters.export import rows_csv, safe_cell, tables_json


def test_csv_has_every_column_in_first_seen_order() -> None:
    text = rows_csv([{"model": "a", "cost": "$1.00"}, {"model": "b", "extra": "x"}])
    assert list(csv.reader(io.StringIO(text))) == [["model", "cost", "extra"], ["a", "$1.00", ""], ["b", "", "x"]]


def test_formula_looking_cells_are_defused_but_numbers_are_not() -> None:
    assert safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-12.5") == "-12.5"
    assert safe_cell("+3") == "+3"
    assert safe_cell(None) == ""
    assert safe_cell('plain, with "quotes"') == 'plain, with "quotes"'


def test_json_keeps_every_table() -> None:
    data = orjson.loads(tables_json({"a": [{"x": "1"}], "b": []}))
    assert data == {"a": [{"x": "1"}], "b": []}


def test_empty_table_is_a_header_only_csv() -> None:
    assert rows_csv([]) == "\r\n"
