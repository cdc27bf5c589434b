"""Which container and which GPUs served a deployment at a given time: the last links of a request's trace.

The request log keeps the deployment; the fleet tables know which container served that deployment
(matched by label or port) and which GPUs its processes held. A container counts for a request when it
was known to the fleet then: first seen before the request (give or take one sampling round) and not
removed before it. With no container tracked (a hosted provider, or the fleet collectors off), the
answer is None and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from llm_console.db.engine import session
from llm_console.db.fleet_tables import FleetContainer, FleetGpu
from llm_console.db.queries.filters import utc

SLACK = timedelta(minutes=2)  # a container first seen shortly after a request was already serving it


@dataclass(frozen=True, slots=True)
class ServedBy:
    container_id: str
    container_name: str
    image: str
    host: str
    gpus: tuple[str, ...]  # "GPU 0 · NVIDIA H100 80GB HBM3 (host)"


def served_by(engine: Engine, deployment_id: int | None, at: datetime) -> ServedBy | None:
    if deployment_id is None:
        return None
    at = utc(at)
    with session(engine) as s:
        rows = s.exec(
            select(FleetContainer)
            .where(col(FleetContainer.deployment_id) == deployment_id)
            .order_by(col(FleetContainer.seen_at).desc())
            .limit(20)
        ).all()
        chosen = None
        for row in rows:
            if utc(row.first_seen) - SLACK > at:
                continue
            if row.removed_at is not None and utc(row.removed_at) < at:
                continue
            chosen = row
            break
        if chosen is None:
            return None
        gpus: list[str] = []
        if chosen.gpu_uuids:
            found = s.exec(select(FleetGpu).where(col(FleetGpu.uuid).in_(chosen.gpu_uuids))).all()
            for gpu in sorted(found, key=lambda g: (g.host, g.index)):
                gpus.append(f"GPU {gpu.index} · {gpu.name}" + (f" ({gpu.host})" if gpu.host else ""))
    return ServedBy(chosen.id, chosen.name, chosen.image, chosen.host, tuple(gpus))
