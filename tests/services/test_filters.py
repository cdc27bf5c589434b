"""Filters from URL query parameters: every parameter parsed or refused with a message, and links that round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from llm_console.db.queries.usage import aligned
from llm_console.services.filters import ParsedFilters, parse_filters

NOW = datetime(2026, 3, 4, 12, 0, 30, tzinfo=UTC)


def parse(**params: str) -> ParsedFilters:
    return parse_filters(params, NOW)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_defaults() -> None:
    p = parse()
    f = p.filters
    assert (p.range_name, p.grain, p.errors, p.params) == ("24h", "h", [], {"range": "24h"})
    assert (f.start, f.end) == (NOW - timedelta(hours=24), NOW)
    assert (f.alias, f.endpoint, f.deployment_id, f.status, f.key_id, f.user_id, f.team_id) == (None,) * 7
    assert (f.stream, f.min_latency_ms, f.min_cost_usd, f.search) == (None,) * 4


def test_the_clock_defaults_to_now() -> None:
    before = datetime.now(UTC)
    f = parse_filters({}).filters
    assert before <= f.end <= datetime.now(UTC)


# Without `res`, about 60-400 points: minutes up to 6 h, hours up to 14 days, days beyond.
@pytest.mark.parametrize(
    ("name", "span", "grain"),
    [("1h", timedelta(hours=1), "m"), ("24h", timedelta(hours=24), "h"), ("7d", timedelta(days=7), "h"),
     ("30d", timedelta(days=30), "d")],
)  # fmt: skip
def test_named_ranges(name: str, span: timedelta, grain: str) -> None:
    p = parse(range=name)
    assert (p.range_name, p.filters.start, p.filters.end, p.grain, p.errors) == (name, NOW - span, NOW, grain, [])


@pytest.mark.parametrize("name", ["2h", "bogus", "7D", "'; DROP TABLE x; --", "x" * 500])
def test_unknown_range_falls_back_to_24h(name: str) -> None:
    p = parse(range=name)
    assert (p.range_name, p.filters.start) == ("24h", NOW - timedelta(hours=24))
    assert p.errors == [f"Unknown range {name[:20]!r}: use one of 1h, 24h, 7d, 30d or custom."]


def custom(start: str | None = None, end: str | None = None, **extra: str) -> dict[str, str]:
    """Query parameters of a custom range (`from` and `to` are keywords in Python)."""
    params = {"range": "custom", **extra}
    if start is not None:
        params["from"] = start
    if end is not None:
        params["to"] = end
    return params


@pytest.mark.parametrize(
    ("params", "start", "end"),
    [
        (custom("2026-03-01T10:00", "2026-03-02T10:00"), utc(2026, 3, 1, 10), utc(2026, 3, 2, 10)),
        (custom("2026-03-01T10:00:00Z", "2026-03-01T11:00Z"), utc(2026, 3, 1, 10), utc(2026, 3, 1, 11)),
        (custom("2026-03-01T12:00+02:00"), utc(2026, 3, 1, 10), NOW),  # no "to": until now
        ({"from": "2026-03-01T10:00"}, utc(2026, 3, 1, 10), NOW),  # "from" without a range means custom
        (custom(" 2026-03-01 10:00 ", "2026-03-01T10:01"), utc(2026, 3, 1, 10), utc(2026, 3, 1, 10, 1)),
        (custom("2025-01-28T12:00:30Z"), utc(2025, 1, 28, 12, 0, 30), NOW),  # exactly 400 days
    ],
)
def test_custom_ranges(params: dict[str, str], start: datetime, end: datetime) -> None:
    p = parse_filters(params, NOW)
    assert (p.range_name, p.filters.start, p.filters.end, p.errors) == ("custom", start, end, [])
    assert p.params["from"] == start.isoformat(timespec="seconds")


NEEDS_FROM = "A custom range needs a start ('from')."
BAD_FROM = "Ignored from: expected a date and time like 2026-11-30T14:00."
BAD_TO = "Ignored to: expected a date and time like 2026-11-30T14:00."
REVERSED = "The range's start must be before its end."
TOO_LONG = "A custom range can span at most 400 days."


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        (custom(), [NEEDS_FROM]),
        (custom(end="2026-03-02T10:00"), [NEEDS_FROM]),
        (custom("yesterday"), [BAD_FROM]),
        (custom("2026-02-30T10:00"), [BAD_FROM]),
        (custom("2026-03-01T10:00", "soon"), [BAD_TO]),
        (custom("2026-03-02T10:00", "2026-03-01T10:00"), [REVERSED]),
        (custom("2026-03-01T10:00", "2026-03-01T10:00"), [REVERSED]),
        (custom("2026-03-05T10:00"), [REVERSED]),  # starts after now
        (custom("2025-01-28T12:00:29Z"), [TOO_LONG]),  # 400 days and a second
        (custom("2020-01-01T00:00", "2026-01-01T00:00"), [TOO_LONG]),
    ],
)
def test_bad_custom_ranges_fall_back_to_24h(params: dict[str, str], errors: list[str]) -> None:
    p = parse_filters(params, NOW)
    assert (p.range_name, p.filters.start, p.filters.end, p.errors) == ("24h", NOW - timedelta(hours=24), NOW, errors)
    assert "from" not in p.params and "to" not in p.params


@pytest.mark.parametrize("when", ["0001-01-01T00:00+05:00", "9999-12-31T23:59-01:00"])
def test_out_of_range_dates_are_refused(when: str) -> None:
    p = parse_filters(custom("2026-03-01T00:00", when), NOW)
    assert p.range_name == "24h" and p.errors


def test_an_accepted_range_can_be_queried() -> None:
    p = parse_filters(custom("9999-06-01T00:00", "9999-12-31T23:59"), NOW)
    if p.range_name == "custom":
        assert aligned(p.filters.start, p.filters.end, p.grain)[1] > p.filters.end


@pytest.mark.parametrize(
    ("name", "attr"), [("deployment", "deployment_id"), ("key", "key_id"), ("user", "user_id"), ("team", "team_id")]
)
def test_ids(name: str, attr: str) -> None:
    p = parse(**{name: "42"})
    assert (getattr(p.filters, attr), p.params[name], p.errors) == (42, "42", [])
    assert getattr(parse(**{name: "007"}).filters, attr) == 7
    assert getattr(parse(**{name: "9" * 12}).filters, attr) == 999_999_999_999
    for bad in ("abc", "-1", "1.5", "1e3", " 1", "9" * 13, "1; DROP TABLE requests", "0x10"):
        p = parse(**{name: bad})
        assert (getattr(p.filters, attr), p.errors) == (None, [f"Ignored {name}: expected a numeric id."]), bad
        assert name not in p.params


@pytest.mark.parametrize("raw", ["²", "1²", "⑦"])
def test_unicode_digits_int_cannot_read_are_refused(raw: str) -> None:
    p = parse(key=raw)
    assert (p.filters.key_id, p.errors) == (None, ["Ignored key: expected a numeric id."])


@pytest.mark.parametrize(("name", "attr"), [("min_latency", "min_latency_ms"), ("min_cost", "min_cost_usd")])
def test_numbers(name: str, attr: str) -> None:
    for raw, value in (("250", 250.0), ("0", 0.0), ("0.05", 0.05), ("1e3", 1000.0), (" 7 ", 7.0), ("-0", 0.0)):
        p = parse(**{name: raw})
        assert (getattr(p.filters, attr), p.params[name], p.errors) == (value, raw, []), raw
    for bad in ("-1", "-0.001", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "abc", "1" * 31, "", "1,5"):
        p = parse(**{name: bad})
        assert getattr(p.filters, attr) is None, bad
        assert p.errors == ([] if bad == "" else [f"Ignored {name}: expected a non-negative number."]), bad


def test_status_endpoint_model_stream() -> None:
    for status in ("ok", "error", "incomplete"):
        assert parse(status=status).filters.status == status
    for bad in ("OK", "failed", "'"):
        p = parse(status=bad)
        assert (p.filters.status, p.errors) == (None, [f"Unknown status {bad!r}: use ok, error or incomplete."])
    assert parse(endpoint="/v1/embeddings").filters.endpoint == "/v1/embeddings"
    p = parse(endpoint="/v1/models")
    assert (p.filters.endpoint, p.errors, "endpoint" in p.params) == (None, ["Unknown endpoint '/v1/models'."], False)
    assert parse(model="gpt-4o").filters.alias == "gpt-4o"
    long_model = parse(model="m" * 400)
    assert (long_model.filters.alias, long_model.errors) == ("m" * 300, [])
    assert (parse(stream="true").filters.stream, parse(stream="false").filters.stream) == (True, False)
    p = parse(stream="yes")
    assert (p.filters.stream, p.errors) == (None, ["Ignored stream: use true or false."])


def test_search_is_cut_to_200_characters() -> None:
    assert parse(q="x" * 200).errors == []
    p = parse(q="é" * 201)
    assert (p.filters.search, p.errors) == ("é" * 200, ["The search was cut to its first 200 characters."])
    assert parse(q="50%_off '; --").filters.search == "50%_off '; --"


def test_empty_and_unknown_parameters_are_ignored() -> None:
    p = parse_filters({"model": "", "key": "", "foo": "bar", "status": None, "q": ""}, NOW)  # type: ignore[dict-item]
    assert (p.filters.alias, p.filters.key_id, p.filters.status, p.filters.search) == (None, None, None, None)
    assert p.errors == []
    assert p.params == {"range": "24h"}


COARSER_MINUTES = ["Too many points at one per minute for this range; showing a coarser resolution."]
COARSER_HOURS = ["Too many points at one per hour for this range; showing a coarser resolution."]
A_YEAR = ("2025-03-01T00:00", "2026-03-01T00:00")


@pytest.mark.parametrize(
    ("params", "grain", "errors"),
    [
        ({"range": "1h", "res": "minute"}, "m", []),
        ({"range": "24h", "res": "minute"}, "m", []),  # 1440 points
        ({"range": "24h", "res": "hour"}, "h", []),
        ({"range": "24h", "res": "day"}, "d", []),
        ({"range": "7d", "res": "minute"}, "h", COARSER_MINUTES),
        ({"range": "30d", "res": "hour"}, "h", []),  # 720 points
        (custom("2026-03-02T20:00", "2026-03-04T12:00", res="minute"), "h", COARSER_MINUTES),  # 40 h: 2400 points
        (custom("2026-03-04T06:00", "2026-03-04T12:00"), "m", []),  # 6 h, no res: minutes
        (custom("2026-03-04T05:59", "2026-03-04T12:00"), "h", []),  # 6 h 1 min: hours
        (custom("2026-02-18T12:00", "2026-03-04T12:00"), "h", []),  # 14 days: hours
        (custom("2026-02-18T11:59", "2026-03-04T12:00"), "d", []),  # 14 days 1 min: days
        (custom(*A_YEAR, res="hour"), "d", COARSER_HOURS),  # 8760 points
        (custom(*A_YEAR, res="minute"), "d", COARSER_MINUTES),
        (custom(*A_YEAR), "d", []),
        ({"range": "1h", "res": "second"}, "m", ["Unknown resolution 'second': use minute, hour or day."]),
        ({"range": "7d", "res": "x" * 100}, "h", [f"Unknown resolution {'x' * 20!r}: use minute, hour or day."]),
    ],
)
def test_resolution(params: dict[str, str], grain: str, errors: list[str]) -> None:
    p = parse_filters(params, NOW)
    assert (p.grain, p.errors) == (grain, errors)
    assert ("res" in p.params) == (params.get("res") in ("minute", "hour", "day"))


def test_several_errors_are_all_reported() -> None:
    p = parse(range="2h", key="x", status="bad", min_cost="nan", stream="1")
    assert len(p.errors) == 5
    assert p.params == {"range": "24h"}


def round_trip(p: ParsedFilters) -> ParsedFilters:
    return parse_filters(dict(parse_qsl(p.query_string(), keep_blank_values=True)), NOW)


FULL = {
    "range": "7d",
    "res": "day",
    "model": "gpt 4o & co",
    "endpoint": "/v1/chat/completions",
    "deployment": "3",
    "status": "error",
    "key": "12",
    "user": "5",
    "team": "9",
    "stream": "false",
    "min_latency": "250.5",
    "min_cost": "0.01",
    "q": "50% off & 'quotes' + more=yes #1",
}


@pytest.mark.parametrize(
    "params",
    [
        {},
        FULL,
        custom("2026-03-01T10:00Z", "2026-03-02T10:00Z", key="007"),
        custom("2026-03-01T12:00+02:00", "2026-03-01T13:00+02:00", res="minute"),
        {"range": "1h", "key": "abc", "q": "ü" * 300},  # refused and cut values stay out of the link
    ],
)
def test_query_string_round_trip(params: dict[str, str]) -> None:
    p = parse_filters(params, NOW)
    again = round_trip(p)
    assert again.filters == p.filters
    assert (again.range_name, again.grain, again.params, again.errors) == (p.range_name, p.grain, p.params, [])


@pytest.mark.parametrize(
    "params",
    [
        custom("2026-03-01T10:00:30Z", "2026-03-02T10:00Z"),
        custom("2026-03-01T10:00Z"),  # "to" is now, 12:00:30
    ],
)
def test_custom_seconds_survive_the_round_trip(params: dict[str, str]) -> None:
    p = parse_filters(params, NOW)
    assert round_trip(p).filters == p.filters


def test_query_string_changes() -> None:
    p = parse(**FULL)
    assert p.query_string().startswith("range=7d&res=day&model=gpt+4o+%26+co&endpoint=%2Fv1%2Fchat%2Fcompletions&")
    changed = dict(parse_qsl(p.query_string(status="ok", model=None, q="", key="99")))
    assert changed["status"] == "ok" and changed["key"] == "99"
    assert "model" not in changed and "q" not in changed
    assert parse().query_string() == "range=24h"
    assert parse().query_string(range="1h", status="error") == "range=1h&status=error"


@pytest.mark.parametrize(
    ("raw", "prompt", "version"),
    [
        ("support/answer", "support/answer", None),
        ("support/answer@3", "support/answer", 3),
        (" a.b_c@12 ", "a.b_c", 12),
    ],
)
def test_the_prompt_filter_takes_a_name_or_name_at_version(raw: str, prompt: str, version: int | None) -> None:
    parsed = parse_filters({"prompt": raw})
    assert (parsed.filters.prompt, parsed.filters.prompt_version) == (prompt, version)
    assert parsed.errors == [] and parsed.params["prompt"] == raw.strip()
    assert "prompt" in parsed.filters.row_only()


@pytest.mark.parametrize("raw", ["@3", "name@0", "name@x", "na me", "name@3@4", "-x", "name@1234567890"])
def test_a_bad_prompt_filter_is_ignored_with_a_reason(raw: str) -> None:
    parsed = parse_filters({"prompt": raw})
    assert parsed.filters.prompt is None and "prompt" not in parsed.params
    assert parsed.errors == ["Ignored prompt: expected a prompt name, or name@version such as support-answer@3."]
