"""The Prompts pages' display values: list rows with the production badge's text, version and figure rows,
the line diff (signs, words, numbering, hunks), and the editor's text read back (variables, JSON, labels)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from llm_console.db.queries.usage import Totals
from llm_console.db.rollups import N_BUCKETS, bucket_index
from llm_console.presenters import prompts as present
from llm_console.prompts.template import PromptError
from llm_console.services.prompt_stats import PromptListPage, PromptPage, ScoreStat, VersionStats
from llm_console.services.prompts import PromptSummary, VersionView

WHEN = datetime(2026, 3, 10, 9, 5, tzinfo=UTC)


def version(n: int, *, labels: list[str] | None = None, **kw: object) -> VersionView:
    base = VersionView(
        id=100 + n,
        prompt_id=1,
        name="support/answer",
        version=n,
        kind="chat",
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Answer {{ q }}"}],
        text=None,
        variables=["q"],
        config={},
        commit_message=f"change {n}",
        digest="d" * 64,
        created_at=WHEN,
        created_by="ann@example.com",
        labels=labels or [],
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def summary(**kw: object) -> PromptSummary:
    base = PromptSummary(1, "support/answer", "chat", "Answers", 3, 3, {"production": 2, "staging": 3}, WHEN)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_list_rows_badge_production_and_list_other_labels() -> None:
    page = PromptListPage([summary(), summary(id=2, name="a b&c", labels={})], 26, 1, 2, {1: 1234}, WHEN)
    rows = present.list_rows(page)
    assert rows[0]["production"] == "v2" and rows[0]["labels"] == "staging → v3"
    assert rows[0]["latest"] == "v3" and rows[0]["calls"] == "1,234" and rows[0]["updated"] == "2026-03-10 09:05 UTC"
    assert rows[0]["href"] == "/prompts/detail?name=support%2Fanswer"
    assert rows[1]["production"] == "" and rows[1]["labels"] == "" and rows[1]["calls"] == "0"
    assert rows[1]["href"] == "/prompts/detail?name=a+b%26c"  # the name is a parameter, never raw URL text
    assert present.count_text(page) == "Page 1 of 2 · 26 prompts"


def test_version_rows_name_their_labels() -> None:
    rows = present.version_rows([version(3, labels=["latest", "staging"]), version(2, labels=["production"])])
    assert [r["title"] for r in rows] == ["v3", "v2"]
    assert rows[0]["labels"] == "latest, staging" and rows[0]["production"] == ""
    assert rows[1]["production"] == "yes" and rows[1]["message"] == "change 2"
    assert rows[1]["author"] == "ann@example.com" and rows[1]["created"] == "2026-03-10 09:05 UTC"


def hist(*latencies: float) -> tuple[int, ...]:
    out = [0] * N_BUCKETS
    for ms in latencies:
        out[bucket_index(ms)] += 1
    return tuple(out)


def test_figure_rows_format_every_figure() -> None:
    totals = Totals(
        requests=4, errors=1, prompt_tokens=12_345, completion_tokens=678, cost_usd=0.02,
        latency_ms_sum=1000.0, lat_hist=hist(100, 100, 300, 500),
    )  # fmt: skip
    scores = (ScoreStat("accuracy", 3, 2, 0.75), ScoreStat("thumbs", 1, 1, 1.0), ScoreStat("verdict", 2, 0, None))
    stats = {103: VersionStats(103, totals, 6, scores)}
    v3, v2 = version(3, labels=["latest", "production"]), version(2)
    rows = present.figure_rows([v3, v2], stats)
    r = rows[0]
    assert (r["title"], r["labels"], r["calls"], r["errors"], r["error_rate"]) == (
        "v3", "latest, production", "4", "1", "25.0%",
    )  # fmt: skip
    assert r["latency"] == "250 ms"  # 1000 ms over 4 calls
    # ranks 2 and 3.8 of 4: the second 100 ms call ends (75, 100]; 0.8 into the 500 ms call's (400, 500]
    assert r["p50"] == "100 ms" and r["p95"] == "480 ms"
    assert (r["tokens_in"], r["tokens_out"], r["cost"], r["cost_per_call"]) == ("12.3k", "678", "$0.0200", "$0.005000")
    assert r["feedback"] == "6" and r["score"] == "0.75 accuracy"
    assert r["scores"] == "accuracy 0.75 (n=2) · thumbs 1 (n=1)"
    quiet = rows[1]  # no stats at all: zeros and dashes, never an error
    assert (quiet["calls"], quiet["error_rate"], quiet["latency"], quiet["p95"]) == ("0", "—", "—", "—")
    assert (quiet["cost_per_call"], quiet["feedback"], quiet["score"], quiet["scores"]) == ("—", "0", "—", "—")
    assert r["calls_href"] == ""  # no range given: no link
    start, end = datetime(2026, 12, 1, 10, tzinfo=UTC), datetime(2026, 12, 8, 10, tzinfo=UTC)
    linked = present.figure_rows([v3], stats, (start, end))[0]
    assert linked["calls_href"] == (
        "/logs?from=2026-12-01T10%3A00%3A00%2B00%3A00&to=2026-12-08T10%3A00%3A00%2B00%3A00&prompt=support%2Fanswer%403"
    )


def test_template_lines_and_a_diff_marks_added_and_removed_lines() -> None:
    old = present.content(version(1))
    new = present.content(
        version(
            2,
            messages=[{"role": "system", "content": "Be kind.\nBe brief."}, {"role": "user", "content": "Q: {{ q }}"}],
            config={"temperature": 0.2},
        )
    )
    assert present.template_lines(old) == ["[system]", "Be kind.", "[user]", "Answer {{ q }}"]
    assert present.template_lines(new)[-4:] == ["[model settings]", "{", '  "temperature": 0.2', "}"]
    diff = present.diff_versions({"1": old, "2": new}, "1", "2")
    marked = [(r["kind"], r["sign"], r["word"], r["text"]) for r in diff.rows if r["kind"] in ("added", "removed")]
    assert marked == [
        ("added", "+", "added", "Be brief."),
        ("removed", "-", "removed", "Answer {{ q }}"),
        ("added", "+", "added", "Q: {{ q }}"),
        ("added", "+", "added", "[model settings]"),
        ("added", "+", "added", "{"),
        ("added", "+", "added", '  "temperature": 0.2'),
        ("added", "+", "added", "}"),
    ]
    assert (diff.added, diff.removed) == (6, 1)
    assert diff.summary == "6 lines added, 1 line removed."
    assert diff.rows[0] == {"kind": "hunk", "sign": "", "word": "", "text": "@@ -1,4 +1,9 @@", "old": "", "new": ""}
    same = diff.rows[1]
    assert (same["kind"], same["sign"], same["text"], same["old"], same["new"]) == ("same", " ", "[system]", "1", "1")
    removed = next(r for r in diff.rows if r["kind"] == "removed")
    assert (removed["old"], removed["new"]) == ("4", "")
    assert present.diff_versions({"1": old}, "1", "1").summary == "No differences."
    assert present.diff_versions({"1": old}, "1", "9").rows == []  # an unknown version: nothing, no error


def test_a_long_unchanged_stretch_is_left_out_between_hunks() -> None:
    old = [f"line {i}" for i in range(40)]
    new = ["first", *old[1:39], "last"]
    diff = present.diff_lines(old, new)
    hunks = [r["text"] for r in diff.rows if r["kind"] == "hunk"]
    assert hunks == ["@@ -1,4 +1,4 @@", "@@ -37,4 +37,4 @@"]  # 3 lines of context each, 32 lines left out
    assert len(diff.rows) == 2 + 2 * (3 + 2)
    big = present.diff_lines([], [str(i) for i in range(present.MAX_DIFF_ROWS + 10)])
    assert len(big.rows) == present.MAX_DIFF_ROWS and big.cut and "first 2,000 lines" in big.summary


def test_text_templates_diff_as_their_lines() -> None:
    a = present.content(version(1, kind="text", messages=None, text="Hello {{ who }}\nBye"))
    b = present.content(version(2, kind="text", messages=None, text="Hello {{ who }}\nSee you"))
    diff = present.diff_versions({"1": a, "2": b}, "1", "2")
    assert [(r["sign"], r["text"]) for r in diff.rows[1:]] == [(" ", "Hello {{ who }}"), ("-", "Bye"), ("+", "See you")]


def test_detail_view_keeps_markup_as_text_and_explains_a_missing_prompt() -> None:
    evil = version(2, labels=["latest", "production"], messages=[{"role": "user", "content": "<script>x</script>"}])
    page = PromptPage("support/answer", WHEN, WHEN, WHEN, summary(), [evil, version(1)], {})
    view = present.detail_view(page)
    assert view.found and view.contents["2"]["messages"][0]["content"] == "<script>x</script>"
    assert view.labels == [{"label": "production", "version": "v2"}, {"label": "staging", "version": "v3"}]
    assert view.options[0] == {"value": "2", "label": "v2 · latest, production"}
    assert view.label_names == ["production", "staging"]
    assert view.contents["2"]["title"] == "Version 2 (latest, production)"
    gone = present.detail_view(PromptPage("nope", WHEN, WHEN, WHEN, error="No prompt is named 'nope'."))
    assert not gone.found and gone.error == "No prompt is named 'nope'." and gone.title == "nope"


def test_the_editor_reads_variables_settings_and_labels() -> None:
    msgs = [{"role": "system", "content": "Hi {{ name }}, {{ 1 }} {{name}}"}, {"role": "user", "content": "{{ q }}"}]
    assert present.detected_variables("chat", msgs, "") == ["name", "q"]
    assert present.detected_variables("text", msgs, "{{ b }} {{ a }} {{ b }}") == ["b", "a"]
    assert present.parse_config("  ") is None
    assert present.parse_config('{"temperature": 0.5}') == {"temperature": 0.5}
    with pytest.raises(PromptError, match=r"not valid JSON \(Expecting .* line 1, column"):
        present.parse_config("{temperature: 0.5}")
    assert present.parse_labels(" staging, production  staging,,") == ["staging", "production"]
    form = {"role_0": "developer", "content_1": "typed last"}
    assert present.form_messages(form, msgs) == [
        {"role": "developer", "content": msgs[0]["content"]},
        {"role": "user", "content": "typed last"},
    ]
