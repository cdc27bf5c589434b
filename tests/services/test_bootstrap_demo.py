"""`llm-console run --demo` gives the demo its prompts and tiers once: a second start adds nothing, and a
history seed afterwards reuses the prompts instead of failing on their names."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from llm_console.crypto import SecretBox
from llm_console.db.prompt_tables import Prompt, PromptVersion
from llm_console.db.tier_tables import LimitTier
from llm_console.demo.library import SUPPORT
from llm_console.demo.seed import seed
from llm_console.services.bootstrap import ensure_demo
from llm_console.services.prompts import get_prompt


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (Prompt, PromptVersion, LimitTier)
        )


def test_the_demo_gets_its_prompts_and_tiers_once(engine: Engine, box: SecretBox) -> None:
    ensure_demo(engine, box, upstream_url="http://127.0.0.1:9/v1")
    assert counts(engine) == (2, 3, 3)  # support/answer v1+v2, summarize v1; Free, Team, Enterprise
    summary, versions = get_prompt(engine, SUPPORT)
    assert summary.labels == {"production": 2, "staging": 2}
    assert versions[0].variables == ["company", "question"]
    ensure_demo(engine, box, upstream_url="http://127.0.0.1:9/v1")
    assert counts(engine) == (2, 3, 3)

    seeded = seed(engine, count=500, days=2, now=datetime(2026, 12, 7, 12, tzinfo=UTC))
    assert seeded.requests == 500 and counts(engine) == (2, 3, 3)
