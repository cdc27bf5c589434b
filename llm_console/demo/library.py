"""The demo's prompts and limit tiers, written through the same services an admin uses.

Two prompts: `support/answer` (chat, two versions; version 2 took over `production` a week before the seed's
end, so the Prompts page has a before and after to compare) and `summarize` (text, one version). Three
tiers, Free, Team and Enterprise, with the five biggest teams on Team or Enterprise; seeded history never
hits these limits, and no live demo key is on a tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from llm_console.db.models import Membership
from llm_console.db.prompt_tables import PromptLabel, PromptVersion
from llm_console.services.limits_admin import BudgetLimits, RateLimits
from llm_console.services.prompts import PromptAdminError, add_version, create_prompt, get_prompt, set_label
from llm_console.services.tier_admin import assign_tier, list_tiers, save_tier

ACTOR = "demo-seed"
SUPPORT = "support/answer"
SUPPORT_V1 = [
    {"role": "system", "content": "You are {{company}}'s support assistant. Answer briefly."},
    {"role": "user", "content": "{{question}}"},
]
SUPPORT_V2 = [
    {
        "role": "system",
        "content": "You are {{company}}'s support assistant. Answer in at most three sentences, "
        "cite the help-centre article when there is one, and never promise refunds.",
    },
    {"role": "user", "content": "{{question}}"},
]
TIERS = (  # name, rank, description, rpm, tpm, rpd, tpd, daily USD, monthly USD
    ("Free", 10, "Trial teams and personal projects", 60, 100_000, 5_000, 2_000_000, 5.0, 50.0),
    ("Team", 20, "Production apps of one team", 600, 1_000_000, None, None, 100.0, 2_000.0),
    ("Enterprise", 30, "Org-wide platforms, negotiated", 6_000, 10_000_000, None, None, None, 50_000.0),
)


@dataclass(frozen=True, slots=True)
class DemoPrompts:
    """The `support/answer` versions seeded calls are rendered from, and when version 2 was promoted."""

    v1: int
    v2: int
    promoted_at: float  # epoch seconds


def ensure_prompts(engine: Engine) -> None:
    """The demo prompts, unless `support/answer` already exists (`llm-console run --demo` calls this at every
    start, so the live demo traffic has a prompt to render and the Prompts page has something to show)."""
    try:
        get_prompt(engine, SUPPORT)
    except PromptAdminError:
        _create_prompts(engine)


def _create_prompts(engine: Engine) -> None:
    create_prompt(
        engine, role="admin", actor=ACTOR, name=SUPPORT, kind="chat", description="The help-centre assistant.",
        messages=SUPPORT_V1, config={"temperature": 0.3, "max_tokens": 300}, commit_message="First version",
        labels=["production"],
    )  # fmt: skip
    add_version(
        engine, role="admin", actor=ACTOR, name=SUPPORT, messages=SUPPORT_V2,
        config={"temperature": 0.2, "max_tokens": 200}, commit_message="Shorter answers, cite articles, no refunds",
        labels=["staging"],
    )  # fmt: skip
    set_label(engine, role="admin", actor=ACTOR, name=SUPPORT, label="production", version=2)
    create_prompt(
        engine, role="admin", actor=ACTOR, name="summarize", kind="text", description="Ticket summaries.",
        text="Summarize this ticket for {{audience}} in {{words}} words:\n\n{{ticket}}", commit_message="First version",
        labels=["production"],
    )  # fmt: skip


def add_prompts(engine: Engine, start: datetime, end: datetime) -> DemoPrompts:
    """The demo prompts (created if missing), dated as if written during the seeded month; the support
    prompt's two versions, and when version 2 was promoted to production."""
    ensure_prompts(engine)
    _, versions_newest_first = get_prompt(engine, SUPPORT)
    ids = {v.version: v.id for v in versions_newest_first}
    one, two = ids[1], ids[2]
    promoted = end - timedelta(days=7)
    versions, labels = PromptVersion.__table__, PromptLabel.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for version_id, at in ((one, start), (two, promoted - timedelta(days=2))):
            conn.execute(update(versions).where(versions.c.id == version_id).values(created_at=at))
        conn.execute(update(labels).where(labels.c.version_id == two).values(updated_at=promoted))
    return DemoPrompts(one, two, promoted.timestamp())


def ensure_tiers(engine: Engine) -> dict[str, int]:
    """Free, Team and Enterprise, unless some tier exists already; their ids by name."""
    existing = {t.name: t.id for t in list_tiers(engine)}
    if existing:
        return existing
    ids = {}
    for name, rank, about, rpm, tpm, rpd, tpd, daily, monthly in TIERS:
        view = save_tier(
            engine, role="admin", actor=ACTOR, tier_id=None, name=name, description=about, rank=rank,
            limits=RateLimits(rpm, tpm, rpd, tpd), budget=BudgetLimits(daily, monthly),
        )  # fmt: skip
        ids[name] = view.id
    return ids


def add_tiers(engine: Engine) -> None:
    """The demo tiers; the two biggest teams on Enterprise, the next three on Team."""
    ids = ensure_tiers(engine)
    members = Membership.__table__  # type: ignore[attr-defined]
    biggest_first = (
        select(members.c.team_id)
        .group_by(members.c.team_id)
        .order_by(func.count(members.c.user_id).desc(), members.c.team_id)
        .limit(5)
    )
    with engine.connect() as conn:
        biggest = list(conn.execute(biggest_first).scalars())
    for i, team_id in enumerate(biggest):
        tier = ids["Enterprise"] if i < 2 else ids["Team"]
        assign_tier(engine, role="admin", actor=ACTOR, entity_type="team", entity_id=team_id, tier_id=tier)
