"""Costs & budgets page values, and the CSV / JSON exports of its breakdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_console.presenters.common import count, money
from llm_console.services.costs import DIMENSIONS, TOP, CostsData, MonthToDate
from llm_console.services.gpu_cost import ASSUMED, DeploymentGpuCost, GpuAllocation, GpuCostReport

EXPORT_COLUMNS = ("dimension", "name", "id", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "share")
STATUS_LABEL = {"none": "No budget", "ok": "OK", "warning": "Warning", "exceeded": "Exceeded"}
EN_DASH = "\u2013"  # the interval's separator


@dataclass(slots=True)
class CostsView:
    cards: list[dict[str, str]] = field(default_factory=list)
    breakdowns: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    trend: list[dict[str, float | str]] = field(default_factory=list)
    budget: dict[str, str] = field(default_factory=dict)
    budget_pct: int = 0
    forecast: dict[str, str] = field(default_factory=dict)
    export: list[dict[str, Any]] = field(default_factory=list)
    as_of: str = ""
    gpu_summary: dict[str, str] = field(default_factory=dict)
    gpu_deployments: list[dict[str, str]] = field(default_factory=list)
    gpu_keys: list[dict[str, str]] = field(default_factory=list)
    gpu_teams: list[dict[str, str]] = field(default_factory=list)


BASIS_WORDS = {"tokens": "tokens (prompt + completion)", "busy_time": "busy time (summed request latency)"}


def share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def budget_view(m: MonthToDate) -> tuple[dict[str, str], int]:
    """Month to date against the budget: texts, and the bar's value (0-100)."""
    month = m.month.strftime("%B %Y")
    if m.budget_usd <= 0:
        return {
            "spent": money(m.spent_usd),
            "of": f"spent in {month} · no budget set",
            "pct": "",
            "status": "none",
            "label": STATUS_LABEL["none"],
            "hint": "Set LLMC_MONTHLY_BUDGET_USD to track spend against a monthly budget.",
            "aria": f"{money(m.spent_usd)} spent in {month}, no budget set",
        }, 0
    pct = share(m.spent_usd, m.budget_usd) * 100
    return {
        "spent": money(m.spent_usd),
        "of": f"of {money(m.budget_usd)} budget in {month}",
        "pct": f"{pct:.0f}%",
        "status": m.status,
        "label": STATUS_LABEL[m.status],
        "hint": f"{money(max(0.0, m.budget_usd - m.spent_usd))} left this month",
        "aria": f"Month to date: {money(m.spent_usd)} of {money(m.budget_usd)} ({pct:.0f}%)",
    }, min(100, round(pct))


def forecast_view(m: MonthToDate) -> dict[str, str]:
    f = m.forecast
    if f is None:
        return {
            "text": "Not enough history yet",
            "detail": "A forecast needs two complete days with spend.",
            "warn": "",
        }
    method = "linear trend" if f.method == "trend" else "average day"
    warn = ""
    if m.budget_usd > 0 and f.expected_usd > m.budget_usd:
        warn = f"Expected to exceed the {money(m.budget_usd)} budget."
    elif m.budget_usd > 0 and f.high_usd > m.budget_usd:
        warn = f"May exceed the {money(m.budget_usd)} budget."
    return {
        "text": f"forecast {money(f.expected_usd)} (95%: {money(f.low_usd)} {EN_DASH} {money(f.high_usd)})",
        "detail": (
            f"{method} of {money(f.daily_usd)}/day ± {money(f.sigma_usd)} over {f.remaining_days:.1f} remaining days,"
            f" fitted on {f.days_fitted} days"
        ),
        "warn": warn,
    }


def _hours(value: float) -> str:
    return f"{value:,.1f} h"


def _gpu_basis(d: DeploymentGpuCost) -> str:
    if d.basis == ASSUMED or d.assumed_hours <= 0:
        return d.basis
    return f"{d.basis}; {_hours(d.assumed_hours)} before the hours-up records kept assumed always on"


def _gpu_note(d: DeploymentGpuCost) -> str:
    if d.idle:
        return "idle (unallocated)"
    if d.unallocated_usd <= 0:
        return ""
    if d.untracked_share > 0:
        return f"{d.untracked_share * 100:.1f}% of its traffic predates per-key rollups (unallocated)"
    return "no usage to share by (unallocated)"


def _gpu_rows(rows: tuple[GpuAllocation, ...]) -> list[dict[str, str]]:
    return [
        {"deployment": a.deployment, "name": a.name, "share": f"{a.share * 100:.1f}%", "cost": money(a.allocated_usd)}
        for a in rows[:TOP]
    ]


def gpu_summary(report: GpuCostReport | None, token_usd: float) -> dict[str, str]:
    """The totals line beside the token-priced spend, and the allocation rule in one sentence."""
    gpu = report.total_usd if report is not None else 0.0
    rule = BASIS_WORDS.get(report.allocation if report is not None else "tokens", "tokens")
    return {
        "totals": f"token-priced spend {money(token_usd)} · GPU-hour cost {money(gpu)}",
        "rule": (
            "A deployment with a GPU-hour price costs that price times its hours up (from container samples,"
            f" else assumed always on); keys and teams share it by their {rule} on it, per whole UTC hour;"
            " a deployment nobody called stays idle (unallocated)."
        ),
        "allocated": (
            f"{money(report.allocated_usd)} allocated · {money(report.unallocated_usd)} unallocated"
            f" ({money(report.idle_usd)} idle)"
            if report is not None
            else ""
        ),
        "empty": (
            ""
            if report is not None and report.deployments
            else "No deployment has a GPU-hour price: set one on a self-hosted deployment in Configuration."
        ),
    }


def gpu_deployment_rows(report: GpuCostReport | None) -> list[dict[str, str]]:
    return [
        {
            "name": d.name,
            "price": f"{money(d.price_per_hour_usd)}/h",
            "hours": _hours(d.up_hours),
            "basis": _gpu_basis(d),
            "cost": money(d.cost_usd),
            "allocated": money(d.allocated_usd),
            "note": _gpu_note(d),
        }
        for d in (report.deployments if report is not None else ())
    ]


def export_rows(data: CostsData) -> list[dict[str, Any]]:
    """The breakdown as plain values: one row per (dimension, value), what the CSV and JSON exports hold."""
    total = data.totals.cost_usd
    return [
        {
            "dimension": dim,
            "name": n.label,
            "id": n.value,
            "requests": n.totals.requests,
            "prompt_tokens": n.totals.prompt_tokens,
            "completion_tokens": n.totals.completion_tokens,
            "cost_usd": round(n.totals.cost_usd, 6),
            "share": round(share(n.totals.cost_usd, total), 4),
        }
        for dim, _ in DIMENSIONS
        for n in data.breakdowns.get(dim, [])
    ]


def costs_view(data: CostsData) -> CostsView:
    t = data.totals
    cards = [
        {"label": "Cost in range", "value": money(t.cost_usd), "hint": f"{money(t.cost_per_request)} per request"},
        {"label": "Requests", "value": count(t.requests), "hint": f"{t.errors:,} errors"},
        {
            "label": "Tokens in / out",
            "value": f"{count(t.prompt_tokens)} / {count(t.completion_tokens)}",
            "hint": f"{count(t.cached_tokens)} cached",
        },
    ]
    breakdowns = {
        dim: [
            {
                "name": n.label,
                "requests": f"{n.totals.requests:,}",
                "tokens": count(n.totals.tokens),
                "cost": money(n.totals.cost_usd),
                "share": f"{share(n.totals.cost_usd, t.cost_usd) * 100:.1f}%",
            }
            for n in data.breakdowns.get(dim, [])
        ]
        for dim, _ in DIMENSIONS
    }
    budget, pct = budget_view(data.month)
    return CostsView(
        cards=cards,
        breakdowns=breakdowns,
        trend=[{"day": d.strftime("%Y-%m-%d"), "cost": round(v, 4)} for d, v in data.daily],
        budget=budget,
        budget_pct=pct,
        forecast=forecast_view(data.month),
        export=export_rows(data),
        as_of=data.as_of.strftime("%H:%M:%S UTC"),
        gpu_summary=gpu_summary(data.gpu, t.cost_usd),
        gpu_deployments=gpu_deployment_rows(data.gpu),
        gpu_keys=_gpu_rows(data.gpu.keys) if data.gpu is not None else [],
        gpu_teams=_gpu_rows(data.gpu.teams) if data.gpu is not None else [],
    )
