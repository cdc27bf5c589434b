"""Who an OpenID Connect sign-in is: the account linked to (issuer, subject), a safely linked or new one, and
its role from the IdP's groups.

Accounts are found by (issuer, subject) only. An existing account is linked by email only when the IdP says
the email is verified and that account has no OIDC link yet; never on an unverified email. With a role map,
the IdP owns roles: they are re-applied at every sign-in (highest mapped group wins, else the default role;
"none" refuses). Without one, roles are managed in the console and only new accounts take the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from llm_console.auth.roles import ROLE_RANK
from llm_console.db.engine import session
from llm_console.db.models import User, utcnow
from llm_console.services.audit import record
from llm_console.services.invitations import apply_invitation, pending_invitation_for
from llm_console.services.users import MAX_NAME, UserError, insert_user, normalize_email

NO_ROLE = "none"


class SignInRefused(ValueError):
    """An identity the console will not sign in; `code` is the login page's error key."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class OIDCIdentity:
    """The verified facts of one sign-in, taken from the ID token (and userinfo)."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RolePolicy:
    """The role settings: `LLMC_OIDC_ROLE_MAP`, `_DEFAULT_ROLE`, `_AUTO_PROVISION`."""

    role_map: Mapping[str, str]
    default_role: str = "viewer"
    auto_provision: bool = True


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):  # nested claims such as Keycloak's realm_access.roles
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _email(value: Any) -> str | None:
    try:
        return normalize_email(value) if isinstance(value, str) else None
    except UserError:
        return None


def _display_name(claims: Mapping[str, Any]) -> str:
    for key in ("name", "preferred_username"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return "".join(c for c in value.strip() if c.isprintable())[:MAX_NAME]
    return ""


def identity_from_claims(claims: Mapping[str, Any], *, groups_claim: str) -> OIDCIdentity:
    """The identity in verified claims; `email_verified` counts only when the IdP says true."""
    verified = claims.get("email_verified")
    raw_groups = _claim(claims, groups_claim)
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    groups = tuple(g for g in raw_groups if isinstance(g, str)) if isinstance(raw_groups, list) else ()
    return OIDCIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        email=_email(claims.get("email")),
        email_verified=verified is True or (isinstance(verified, str) and verified.lower() == "true"),
        name=_display_name(claims),
        groups=groups,
    )


def mapped_role(groups: tuple[str, ...], role_map: Mapping[str, str]) -> str | None:
    """The highest role any of the groups maps to, or None when none is mapped."""
    roles = [role_map[g] for g in groups if role_map.get(g) in ROLE_RANK]
    return max(roles, key=ROLE_RANK.__getitem__) if roles else None


def _role_for(identity: OIDCIdentity, policy: RolePolicy, current: str | None) -> str:
    role = mapped_role(identity.groups, policy.role_map)
    if role is None:
        # Without a role map the console owns roles: a known account keeps its own.
        role = current if current is not None and not policy.role_map else policy.default_role
    if role == NO_ROLE:
        raise SignInRefused("oidc_no_role", f"none of {len(identity.groups)} groups maps to a role")
    return role


def _actor(identity: OIDCIdentity) -> str:
    return f"oidc:{identity.email or identity.subject}"[:320]


def _check_may_sign_in(user: User) -> None:
    if user.kind != "person":
        raise SignInRefused("oidc_service", f"user {user.id} is a service account")
    if not user.is_active:
        raise SignInRefused("oidc_inactive", f"user {user.id} is disabled")


def _link(s: Session, user: User, identity: OIDCIdentity) -> None:
    user.oidc_issuer, user.oidc_subject = identity.issuer, identity.subject
    s.add(user)
    record(
        s,
        actor=_actor(identity),
        action="user.oidc_link",
        target_type="user",
        target_id=str(user.id),
        after={"email": user.email, "oidc_issuer": identity.issuer, "oidc_subject": identity.subject},
    )


def _find_or_link(s: Session, identity: OIDCIdentity, policy: RolePolicy) -> User:
    user = s.exec(
        select(User).where(User.oidc_issuer == identity.issuer, User.oidc_subject == identity.subject)
    ).first()
    if user is not None:
        return user
    same_email = s.exec(select(User).where(User.email == identity.email)).first() if identity.email else None
    if same_email is not None:
        if not identity.email_verified or same_email.oidc_subject is not None:
            raise SignInRefused(
                "oidc_unlinked", f"user {same_email.id} has this email but the IdP did not verify it or it is linked"
            )
        _check_may_sign_in(same_email)
        _link(s, same_email, identity)
        return same_email
    # An invitation is addressed to an email, so only an email the IdP verified may take it up.
    invited = (
        pending_invitation_for(s.get_bind(), identity.email)  # type: ignore[arg-type]
        if identity.email and identity.email_verified
        else None
    )
    if not policy.auto_provision and invited is None:
        raise SignInRefused("oidc_no_account", "no account for this identity and auto-provisioning is off")
    if identity.email is None:
        raise SignInRefused("oidc_no_email", "the IdP sent no usable email address to create the account with")
    role = _role_for(identity, policy, None) if invited is None else mapped_role(identity.groups, policy.role_map)
    role = role or (invited.role if invited is not None else policy.default_role)
    try:
        actor = _actor(identity)
        user = insert_user(s, email=identity.email, password=None, role=role, actor=actor, name=identity.name)
    except UserError as exc:
        raise SignInRefused("oidc_failed", f"the account could not be created: {exc}") from exc
    _link(s, user, identity)
    if invited is not None and user.id is not None:
        apply_invitation(s, invited, user_id=user.id, actor=actor)
    return user


def sign_in(engine: Engine, identity: OIDCIdentity, *, policy: RolePolicy) -> User:
    """The account this verified identity signs in as, its role re-applied and last_login_at set."""
    for attempt in (1, 2):
        try:
            return _sign_in_once(engine, identity, policy)
        except IntegrityError:
            if attempt == 2:  # a concurrent first sign-in won the race twice: give up readably
                raise SignInRefused("oidc_failed", "the account changed during sign-in") from None
    raise AssertionError("unreachable")


def _sign_in_once(engine: Engine, identity: OIDCIdentity, policy: RolePolicy) -> User:
    with session(engine) as s:
        user = _find_or_link(s, identity, policy)
        _check_may_sign_in(user)
        role = _role_for(identity, policy, user.role)
        if role != user.role:
            record(
                s,
                actor=_actor(identity),
                action="user.role",
                target_type="user",
                target_id=str(user.id),
                before={"email": user.email, "role": user.role},
                after={"email": user.email, "role": role, "source": "oidc groups"},
            )
            user.role = role
        if identity.name and identity.name != user.name:
            user.name = identity.name
        user.last_login_at = utcnow()
        s.add(user)
        s.commit()
        s.refresh(user)
        return user
