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


def rows_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """One CSV with a header of every key seen, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return out.getvalue()


def tables_json(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    plain = {name: [dict(row) for row in rows] for name, rows in tables.items()}
    return orjson.dumps(plain, option=orjson.OPT_INDENT_2).decode()
