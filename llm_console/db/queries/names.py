"""Display names for the ids the request log and rollups store (small configuration tables, read whole)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from llm_console.db.models import Deployment, Membership, ModelAlias, Provider, Team, User, VirtualKey


@dataclass(frozen=True, slots=True)
class Directory:
    deployments: dict[int, str] = field(default_factory=dict)
    deployment_provider: dict[int, str] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    teams: dict[int, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def name(self, dim: str, value: str) -> str:
        """A readable label for a rollup value of `dim`."""
        if dim in ("all", "alias", "endpoint", "embed_dims"):
            return value or "(none)"
        if dim == "stream":
            return "streaming" if value == "1" else "non-streaming"
        if not value.isdigit():
            return "(none)"
        table = {"deployment": self.deployments, "key": self.keys, "user": self.users, "team": self.teams}.get(dim)
        if table is None:
            return value
        return table.get(int(value), f"#{value} (deleted)")


def scoped_directory(engine: Engine, directory: Directory, team_ids: frozenset[int] | None, user_id: int) -> Directory:
    """`directory` narrowed to what a team-scoped user may see: their teams, the users in them, their keys."""
    if team_ids is None:
        return directory
    with engine.connect() as conn:
        members = {
            r.user_id
            for r in conn.execute(select(Membership.user_id).where(Membership.team_id.in_(sorted(team_ids))))  # type: ignore[attr-defined,call-overload]
        } | {user_id}
        keys = {
            r.id
            for r in conn.execute(
                select(VirtualKey.id).where(  # type: ignore[call-overload]
                    or_(VirtualKey.team_id.in_(sorted(team_ids)), VirtualKey.user_id == user_id)  # type: ignore[union-attr,arg-type]
                )
            )
        }
    return replace(
        directory,
        keys={k: v for k, v in directory.keys.items() if k in keys},
        users={k: v for k, v in directory.users.items() if k in members},
        teams={k: v for k, v in directory.teams.items() if k in team_ids},
    )


def load_directory(engine: Engine) -> Directory:
    with engine.connect() as conn:
        providers = {r.id: r.name for r in conn.execute(select(Provider.id, Provider.name))}  # type: ignore[call-overload]
        deps = conn.execute(select(Deployment.id, Deployment.name, Deployment.provider_id)).all()  # type: ignore[call-overload]
        keys = conn.execute(select(VirtualKey.id, VirtualKey.name, VirtualKey.prefix)).all()  # type: ignore[call-overload]
        users = conn.execute(select(User.id, User.email)).all()  # type: ignore[call-overload]
        teams = conn.execute(select(Team.id, Team.name)).all()  # type: ignore[call-overload]
        aliases = conn.execute(select(ModelAlias.alias).order_by(ModelAlias.alias)).scalars().all()  # type: ignore[call-overload]
    return Directory(
        deployments={d.id: d.name for d in deps},
        deployment_provider={d.id: providers.get(d.provider_id, "?") for d in deps},
        keys={k.id: f"{k.name or 'key'} ({k.prefix}…)" for k in keys},
        users={u.id: u.email for u in users},
        teams={t.id: t.name for t in teams},
        aliases=tuple(aliases),
    )
