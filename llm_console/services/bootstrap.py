"""First-run work: the bootstrap admin and, in demo mode, the simulator deployment and a demo key."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import VirtualKey, utcnow
from llm_console.demo.library import ensure_prompts, ensure_tiers
from llm_console.services.deployments import add_deployment, set_price
from llm_console.services.keys import create_key
from llm_console.services.users import count_admins, create_user
from llm_console.settings import Settings

DEMO_KEY_NAME = "demo-traffic"
# Realistic self-hosted "prices" so the demo shows spend (GPU time amortised per million tokens).
DEMO_MODELS = {
    "llama-3.1-8b-instruct": (0.10, 0.20),
    "qwen2.5-7b-instruct": (0.08, 0.16),
}


@dataclass(frozen=True, slots=True)
class AdminBootstrap:
    email: str
    password: str | None  # set only when this call generated it


def ensure_admin(engine: Engine, settings: Settings) -> AdminBootstrap | None:
    """Create the first admin when there is none; a generated password is saved under data_dir (0600)."""
    if count_admins(engine) > 0:
        return None
    generated = settings.admin_password is None
    password = secrets.token_urlsafe(12) if generated else settings.admin_password.get_secret_value()  # type: ignore[union-attr]
    create_user(
        engine, email=settings.admin_email, password=password, role="admin", actor="bootstrap", name="Administrator"
    )
    if generated:
        path = settings.data_dir / "initial-admin-password"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
    return AdminBootstrap(settings.admin_email, password if generated else None)


def ensure_demo(engine: Engine, box: SecretBox, *, upstream_url: str) -> str:
    """Route the demo models to the simulator and mint a fresh demo-traffic key (older ones revoked)."""
    for model, (inp, out) in DEMO_MODELS.items():
        add_deployment(engine, box, alias=model, base_url=upstream_url, model=model, actor="demo", allow_private=True)
        set_price(engine, model=model, input_per_mtok=inp, output_per_mtok=out, actor="demo")
    with session(engine) as s:
        for old in s.exec(select(VirtualKey).where(VirtualKey.name == DEMO_KEY_NAME, VirtualKey.revoked_at == None)):  # noqa: E711
            old.revoked_at = utcnow()
            s.add(old)
        s.commit()
    ensure_prompts(engine)  # the demo traffic renders some calls from it; the Prompts page shows them
    ensure_tiers(engine)
    return create_key(engine, name=DEMO_KEY_NAME, actor="demo").secret
