"""Console roles, lowest to highest; every check compares ranks (no Reflex import: the API uses it too)."""

from __future__ import annotations

ROLE_RANK = {"viewer": 0, "member": 1, "operator": 2, "admin": 3}
ROLES = tuple(sorted(ROLE_RANK, key=ROLE_RANK.__getitem__, reverse=True))
"""Highest first: ("admin", "operator", "member", "viewer")."""


def has_role_name(role: str | None, minimum: str) -> bool:
    """True when `role` is `minimum` or above; unknown roles have none."""
    return role is not None and ROLE_RANK.get(role, -1) >= ROLE_RANK[minimum]
