"""Cost arithmetic and defensive reading of OpenAI usage objects."""

from __future__ import annotations

import pytest

from llm_console.gateway.pricing import DEFAULT_PRICES, Price, Usage, cost_usd


def test_cost_of_plain_prompt_and_completion() -> None:
    assert cost_usd(Usage(1_000_000, 1_000_000), Price(3.0, 15.0)) == pytest.approx(18.0)
    assert cost_usd(Usage(1000, 250), Price(2.0, 8.0)) == pytest.approx((1000 * 2.0 + 250 * 8.0) / 1e6)


def test_cached_prompt_tokens_use_the_cached_rate() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=400)
    assert cost_usd(usage, Price(2.0, 8.0, 0.5)) == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6)


def test_cached_tokens_without_a_cached_rate_cost_the_input_rate() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=400)
    assert cost_usd(usage, Price(2.0, 8.0)) == pytest.approx(1000 * 2.0 / 1e6)


def test_cached_tokens_are_capped_at_the_prompt_tokens() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=0, cached_tokens=5000)
    assert cost_usd(usage, Price(2.0, 8.0, 1.0)) == pytest.approx(100 * 1.0 / 1e6)


def test_no_price_costs_nothing() -> None:
    assert cost_usd(Usage(10**6, 10**6, 10), None) == 0.0
    assert cost_usd(Usage(), Price(1.0, 1.0)) == 0.0


def test_default_price_table_matches_public_list_prices() -> None:
    assert DEFAULT_PRICES["gpt-4o-mini"] == Price(0.15, 0.60, 0.075)
    assert cost_usd(Usage(1_000_000, 1_000_000), DEFAULT_PRICES["gpt-4o"]) == pytest.approx(12.5)


def test_usage_from_a_full_openai_object() -> None:
    usage = Usage.from_openai(
        {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "prompt_tokens_details": {"cached_tokens": 4}}
    )
    assert usage == Usage(12, 5, 4)


@pytest.mark.parametrize(
    "junk",
    [
        None,
        "usage",
        42,
        [1, 2],
        {},
        {"prompt_tokens": "12", "completion_tokens": None},
        {"prompt_tokens": -3, "completion_tokens": -1},
        {"prompt_tokens": 1.5, "completion_tokens": float("nan")},
        {"prompt_tokens_details": "x"},
        {"prompt_tokens_details": {"cached_tokens": "many"}},
        {"prompt_tokens_details": None},
    ],
)
def test_usage_from_junk_counts_zero(junk: object) -> None:
    assert Usage.from_openai(junk) == Usage(0, 0, 0)


def test_usage_keeps_valid_fields_next_to_junk() -> None:
    usage = Usage.from_openai(
        {"prompt_tokens": 8, "completion_tokens": "x", "prompt_tokens_details": {"cached_tokens": 3}}
    )
    assert usage == Usage(8, 0, 3)
