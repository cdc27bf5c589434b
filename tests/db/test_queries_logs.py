"""The request log: filters, keyset pages, search, hostile input, one request with spans, exports."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from llm_console.db.queries.filters import RequestFilters
from llm_console.db.queries.logs import (
    decode_cursor,
    encode_cursor,
    get_request,
    iter_requests,
    latest,
    like_pattern,
    list_requests,
    slow_requests,
)
from tests.db.seeding import CHAT, EMBED, at, backends_fixture, db_fixture, rec, scalar, write  # noqa: F401

START, END = at(4, 10), at(4, 11)
RANGE = RequestFilters(start=START, end=END)


def ids(rows: list) -> list[str]:
    return [r.id for r in rows]


def find(db: Engine, **filters: object) -> list[str]:
    f = RequestFilters(start=filters.pop("start", START), end=filters.pop("end", END), **filters)  # type: ignore[arg-type]
    return ids(list_requests(db, f, limit=100).rows)


def seed_four(db: Engine) -> None:
    """r1..r4 inside 10:00-11:00, one row before and one at the (exclusive) end."""
    write(
        db,
        rec(at(4, 10, 1), id="r1", alias="a", deployment_id=1, key_id=1, user_id=10, team_id=100, stream=True,
            latency=50, cost=0.01, request_body='{"q": "Hello World"}', response_body="hi there"),
        rec(at(4, 10, 2), id="r2", alias="b", endpoint=EMBED, deployment_id=2, key_id=2, user_id=11, team_id=101,
            status="error", latency=500, cost=0.2, request_body="vector please", embedding_dims=1536),
        rec(at(4, 10, 3), id="r3", alias="a", deployment_id=2, key_id=1, user_id=11, status="incomplete",
            stream=True, latency=1500, cost=0.05, response_body="partial ANSWER"),
        rec(at(4, 10, 4), id="r4", alias="b", endpoint="/v1/responses", deployment_id=1, team_id=100, latency=5,
            request_body="100% sure_thing C:\\path", response_body="x"),
        rec(at(4, 9, 59, 59), id="r0", alias="a", request_body="hello before"),
        rec(END, id="r5", alias="a", request_body="hello after"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["r4", "r3", "r2", "r1"]),
        ({"alias": "a"}, ["r3", "r1"]),
        ({"alias": "A"}, []),
        ({"endpoint": EMBED}, ["r2"]),
        ({"deployment_id": 2}, ["r3", "r2"]),
        ({"status": "ok"}, ["r4", "r1"]),
        ({"status": "error"}, ["r2"]),
        ({"status": "incomplete"}, ["r3"]),
        ({"key_id": 1}, ["r3", "r1"]),
        ({"user_id": 11}, ["r3", "r2"]),
        ({"team_id": 100}, ["r4", "r1"]),
        ({"stream": True}, ["r3", "r1"]),
        ({"stream": False}, ["r4", "r2"]),
        ({"min_latency_ms": 500}, ["r3", "r2"]),  # inclusive
        ({"min_latency_ms": 500.5}, ["r3"]),
        ({"min_cost_usd": 0.05}, ["r3", "r2"]),  # inclusive
        ({"min_cost_usd": 0.0}, ["r4", "r3", "r2", "r1"]),
        ({"search": "hello"}, ["r1"]),  # request body, case-insensitive
        ({"search": "answer"}, ["r3"]),  # response body
        ({"search": "HI THERE"}, ["r1"]),
        ({"search": ""}, ["r4", "r3", "r2", "r1"]),  # an empty search is no search
        ({"start": at(4, 10, 2), "end": at(4, 10, 4)}, ["r3", "r2"]),
        ({"start": at(4, 9), "end": at(4, 12)}, ["r5", "r4", "r3", "r2", "r1", "r0"]),
        ({"alias": "a", "status": "ok"}, ["r1"]),
        ({"alias": "b", "min_latency_ms": 100}, ["r2"]),
        ({"key_id": 1, "stream": True, "search": "partial"}, ["r3"]),
        ({"team_id": 100, "endpoint": CHAT}, ["r1"]),
        ({"user_id": 11, "deployment_id": 2, "min_cost_usd": 0.1}, ["r2"]),
        ({"alias": "a", "endpoint": EMBED}, []),
    ],
)
def test_filters_alone_and_combined(db: Engine, filters: dict[str, object], expected: list[str]) -> None:
    seed_four(db)
    assert find(db, **filters) == expected


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("%", ["r4"]),  # LIKE wildcards match only themselves
        ("_", ["r4"]),
        ("0% s", ["r4"]),
        ("hi_there", []),  # unescaped, "_" would match the space in "hi there"
        ("re_th", ["r4"]),
        ("h%o", []),  # unescaped, this would match "hello" and "hi there ... x"
        ("\\", ["r4"]),
        ("c:\\path", ["r4"]),
        ("\\p", ["r4"]),
        ("\\%", []),
    ],
)
def test_like_wildcards_and_backslashes_are_literal(db: Engine, search: str, expected: list[str]) -> None:
    seed_four(db)
    assert find(db, search=search) == expected


def test_like_pattern() -> None:
    assert like_pattern("a%b_c\\d") == "%a\\%b\\_c\\\\d%"
    assert like_pattern("") == "%%"


HOSTILE = [
    ("'", []),
    ("''", []),
    ('"', ["r1"]),  # r1's body is JSON
    ("' OR '1'='1", []),
    ("'; DROP TABLE requests; --", []),
    ("\\'; DROP TABLE requests; --", []),
    ("%' OR 1=1 --", []),
    ("%%", []),
    ("__", []),
    ("\\", ["r4"]),  # r4's body holds one backslash
    ("\\\\", []),
    ("a" * 10_000, []),
    ("Ω≈ç√∫ 🤖 中文 العربية", []),
    ("\u202e\u200b", []),
    ("$1", []),
    ("?", []),
    ("%s", []),
    (":name", []),
]


@pytest.mark.parametrize(("value", "found"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_match_literally_and_never_raise(db: Engine, value: str, found: list[str]) -> None:
    seed_four(db)
    assert find(db, search=value) == found
    for field in ("alias", "endpoint", "status"):
        assert find(db, **{field: value}) == [], field
    assert ids(slow_requests(db, RequestFilters(start=START, end=END, search=value))) == found
    assert list(iter_requests(db, RequestFilters(start=START, end=END, alias=value))) == []
    assert latest(db, endpoint=value) == []
    assert get_request(db, value) is None
    assert scalar(db, "SELECT COUNT(*) FROM requests") == 6  # the table is still there, untouched


def test_hostile_values_inside_bodies_are_found_literally(db: Engine) -> None:
    bodies = {"q": "it's a 'quote'", "d": "x'; DROP TABLE requests; --", "p": "50%_off", "u": "Grüße 🤖 中文"}
    write(db, *[rec(at(4, 10, i), id=k, request_body=v) for i, (k, v) in enumerate(bodies.items())])
    assert find(db, search="'quote'") == ["q"]
    assert find(db, search="'; DROP TABLE requests; --") == ["d"]
    assert find(db, search="%_") == ["p"]
    assert find(db, search="🤖 中") == ["u"]
    assert find(db, search="GRÜ".lower()) == ["u"]


@pytest.mark.parametrize(
    "db",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
    indirect=True,
)
def test_search_is_case_insensitive_beyond_ascii(db: Engine) -> None:
    write(db, rec(at(4, 10, 1), id="u", request_body="Grüße aus KÖLN"))
    assert find(db, search="GRÜSSE") == []  # no case folding beyond lower/upper
    assert find(db, search="köln") == ["u"]
    assert find(db, search="GRÜ") == ["u"]


@pytest.mark.parametrize(
    "db",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
@pytest.mark.parametrize("where", ["search", "alias", "get_request", "cursor"])
def test_a_nul_character_matches_nothing(db: Engine, where: str) -> None:
    seed_four(db)
    if where == "get_request":
        assert get_request(db, "r1\x00") is None
    elif where == "cursor":
        cursor = b64(b"2026-03-04T10:03:00+00:00|r\x00")
        assert decode_cursor(cursor) is None  # not one of ours: the first page
        assert ids(list_requests(db, RANGE, cursor=cursor).rows) == ids(list_requests(db, RANGE).rows)
    else:
        assert find(db, **{where: "a\x00b"}) == []


def seed_ties(db: Engine) -> None:
    """Seven rows sharing one timestamp (t0..t6) and three older ones (o0..o2)."""
    same = at(4, 10, 30, 0, 123456)
    write(db, *[rec(same, id=f"t{i}") for i in (3, 0, 6, 1, 5, 2, 4)])
    write(db, *[rec(at(4, 10, 20 - i), id=f"o{i}") for i in range(3)])


def test_pages_break_timestamp_ties_by_id(db: Engine) -> None:
    seed_ties(db)
    expected = ["t6", "t5", "t4", "t3", "t2", "t1", "t0", "o0", "o1", "o2"]
    pages, cursor = [], None
    while True:
        page = list_requests(db, RANGE, cursor=cursor, limit=3)
        pages.append(ids(page.rows))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == [["t6", "t5", "t4"], ["t3", "t2", "t1"], ["t0", "o0", "o1"], ["o2"]]
    assert [i for page in pages for i in page] == expected

    exact = list_requests(db, RANGE, limit=5)
    last = list_requests(db, RANGE, cursor=exact.next_cursor, limit=5)
    assert ids(last.rows) == expected[5:] and last.next_cursor is None  # a full last page has no next cursor
    assert list_requests(db, RANGE, limit=10).next_cursor is None


def test_pages_are_stable_when_new_rows_arrive(db: Engine) -> None:
    seed_ties(db)
    first = list_requests(db, RANGE, limit=4)
    assert ids(first.rows) == ["t6", "t5", "t4", "t3"]
    # Newer rows, and one at the same instant but with a larger id: all above the cursor.
    write(db, rec(at(4, 10, 45), id="n0"), rec(at(4, 10, 30, 0, 123456), id="t9"), rec(at(4, 10, 31), id="n1"))
    second = list_requests(db, RANGE, cursor=first.next_cursor, limit=4)
    third = list_requests(db, RANGE, cursor=second.next_cursor, limit=4)
    assert ids(second.rows) == ["t2", "t1", "t0", "o0"]
    assert ids(third.rows) == ["o1", "o2"] and third.next_cursor is None
    assert ids(list_requests(db, RANGE, limit=3).rows) == ["n0", "n1", "t9"]


def test_cursor_round_trip() -> None:
    stamp = at(4, 10, 30, 0, 123456)
    row = type("Row", (), {"created_at": stamp.replace(tzinfo=None), "id": "0195-abc"})()
    cursor = encode_cursor(row)  # type: ignore[arg-type]
    assert "=" not in cursor
    assert decode_cursor(cursor) == (stamp, "0195-abc")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "!!!!",
        "=",
        "é",
        "a" * 201,
        "x" * 10_000,
        b64(b"nope"),
        b64(b"|"),
        b64(b"2026-13-45T00:00|r1"),
        b64(b"2026-03-04T10:00:00"),  # no id part
        b64(b"\xff\xfe|r1"),
        b64(b"'; DROP TABLE requests; --|x"),
    ],
)
def test_garbage_cursors_give_the_first_page(db: Engine, cursor: str) -> None:
    seed_four(db)
    assert decode_cursor(cursor) is None
    page = list_requests(db, RANGE, cursor=cursor, limit=2)
    assert ids(page.rows) == ["r4", "r3"]


def test_a_cursor_with_a_long_id_is_cut_to_36_characters() -> None:
    assert decode_cursor(b64(b"2026-03-04T10:00:00+00:00|" + b"z" * 100)) == (at(4, 10), "z" * 36)


@pytest.mark.parametrize("stamp", [b"0001-01-01T00:00:00+05:00", b"9999-12-31T23:59:59-05:00"])
def test_an_out_of_range_cursor_is_not_ours(stamp: bytes) -> None:
    assert decode_cursor(b64(stamp + b"|r1")) is None


def test_get_request_with_spans_in_start_order(db: Engine) -> None:
    spans = [("upstream", 5.0), ("auth", 0.0), ("route", 1.0), ("retry", 5.0)]
    write(
        db,
        rec(at(4, 10, 1), id="req-1", spans=spans, request_body="in", response_body="out", embedding_dims=256,
            status="error", key_id=3, stream=True, prompt=7, completion=2),
        rec(at(4, 10, 2), id="req-2"),
    )  # fmt: skip

    detail = get_request(db, "req-1")

    assert detail is not None
    assert [(s.name, s.start_ms, s.attributes) for s in detail.spans] == [
        ("auth", 0.0, {"n": 1}),
        ("route", 1.0, {"n": 2}),
        ("upstream", 5.0, {"n": 0}),  # same start as "retry": written first, so first
        ("retry", 5.0, {"n": 3}),
    ]
    assert (detail.request_body, detail.response_body, detail.embedding_dims) == ("in", "out", 256)
    row = detail.row
    assert (row.id, row.status, row.status_code, row.key_id) == ("req-1", "error", 502, 3)
    assert (row.stream, row.prompt_tokens, row.completion_tokens, row.tokens) == (True, 7, 2, 9)
    assert row.created_at == at(4, 10, 1)
    other = get_request(db, "req-2")
    assert other is not None and other.spans == []


@pytest.mark.parametrize("request_id", ["missing", "", "x" * 37, "req-1" + " " * 40, "req-1' OR '1'='1"])
def test_get_request_unknown_or_too_long_ids(db: Engine, request_id: str) -> None:
    write(db, rec(at(4, 10, 1), id="req-1"))
    assert get_request(db, request_id) is None


def test_slow_requests_slowest_first_ties_by_id(db: Engine) -> None:
    write(
        db,
        rec(at(4, 10, 1), id="a", latency=100),
        rec(at(4, 10, 2), id="c", latency=900),
        rec(at(4, 10, 3), id="b", latency=900, status="error"),
        rec(at(4, 10, 4), id="d", latency=50),
        rec(at(4, 10, 5), id="e", latency=3000),
        rec(at(4, 11, 5), id="late", latency=99_000),  # outside the range
    )
    assert ids(slow_requests(db, RANGE)) == ["e", "b", "c", "a", "d"]
    assert ids(slow_requests(db, RANGE, limit=2)) == ["e", "b"]
    assert ids(slow_requests(db, RequestFilters(start=START, end=END, status="ok"))) == ["e", "c", "a", "d"]


def test_latest(db: Engine) -> None:
    seed_four(db)
    assert ids(latest(db, limit=3)) == ["r5", "r4", "r3"]
    assert ids(latest(db, endpoint=EMBED)) == ["r2"]


def test_iter_requests_yields_each_of_5000_rows_once(db: Engine) -> None:
    base = at(4, 10)
    # Ten rows a second, so every page boundary falls among identical timestamps.
    write(db, *[rec(base + timedelta(seconds=i // 10), id=f"{i:05d}") for i in range(5000)])
    expected = [f"{i:05d}" for i in range(4999, -1, -1)]  # newest first; ids decide among equals

    got = [r.id for r in iter_requests(db, RANGE, batch=333)]

    assert got == expected
    assert [r.id for r in iter_requests(db, RANGE, batch=500, limit=1234)] == expected[:1234]
    assert [r.id for r in iter_requests(db, RequestFilters(start=base, end=base + timedelta(seconds=1)), batch=3)] == [
        f"{i:05d}" for i in range(9, -1, -1)
    ]
    assert list(iter_requests(db, RANGE, limit=0)) == []


def test_rows_come_back_in_utc(db: Engine) -> None:
    write(db, rec(at(4, 10, 1, 2, 345678), id="u"))
    (row,) = list_requests(db, RANGE).rows
    assert row.created_at == at(4, 10, 1, 2, 345678) and row.created_at.utcoffset() == timedelta(0)
    assert isinstance(row.created_at, datetime)


def test_attribution_filters_match_whole_values(db: Engine) -> None:
    rows = [
        rec(at(4, 10, 1), id="t1"),
        rec(at(4, 10, 2), id="t2"),
        rec(at(4, 10, 3), id="t3"),
        rec(at(4, 10, 4), id="t4"),
    ]
    rows[0].end_user, rows[0].session_id, rows[0].tags = "alice", "s-1", "beta,prod"
    rows[1].end_user, rows[1].session_id, rows[1].tags = "alice2", "s-1", "prod"
    rows[2].end_user, rows[2].tags = "bob", "pro%d,x_y"
    write(db, *rows)
    assert find(db, end_user="alice") == ["t1"]  # whole value, not a prefix
    assert find(db, session_id="s-1") == ["t2", "t1"]
    assert find(db, tag="prod") == ["t2", "t1"]  # a whole tag, anywhere in the list
    assert find(db, tag="pro") == []
    assert find(db, tag="pro%d") == ["t3"]  # LIKE wildcards in a tag are taken literally
    assert find(db, tag="x_y") == ["t3"]
    assert find(db, tag="x%y") == []
    assert find(db, tag="beta", session_id="s-1") == ["t1"]
    detail = get_request(db, "t1")
    assert detail is not None
    assert (detail.row.end_user, detail.row.session_id, detail.row.tags) == ("alice", "s-1", "beta,prod")


def test_the_prompt_filter_finds_calls_of_a_prompt_or_of_one_version(db: Engine) -> None:
    from sqlmodel import Session

    from llm_console.db.prompt_tables import Prompt, PromptVersion

    with Session(db) as s:
        ids_of: dict[tuple[str, int], int] = {}
        for name in ("support/answer", "other"):
            prompt = Prompt(name=name)
            s.add(prompt)
            s.flush()
            assert prompt.id is not None
            for version in (1, 2):
                row = PromptVersion(prompt_id=prompt.id, version=version, text="x", digest="d")
                s.add(row)
                s.flush()
                assert row.id is not None
                ids_of[(name, version)] = row.id
        s.commit()
    rows = [rec(at(4, 10, i + 1), id=f"p{i + 1}") for i in range(4)]
    for r, version in zip(rows, [("support/answer", 1), ("support/answer", 2), ("other", 1), None], strict=True):
        r.prompt_version_id = ids_of[version] if version else None
    write(db, *rows)
    assert find(db, prompt="support/answer") == ["p2", "p1"]
    assert find(db, prompt="support/answer", prompt_version=2) == ["p2"]
    assert find(db, prompt="support/answer", prompt_version=3) == []
    assert find(db, prompt="other") == ["p3"]
    assert find(db, prompt="missing") == []
    assert find(db, prompt="x' OR '1'='1") == []
    detail = get_request(db, "p2")
    assert detail is not None and detail.prompt == ("support/answer", 2)
    assert detail.row.prompt_version_id == ids_of[("support/answer", 2)]
    plain = get_request(db, "p4")
    assert plain is not None and plain.prompt is None
