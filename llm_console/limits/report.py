"""`GET /v1/limits`: what a key may still do, as its holder sees it (no console account needed).

For the key, its user and its team: every limit, what is used of it now and when it resets, and for
budgets the OK / Warning / Exceeded status (spend in flight included). Each entity names its tier (or
null); a budget's `limit` includes its active temporary increases (`increase_usd`), and `counting_since`
is the time an admin reset its count in the current period (null without a reset).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llm_console.db.queries.spend import share_status
from llm_console.limits.limiter import Limiter
from llm_console.limits.plan import LimitPlan


async def limits_report(limiter: Limiter, plan: LimitPlan) -> dict[str, Any]:
    now, checks, used = await limiter.peek(plan)
    entities: dict[tuple[str, int], dict[str, Any]] = {}
    for e in plan.entities:
        entities[(e.kind, e.id)] = {
            "entity": e.kind,
            "id": e.id,
            "from_default": e.from_default,
            "tier": e.tier,
            "limits": {},
            "budget_status": None,
        }
    worst = "ok"
    for check, value in zip(checks, used, strict=True):
        entry = entities[(check.entity, check.entity_id)]
        item: dict[str, Any] = {
            "limit": check.limit,
            "used": round(value, 9) if check.kind == "b" else int(value),
            "remaining": max(0.0, round(check.limit - value, 9))
            if check.kind == "b"
            else max(0, int(check.limit - value)),
            # A rolling minute has no reset time; a day or month resets at its end.
            "period": PERIODS[check.name],
            "resets_in_s": None if check.kind == "w" else round(max(0.0, check.expire_at - now), 3),
        }
        if check.kind == "b":
            limits = plan.entity(check.entity, check.entity_id)
            assert limits is not None and check.period is not None
            reset = limits.reset_since(check.name, check.period[0].timestamp())
            item["increase_usd"] = limits.increase(check.name)
            item["counting_since"] = None if reset is None else datetime.fromtimestamp(reset.at, UTC).isoformat()
            item["status"] = share_status(value / check.limit)
            entry["budget_status"] = _worse(entry["budget_status"] or "ok", item["status"])
            worst = _worse(worst, item["status"])
        entry["limits"][check.name] = item
    return {
        "object": "limits",
        "timezone": limiter.tz,
        "budget_status": worst if any(c.kind == "b" for c in checks) else None,
        "data": list(entities.values()),
    }


RANK = {"ok": 0, "warning": 1, "exceeded": 2}
PERIODS = {"rpm": "minute", "tpm": "minute", "rpd": "day", "tpd": "day", "daily_usd": "day", "monthly_usd": "month"}


def _worse(a: str, b: str) -> str:
    return a if RANK[a] >= RANK[b] else b
