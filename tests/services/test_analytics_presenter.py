"""The Analytics page's filters and figures, worked out by hand: what `parse_analytics` keeps, drops and says
about a URL, how `query_string` writes links back, and every panel of a small hand-built `AnalyticsData` as
the text the page shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from llm_console.presenters.analytics import (
    BOTH_FILTERS,
    TABLES,
    analytics_view,
    parse_analytics,
    query_string,
    traces_chart,
)
from llm_console.services.analytics import AnalyticsData
from llm_console.services.analytics_types import (
    ABResult,
    Anomaly,
    AnomalyReport,
    Arm,
    ArmDifference,
    FeedbackSummary,
    Forecast,
    ForecastPoint,
    Heatmap,
    ModelEconomics,
    ModelErrors,
    ModelRow,
    ModelScore,
    Recommendation,
    ScorePoint,
    TracePoint,
    UsersPoint,
)

NOW = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)  # a Wednesday


def test_good_filters_are_kept_and_set_the_range() -> None:
    raw = {"range": "30d", "model": " gpt-4o ", "ab_kind": "alias", "a": "gpt-4o", "b": "gpt-4o-mini", "x": "1"}
    p = parse_analytics(raw, NOW)
    assert p.errors == []
    assert p.params == {"range": "30d", "model": "gpt-4o", "ab_kind": "alias", "a": "gpt-4o", "b": "gpt-4o-mini"}
    assert p.filters.start == datetime(2026, 2, 2, 12, 30, tzinfo=UTC)  # 4 March minus 30 days
    assert p.filters.end == NOW and p.filters.alias == "gpt-4o"
    assert (p.range_name, p.grain) == ("30d", "h")
    blank = parse_analytics({"range": "", "model": "  "}, NOW)  # empty values count as absent
    assert blank.errors == [] and blank.params == {"range": "7d"} and blank.filters.alias is None
    assert blank.filters.start == NOW - timedelta(days=7)
    tag = parse_analytics({"tag": "prod"}, NOW)
    assert tag.params == {"range": "7d", "tag": "prod"} and tag.filters.alias is None  # a tag is no model


def test_bad_values_are_dropped_with_a_sentence_each() -> None:
    p = parse_analytics({"range": "1y", "model": "gpt\x00", "tag": "t" * 51}, NOW)
    assert p.errors == [
        "Ignored model: it contains control characters.",
        "Unknown range '1y': use one of 24h, 7d, 30d, 90d.",
        "Ignored tag: a tag has at most 50 characters.",
    ]
    assert [e.param for e in p.errors] == ["model", "range", "tag"]
    assert p.params == {"range": "7d"} and p.filters.start == NOW - timedelta(days=7)  # the default range
    assert parse_analytics({"tag": "t" * 50}, NOW).params["tag"] == "t" * 50  # the longest tag allowed
    long_model = parse_analytics({"model": "m" * 400}, NOW)
    assert long_model.errors == [] and long_model.params["model"] == "m" * 300  # cut to MAX_TEXT


def test_conflicting_values_keep_what_can_be_used() -> None:
    both = parse_analytics({"model": "gpt-4o", "tag": "prod"}, NOW)
    assert both.errors == [BOTH_FILTERS] and both.errors[0].param == "tag"
    assert both.params == {"range": "7d", "model": "gpt-4o"} and both.filters.alias == "gpt-4o"

    unknown = parse_analytics({"ab_kind": "region", "a": "eu", "b": "us"}, NOW)
    assert unknown.errors == [
        "Unknown comparison 'region': compare deployments or models.",
        "Ignored a: choose what to compare (deployments or models) first.",
        "Ignored b: choose what to compare (deployments or models) first.",
    ]
    assert unknown.params == {"range": "7d"}
    arms_only = parse_analytics({"a": "1"}, NOW)
    assert arms_only.errors == ["Ignored a: choose what to compare (deployments or models) first."]

    # A equal to B parses: `load_analytics` judges the pair and says why in `ab_error` (see the view test).
    same = parse_analytics({"ab_kind": "deployment", "a": "7", "b": "7"}, NOW)
    assert same.errors == [] and (same.params["a"], same.params["b"]) == ("7", "7")


def test_links_clear_what_a_change_makes_stale() -> None:
    params = {"b": "y", "a": "x", "ab_kind": "alias", "model": "gpt-4o", "range": "7d"}  # any order in
    assert query_string(params) == "range=7d&model=gpt-4o&ab_kind=alias&a=x&b=y"  # PARAMS order out
    assert query_string(params, tag="prod") == "range=7d&tag=prod&ab_kind=alias&a=x&b=y"  # a tag drops the model
    assert query_string({"tag": "prod"}, model="m & co") == "model=m+%26+co"  # a model drops the tag
    assert query_string(params, model="") == "range=7d&ab_kind=alias&a=x&b=y"  # clearing one sets no other
    assert query_string({"tag": "prod"}, model=None) == "tag=prod"
    assert query_string(params, ab_kind="deployment") == "range=7d&model=gpt-4o&ab_kind=deployment"  # arms go
    assert query_string(params, ab_kind=None) == "range=7d&model=gpt-4o"
    assert query_string(params, a="z") == "range=7d&model=gpt-4o&ab_kind=alias&a=z&b=y"  # one arm changes alone
    assert query_string({}) == ""
    parsed = parse_analytics({"range": "90d", "tag": "a b", "ab_kind": "deployment", "a": "1", "b": "2"}, NOW)
    assert query_string(parsed.params) == "range=90d&tag=a+b&ab_kind=deployment&a=1&b=2"  # a deep link round-trips


def _hours(first: datetime, n: int, grain: timedelta) -> list[TracePoint]:
    return [TracePoint(first + i * grain, requests=2, errors=1, tokens=10, cost_usd=0.001) for i in range(n)]


def test_a_long_minute_series_is_drawn_by_the_hour() -> None:
    start = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    rows = traces_chart(_hours(start, 420, timedelta(minutes=1)))  # 420 minutes > 400 points: 7 hours
    assert [r["t"] for r in rows] == [f"03-04 {h}:00" for h in range(10, 17)]
    # 60 minutes an hour, each 2 calls of which 1 failed, 10 tokens, $0.001
    assert rows[0] == {"t": "03-04 10:00", "ok": 60, "errors": 60, "tokens": 600, "cost_usd": 0.06}
    short = traces_chart(_hours(start, 3, timedelta(minutes=1)))  # few minutes: drawn as they are
    assert [r["t"] for r in short] == ["10:00", "10:01", "10:02"]
    days = traces_chart(_hours(start, 2, timedelta(days=1)))
    assert [r["t"] for r in days] == ["2026-03-04", "2026-03-05"]


def _arm(label: str, **figures: object) -> Arm:
    base: dict[str, object] = {
        "n": 0,
        "errors": 0,
        "error_rate": None,
        "error_ci": None,
        "mean_latency_ms": None,
        "latency_ci": None,
        "p95_latency_ms": None,
        "cost_per_request": None,
        "cost_ci": None,
        "score_n": 0,
        "score_mean": None,
        "score_ci": None,
    }
    return Arm(label=label, value=label, **{**base, **figures})  # type: ignore[arg-type]


def _data(**changes: object) -> AnalyticsData:
    cells = [[0] * 24 for _ in range(7)]
    cells[0][9] = 6  # Monday 09:00
    cells[2][10], cells[2][11] = 40, 60  # Wednesday 10:00 and 11:00
    ab = ABResult(
        kind="alias",
        a=_arm(
            "gpt-4o",
            n=1200,
            errors=12,
            error_rate=0.01,
            error_ci=(0.0057, 0.0174),
            mean_latency_ms=600.0,
            latency_ci=(580.0, 620.0),
            p95_latency_ms=1500.0,
            cost_per_request=0.0075,
            cost_ci=(0.007, 0.008),
        ),
        b=_arm("gpt-4o-mini", n=300, errors=6, error_rate=0.02, score_n=10, score_mean=0.8, score_ci=(0.7, 0.9)),
        differences=[
            ArmDifference("error_rate", 0.01, 0.02, 0.01, 0.002, 0.018, True),
            ArmDifference("latency_ms", 600.0, 550.0, -50.0, -80.0, -20.0, True),
            ArmDifference("score", None, 0.8, None, None, None, False),
        ],
        method="Welch and Newcombe.",
        sampled=True,
    )
    fields: dict[str, object] = {
        "traces": [
            TracePoint(datetime(2026, 3, 4, 10, tzinfo=UTC), requests=40, errors=2, tokens=12_000, cost_usd=0.30),
            TracePoint(datetime(2026, 3, 4, 11, tzinfo=UTC), requests=60, errors=3, tokens=18_000, cost_usd=0.45),
        ],
        "users": [UsersPoint(date(2026, 3, 3), users=4, end_users=1), UsersPoint(date(2026, 3, 4), 7, 5)],
        "heatmap": Heatmap(cells, total=106, peak_weekday=2, peak_hour=11, peak_requests=60),
        "economics": [
            ModelEconomics("gpt-4o", 100, 20_000, 10_000, 5_000, 0.75, 0.0075, 0.025, 300.0, 0.25),
            ModelEconomics("idle", 0, 0, 0, 0, 0.0, None, None, None, None),
        ],
        "errors": [ModelErrors("gpt-4o", 100, 5, 0.05, 0.0215, 0.1118)],
        "feedback": FeedbackSummary(
            names=["helpful", "thumbs"],
            by_model=[
                ModelScore("gpt-4o", "helpful", 4, 0.75, 0.26, 1.24),
                ModelScore("gpt-4o", "thumbs", 3, None, None, None, {"up": 2, "down": 1}),
            ],
            over_time=[
                ScorePoint(date(2026, 3, 3), "helpful", 2, 0.5),
                ScorePoint(date(2026, 3, 4), "helpful", 2, 1.0),
                ScorePoint(date(2026, 3, 4), "thumbs", 3, None),
            ],
            total=7,
        ),
        "comparison": [
            ModelRow("gpt-4o", 100, 420.0, 1500.0, 600.0, 35.26, 0.0075, 0.05, "helpful", 0.75, 4),
            ModelRow("idle", 0, None, None, None, None, None, None, None, None, 0),
        ],
        "ab": ab,
        "ab_error": "",
        "ab_deployments": [("1", "east"), ("2", "west")],
        "ab_aliases": [("gpt-4o", "gpt-4o"), ("gpt-4o-mini", "gpt-4o-mini")],
        "anomalies": AnomalyReport(
            [
                Anomaly("spend", datetime(2026, 3, 4, 9, tzinfo=UTC), 2.5, 0.4, 0.1, 14.2, "up"),
                Anomaly("latency", datetime(2026, 3, 4, 8, tzinfo=UTC), 2400.0, 800.0, 100.0, 10.8, "up"),
            ],
            method="Robust z over 24 hours.",
            hours_checked=24,
        ),
        "forecasts": [
            Forecast("requests", [], [ForecastPoint(date(2026, 3, 5), 1234.4, 1000.2, 1468.6)], 12.5, 8765.4, "OLS."),
            Forecast("cost_usd", [], [ForecastPoint(date(2026, 3, 5), 1.5, 1.2, 1.8)], -0.05, 10.5, "OLS."),
        ],
        "recommendations": [
            Recommendation("cheaper_model", "Try gpt-4o-mini", "It answers as well.", {"Calls": "100"}, 0.3),
            Recommendation("cache_prompts", "Cache prompts", "Long prompts repeat.", {}),
        ],
        "tags": [("prod", 1234)],
        "as_of": NOW,
    }
    fields.update(changes)
    return AnalyticsData(**fields)  # type: ignore[arg-type]


def test_traffic_users_and_heatmap_figures() -> None:
    v = analytics_view(_data(), {"range": "7d"})
    assert set(v.tables) == set(TABLES)
    assert v.traces_chart == [
        {"t": "03-04 10:00", "ok": 38, "errors": 2, "tokens": 12_000, "cost_usd": 0.3},  # 40 - 2 OK
        {"t": "03-04 11:00", "ok": 57, "errors": 3, "tokens": 18_000, "cost_usd": 0.45},  # 60 - 3 OK
    ]
    assert v.traces_cards == [
        {"label": "Requests", "value": "100", "hint": "5 errors (5.0%)"},  # 40 + 60 calls, 2 + 3 failed
        {"label": "Tokens", "value": "30,000", "hint": "prompt and completion"},  # 12,000 + 18,000
        {"label": "Cost", "value": "$0.7500", "hint": "estimate"},  # 0.30 + 0.45
    ]
    assert v.users_chart == [
        {"t": "2026-03-03", "users": 4, "end_users": 1},
        {"t": "2026-03-04", "users": 7, "end_users": 5},
    ]
    assert [(c["value"], c["hint"]) for c in v.users_cards] == [
        ("7", "5 named by the caller"),  # as_of is 4 March
        ("7", "2026-03-04"),
        ("5.5", "over 2 days"),  # (4 + 7) / 2
    ]
    wednesday, monday = v.heat_cells[2], v.heat_cells[0]
    # shade = 1 + ceil(7 x n / peak), peak 60: 60 -> 8, 40 -> 1 + ceil(4.67) = 6, 6 -> 1 + ceil(0.7) = 2
    assert [wednesday[h]["bg"] for h in (11, 10, 9)] == ["var(--accent-8)", "var(--accent-6)", "transparent"]
    assert monday[9]["bg"] == "var(--accent-2)"
    assert wednesday[11] == {
        "n": "60",
        "requests": "60",
        "hour": "11",
        "title": "Wednesday 11:00 UTC: 60 requests",
        "bg": "var(--accent-8)",
    }
    assert v.heat_cells[6][0]["title"] == "Sunday 00:00 UTC: 0 requests"
    # 60 of 106 = 56.6 %
    assert v.heatmap_peak == "Busiest hour: Wednesdays 11:00 to 12:00 UTC, 60 requests (56.6% of 106 in range)."
    grid = v.tables["heatmap"][2]
    assert (grid["weekday"], grid["10"], grid["11"], grid["00"]) == ("Wednesday", "40", "60", "0")
    quiet = analytics_view(_data(traces=[], users=[], heatmap=Heatmap([[0] * 24] * 7, 0, None, None, 0)), {})
    assert quiet.heatmap_peak == "No traffic in range."
    assert quiet.traces_cards[0]["hint"] == "0 errors (—)"  # no calls: no rate
    assert [(c["value"], c["hint"]) for c in quiet.users_cards] == [
        ("0", "0 named by the caller"),
        ("0", "no traffic"),
        ("0", "over 0 days"),
    ]


def test_model_tables_format_money_rates_and_intervals() -> None:
    v = analytics_view(_data(), {})
    assert v.tables["economics"] == [
        {
            "model": "gpt-4o",
            "requests": "100",
            "prompt_tokens": "20,000",
            "completion_tokens": "10,000",
            "cached_tokens": "5,000",
            "cached_share": "25.0%",
            "cost": "$0.7500",
            "cost_per_request": "$0.007500",  # under a cent: six decimals
            "cost_per_1k_tokens": "$0.0250",
            "tokens_per_request": "300.0",
        },
        dict.fromkeys(v.tables["economics"][0], "—")  # no calls: no ratio, and zero counts and cost
        | {"model": "idle", "cost": "$0.00"}
        | dict.fromkeys(("requests", "prompt_tokens", "completion_tokens", "cached_tokens"), "0"),
    ]
    assert v.tables["errors"] == [
        {"model": "gpt-4o", "requests": "100", "errors": "5", "error_rate": "5.00%", "interval": "2.15% to 11.18%"}
    ]
    assert v.tables["feedback"] == [
        {"model": "gpt-4o", "name": "helpful", "n": "4", "mean": "0.75", "interval": "0.26 to 1.24", "categories": "—"},
        {"model": "gpt-4o", "name": "thumbs", "n": "3", "mean": "—", "interval": "—", "categories": "down 1 · up 2"},
    ]
    assert v.score_names == ["helpful", "", "", "", ""]  # categorical scores have no line to draw
    assert v.score_chart == [{"t": "2026-03-03", "s0": 0.5}, {"t": "2026-03-04", "s0": 1.0}]
    assert [r["mean"] for r in v.tables["feedback_over_time"]] == ["0.500", "1.000", "—"]
    assert v.tables["comparison"] == [
        {
            "model": "gpt-4o",
            "requests": "100",
            "p50": "420 ms",
            "p95": "1.50 s",
            "mean": "600 ms",
            "tokens_per_s": "35.3",
            "cost_per_request": "$0.007500",
            "error_rate": "5.00%",
            "score": "helpful 0.75 (n=4)",
        },
        dict.fromkeys(v.tables["comparison"][0], "—") | {"model": "idle", "requests": "0"},
    ]
    assert v.model_options == [{"value": "gpt-4o", "label": "gpt-4o"}, {"value": "gpt-4o-mini", "label": "gpt-4o-mini"}]
    assert v.tag_options == [{"value": "prod", "label": "prod (1,234)"}]
    assert v.texts["as_of"] == "12:30:00 UTC"


def test_the_ab_panel_shows_both_arms_and_b_minus_a() -> None:
    v = analytics_view(_data(), {"ab_kind": "alias", "a": "gpt-4o", "b": "gpt-4o-mini"})
    assert v.ab_options == [{"value": "gpt-4o", "label": "gpt-4o"}, {"value": "gpt-4o-mini", "label": "gpt-4o-mini"}]
    assert {r["metric"]: (r["a"], r["b"]) for r in v.tables["ab_arms"]} == {
        "Calls": ("1,200", "300"),
        "Errors": ("12", "6"),
        "Error rate (95% CI)": ("1.00% (0.57% to 1.74%)", "2.00%"),  # B has no interval: none is shown
        "Mean latency (95% CI)": ("600 ms (580 ms to 620 ms)", "—"),
        "P95 latency": ("1.50 s", "—"),
        "Cost per request (95% CI)": ("$0.007500 ($0.007000 to $0.008000)", "—"),
        "Feedback score (95% CI)": ("—", "0.80 (0.70 to 0.90)"),
        "Scores given": ("0", "10"),
    }
    assert list(v.tables["ab_differences"][0]) == ["metric", "a", "b", "diff", "interval", "verdict"]
    assert [list(r.values()) for r in v.tables["ab_differences"]] == [
        ["Error rate", "1.00%", "2.00%", "+1.00%", "+0.20% to +1.80%", "significant"],  # 2 % - 1 %
        ["Mean latency", "600 ms", "550 ms", "-50 ms", "-80 ms to -20 ms", "significant"],  # 550 - 600
        ["Feedback score", "—", "0.80", "—", "—", "not significant"],
    ]
    t = v.texts
    assert (t["ab_a"], t["ab_b"], t["ab_method"], t["ab_error"], t["ab_hint"]) == (
        "gpt-4o",
        "gpt-4o-mini",
        "Welch and Newcombe.",
        "",
        "",
    )
    assert t["ab_sampled"].startswith("Counts, error rates, means and P95 cover every call in the range;")

    same = "Choose two different deployments: A and B are both 'east'."
    refused = analytics_view(_data(ab=None, ab_error=same), {"ab_kind": "deployment", "a": "1", "b": "1"})
    assert refused.ab_options == [{"value": "1", "label": "east"}, {"value": "2", "label": "west"}]
    assert refused.tables["ab_arms"] == [] and refused.tables["ab_differences"] == []
    assert (refused.texts["ab_error"], refused.texts["ab_hint"], refused.texts["ab_a"]) == (same, "", "")
    waiting = analytics_view(_data(ab=None), {"ab_kind": "alias"})
    assert waiting.texts["ab_hint"] == "Choose arm A and arm B to compare them."
    nothing = analytics_view(_data(ab=None), {})
    assert nothing.ab_options == [] and nothing.texts["ab_hint"] == ""


def test_anomalies_forecasts_and_recommendations() -> None:
    v = analytics_view(_data(), {})
    assert list(v.tables["anomalies"][0]) == ["metric", "hour", "value", "median", "z", "direction"]
    assert [list(r.values()) for r in v.tables["anomalies"]] == [
        ["Spend per hour", "2026-03-04 09:00 UTC", "$2.50", "$0.4000", "+14.2", "up"],
        ["Latency", "2026-03-04 08:00 UTC", "2.40 s", "800 ms", "+10.8", "up"],
    ]
    assert v.texts["anomaly_method"] == "Robust z over 24 hours."
    assert v.texts["anomaly_summary"] == "2 flagged of 24 hours checked."
    assert v.forecast_cards == [
        {"label": "Requests, next 7 days", "value": "8,765", "hint": "trend +12.50 a day"},  # 8765.4 rounds down
        {"label": "Cost, next 7 days", "value": "$10.50", "hint": "trend -$0.0500 a day"},
    ]
    assert v.tables["forecast"] == [
        {
            "day": "2026-03-05",
            "requests": "1,234",
            "requests_interval": "1,000 to 1,469",  # 1000.2 and 1468.6 rounded
            "cost_usd": "$1.50",
            "cost_usd_interval": "$1.20 to $1.80",
        }
    ]
    assert v.texts["forecast_method"] == "OLS."
    assert v.tables["recommendations"] == [
        {
            "kind": "cheaper_model",
            "title": "Try gpt-4o-mini",
            "detail": "It answers as well.",
            "saving": "saves about $0.3000",
        },
        {"kind": "cache_prompts", "title": "Cache prompts", "detail": "Long prompts repeat.", "saving": ""},
    ]
    assert v.recommendation_figures == [[{"label": "Calls", "value": "100"}], []]
