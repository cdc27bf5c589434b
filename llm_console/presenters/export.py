"""Tables on screen as downloadable CSV or JSON (formula-looking cells are defused for spreadsheets)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _number(text):
        return "'" + text
    return text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rows_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """One CSV of `columns` (by default every key seen, in first-seen order)."""
    if columns is None:
        seen: list[str] = []
        for row in rows:
            seen += [k for k in row if k not in seen]
        columns = seen
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return out.getvalue()


def rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as JSON; each is copied to a plain dict (state hands them over wrapped in Reflex's MutableProxy)."""
    return orjson.dumps([dict(row) for row in rows], option=orjson.OPT_INDENT_2).decode()


def tables_json(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    plain = {name: [dict(row) for row in rows] for name, rows in tables.items()}
    return orjson.dumps(plain, option=orjson.OPT_INDENT_2).decode()
