"""What a signed-in user may see: admins and operators see the whole organization; members and
viewers see their own teams' keys, logs and spend, and their own.

Every service that lists keys, requests or spend for the console takes a `Scope` and narrows its query
with it, so the rule lives in one place and holds for pages, exports and the analytics API alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.auth.roles import has_role_name
from llm_console.db.engine import session
from llm_console.db.models import Membership
from llm_console.db.queries.names import Directory, load_directory, scoped_directory


@dataclass(frozen=True, slots=True)
class Scope:
    user_id: int
    role: str
    team_ids: frozenset[int] | None  # None: every team (operator and admin)
    # Teams whose keys this user may manage: where their team role is member or above (a team viewer only
    # reads). None: the same as `team_ids`.
    managed_team_ids: frozenset[int] | None = None

    @property
    def org_wide(self) -> bool:
        return self.team_ids is None

    def sees_team(self, team_id: int | None) -> bool:
        return self.team_ids is None or (team_id is not None and team_id in self.team_ids)

    def manages_team(self, team_id: int | None) -> bool:
        """Whether this user may act for `team_id` (create, rotate, revoke its keys): org-wide, or member of it."""
        if self.team_ids is None:
            return True
        managed = self.managed_team_ids if self.managed_team_ids is not None else self.team_ids
        return team_id is not None and team_id in managed

    def sees(self, *, team_id: int | None, user_id: int | None) -> bool:
        """A row owned by `team_id` and/or `user_id` is visible: org-wide, one of my teams, or mine."""
        return self.sees_team(team_id) or (user_id is not None and user_id == self.user_id)


ORG_WIDE_ROLE = "operator"


def team_roles_of(engine: Engine, user_id: int) -> dict[int, str]:
    """The user's teams and their role in each."""
    with session(engine) as s:
        rows = s.exec(select(Membership.team_id, Membership.role).where(Membership.user_id == user_id))
        return {team_id: role for team_id, role in rows}


def scope_for(engine: Engine, *, user_id: int, role: str) -> Scope:
    """The scope of a signed-in user of `role` (operators and admins are org-wide)."""
    if has_role_name(role, ORG_WIDE_ROLE):
        return Scope(user_id=user_id, role=role, team_ids=None)
    teams = team_roles_of(engine, user_id)
    managed = frozenset(t for t, team_role in teams.items() if has_role_name(team_role, "member"))
    return Scope(user_id=user_id, role=role, team_ids=frozenset(teams), managed_team_ids=managed)


def visible_directory(engine: Engine, scope: Scope | None) -> Directory:
    """Display names of keys, users and teams, narrowed to what `scope` may see (all of them when None)."""
    names = load_directory(engine)
    return names if scope is None else scoped_directory(engine, names, scope.team_ids, scope.user_id)
