"""`llm-console`: run the console, the gateway alone, migrations and admin tasks."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from llm_console.auth.roles import ROLES
from llm_console.settings import Settings


class CliError(Exception):
    """Printed as one line, exit status 2."""


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CliError(f"invalid setting {where or ''}: {first['msg']}".replace("  ", " ")) from None


def _engine(settings: Settings) -> Engine:
    from llm_console.db.engine import make_engine

    return make_engine(settings.database_url)


def cmd_migrate(args: argparse.Namespace) -> None:
    from llm_console.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    print(f"database is up to date ({_redact_url(settings.database_url)})")


def cmd_create_admin(args: argparse.Namespace) -> None:
    from llm_console.services.users import UserError, create_user

    settings = _settings()
    password = os.environ.get(args.password_env) if args.password_env else None
    if password is None:
        if not sys.stdin.isatty():
            raise CliError("no password: set --password-env VAR or run in a terminal to be prompted")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("passwords do not match")
    try:
        user = create_user(
            _engine(settings), email=args.email, password=password, role=args.role, actor="cli", name=args.name or ""
        )
    except UserError as exc:
        raise CliError(str(exc)) from None
    print(f"created {user.role} {user.email}")


def cmd_add_deployment(args: argparse.Namespace) -> None:
    from llm_console.crypto import SecretBox
    from llm_console.services.deployments import ConfigError, add_deployment

    settings = _settings()
    api_key: str | None = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise CliError(f"environment variable {args.api_key_env} is not set or empty")
    elif args.prompt_api_key:
        api_key = getpass.getpass("Provider API key: ") or None
    try:
        dep = add_deployment(
            _engine(settings),
            SecretBox(settings.resolved_secret_key()),
            alias=args.alias,
            base_url=args.base_url,
            model=args.model,
            kind=args.kind,
            api_key=api_key,
            weight=args.weight,
            actor="cli",
            allow_private=args.allow_private,
            extra_allowlist=settings.upstream_allowlist,
            provider_settings={"api_version": args.api_version} if args.api_version else None,
            max_concurrency=args.max_concurrency,
        )
    except ConfigError as exc:
        hint = " If this network is yours, pass --allow-private." if "allow-list" in str(exc) else ""
        raise CliError(f"{exc}{hint}") from None
    print(f"alias {args.alias} -> deployment {dep.name} (id {dep.id})" + (" with an API key" if api_key else ""))


def cmd_allow_network(args: argparse.Namespace) -> None:
    from llm_console.services.deployments import ConfigError, allow_network

    settings = _settings()
    try:
        row = allow_network(_engine(settings), args.entry, actor="cli", note=args.note or "")
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    print(f"upstream allow-list: {row.entry} allowed (gateways pick it up within their route refresh interval)")


def cmd_route(args: argparse.Namespace) -> None:
    from llm_console.services.deployments import ConfigError, set_route_policy

    settings = _settings()
    timeouts = {
        name: value
        for name, value in (
            ("connect_s", args.connect_timeout),
            ("first_byte_s", args.first_byte_timeout),
            ("idle_s", args.idle_timeout),
            ("total_s", args.total_timeout),
        )
        if value is not None
    }
    fallbacks = [f.strip() for f in args.fallbacks.split(",") if f.strip()] if args.fallbacks is not None else None
    try:
        row = set_route_policy(
            _engine(settings),
            alias=args.alias,
            actor="cli",
            strategy=args.strategy,
            fallbacks=fallbacks,
            retries=args.retries,
            backoff_ms=args.backoff_ms,
            retry_after_cap_s=args.retry_after_cap,
            timeouts=timeouts or None,
        )
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    print(f"alias {row.alias}: strategy {row.strategy}, policy {row.settings}")


def cmd_export_config(args: argparse.Namespace) -> None:
    from llm_console.services.config_io import export_config

    text = export_config(_engine(_settings()))
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"configuration written to {args.output} (API keys are never exported)", file=sys.stderr)


def cmd_import_config(args: argparse.Namespace) -> None:
    from llm_console.crypto import SecretBox
    from llm_console.services.config_io import apply_import, preview_import
    from llm_console.services.config_schema import MAX_BYTES
    from llm_console.services.deployments import ConfigError

    try:
        if args.file == "-":
            text = sys.stdin.read(MAX_BYTES + 1)
        else:
            with open(args.file, encoding="utf-8") as src:
                text = src.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{args.file} is not UTF-8 text") from None
    settings = _settings()
    options = {"litellm": args.litellm, "allow_private": args.allow_private}
    engine, box = _engine(settings), SecretBox(settings.resolved_secret_key())
    try:
        if args.dry_run:
            plan = preview_import(engine, box, text, extra_allowlist=settings.upstream_allowlist, **options)
        else:
            plan = apply_import(engine, box, text, actor="cli", extra_allowlist=settings.upstream_allowlist, **options)
    except ConfigError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        hint = " If these networks are yours, pass --allow-private." if "allow private" in str(exc) else ""
        raise CliError("nothing was imported:\n  " + "\n  ".join(problems) + hint) from None
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for row in plan.rows():
        print(f"{row['action']:<7} {row['kind']:<16} {row['name']}")
        for line in row["changes"].splitlines():
            print(f"        {line}")
    print(f"dry run: {plan.summary()}; nothing was changed" if args.dry_run else f"applied: {plan.summary()}")


def cmd_create_key(args: argparse.Namespace) -> None:
    from llm_console.services.keys import SCOPES, create_key

    scopes = sorted({s.strip() for given in args.scope or [] for s in given.split(",") if s.strip()})
    if unknown := [s for s in scopes if s not in SCOPES]:
        raise CliError(f"unknown scope {unknown[0][:40]!r}: use {', '.join(SCOPES)}")
    settings = _settings()
    expires = datetime.now(UTC) + timedelta(days=args.expires_days) if args.expires_days else None
    aliases = [a.strip() for a in args.models.split(",") if a.strip()] if args.models else []
    minted = create_key(
        _engine(settings), name=args.name, actor="cli", allowed_aliases=aliases, expires_at=expires, scopes=scopes
    )
    print(minted.secret)
    extra = f" with scopes {', '.join(scopes)}" if scopes else ""
    print(f"key {minted.prefix}... (id {minted.id}) created{extra}; it is shown only this once", file=sys.stderr)


def _usd(raw: str | None, name: str) -> float | None:
    """A budget flag: a non-negative amount of USD, or `none` to clear that limit."""
    if raw is None or raw.strip().lower() in ("none", "off", ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise CliError(f"{name} must be an amount of USD or 'none', not {raw[:40]!r}") from None
    return value


def cmd_cleanup(args: argparse.Namespace) -> None:
    from llm_console.db.retention import run_cleanup
    from llm_console.services.retention import policy

    settings = _settings()
    run = run_cleanup(_engine(settings), policy(settings), datetime.now(UTC))
    if run.status != "ok":
        raise CliError(f"cleanup failed: {run.error}")
    print(
        f"removed {run.requests:,} requests, {run.spans:,} spans, {run.rollups:,} rollup rows and "
        f"{run.feedback:,} feedback scores; "
        f"cleared {run.bodies:,} bodies ({run.duration_ms:.0f} ms)"
    )


def cmd_seed(args: argparse.Namespace) -> None:
    from llm_console.db.migrate import upgrade
    from llm_console.demo.seed import seed

    if args.count < 1 or args.days <= 0:
        raise CliError("--count must be at least 1 and --days above 0")
    settings = _settings()
    upgrade(settings.database_url)
    summary = seed(_engine(settings), count=args.count, days=args.days, seed=args.seed, tz=settings.budget_timezone)
    print(summary.line())


def cmd_set_budget(args: argparse.Namespace) -> None:
    from sqlmodel import select

    from llm_console.db.engine import session
    from llm_console.db.models import Team, User
    from llm_console.services.budgets import BudgetError, get_budget, set_budget

    if args.daily is None and args.monthly is None:
        raise CliError("nothing to set: give --daily USD and/or --monthly USD ('none' clears a limit)")
    engine = _engine(_settings())
    entity_type, label = ("user", args.user) if args.user else ("team", args.team) if args.team else ("key", "")
    with session(engine) as s:
        if args.user:
            found = s.exec(select(User.id).where(User.email == args.user.strip().lower())).first()
        elif args.team:
            found = s.exec(select(Team.id).where(Team.name == args.team.strip())).first()
        else:
            found, label = args.key_id, f"id {args.key_id}"
    if found is None:
        raise CliError(f"no {entity_type} {label[:320]!r}")
    current = get_budget(engine, entity_type, found)
    daily = _usd(args.daily, "--daily") if args.daily is not None else current.daily_usd if current else None
    monthly = _usd(args.monthly, "--monthly") if args.monthly is not None else current.monthly_usd if current else None
    try:
        stored = set_budget(engine, entity_type, found, daily, monthly, actor="cli")
    except BudgetError as exc:
        raise CliError(str(exc)) from None
    if stored is None:
        print(f"{entity_type} {label}: no budget")
    else:
        shown = [f"{n} {'none' if v is None else f'${v:,.2f}'}" for n, v in (("daily", daily), ("monthly", monthly))]
        print(f"{entity_type} {label}: budget {', '.join(shown)}")


def cmd_set_limits(args: argparse.Namespace) -> None:
    from llm_console.db.engine import session
    from llm_console.db.models import RateLimit
    from llm_console.services.limits_admin import LimitsError, RateLimits, find_entity, put_limits

    given = {n: getattr(args, n) for n in ("rpm", "tpm", "rpd", "tpd") if getattr(args, n) is not None}
    if not given:
        raise CliError("nothing to set: give --rpm, --tpm, --rpd and/or --tpd ('none' clears a limit)")
    values: dict[str, int | None] = {}
    for name, raw in given.items():
        if raw.strip().lower() in ("none", "off", ""):
            values[name] = None
        elif raw.strip().isdigit() and len(raw.strip()) <= 15:
            values[name] = int(raw)
        else:
            raise CliError(f"--{name} must be a whole number or 'none', not {raw[:40]!r}")
    entity_type, name = (
        ("default", "")
        if args.default
        else ("user", args.user)
        if args.user
        else ("team", args.team)
        if args.team
        else ("key", args.key)
    )
    engine = _engine(_settings())
    try:
        with session(engine) as s:
            ref = find_entity(s, entity_type, name)
            current = RateLimits.of(s.get(RateLimit, (ref.entity_type, ref.entity_id)))
            merged = RateLimits(**{**current.as_dict(), **values})
            put_limits(s, ref.entity_type, ref.entity_id, merged, actor="cli")
            s.commit()
    except LimitsError as exc:
        raise CliError(str(exc)) from None
    shown = ", ".join(f"{n.upper()} {'none' if v is None else f'{v:,}'}" for n, v in merged.as_dict().items())
    print(f"{ref.label}: {shown}")


def cmd_gateway(args: argparse.Namespace) -> None:
    from llm_console.gateway.serve import serve_gateway

    settings = _settings()
    if args.migrate:
        from llm_console.db.migrate import upgrade

        upgrade(settings.database_url)
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    serve_gateway(settings, host=args.host, port=args.port, workers=args.workers)


def cmd_demo_traffic(args: argparse.Namespace) -> None:
    from llm_console.demo import traffic

    argv = ["--base-url", args.base_url, "--rate", str(args.rate)]
    if args.count:
        argv += ["--count", str(args.count)]
    if args.models:
        argv += ["--models", args.models]
    if not os.environ.get("LLMC_DEMO_API_KEY"):
        raise CliError("set LLMC_DEMO_API_KEY to a gateway key (see `llm-console create-key`)")
    traffic.main(argv)


def cmd_run(args: argparse.Namespace) -> None:
    from llm_console.launcher import run_console

    run_console(_settings(), demo=args.demo, port=args.port)


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llm-console", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=fn)
        return sp

    sp = add("run", cmd_run, "Migrate, then serve the console and the gateway together on one port.")
    sp.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="also start the upstream simulator and gentle demo traffic (or LLMC_DEMO=1)",
    )
    sp.add_argument("--port", type=int, default=None, help="port for console and gateway (default LLMC_PORT, 3000)")

    sp = add("gateway", cmd_gateway, "Serve only the gateway API (production traffic, many workers).")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=4000)
    sp.add_argument("--workers", type=int, default=1)
    sp.add_argument("--migrate", action="store_true", help="run migrations before starting")

    add("migrate", cmd_migrate, "Apply database migrations (Alembic) up to the latest.")

    sp = add("create-admin", cmd_create_admin, "Create a local console user (admin by default).")
    sp.add_argument("email")
    sp.add_argument("--name")
    sp.add_argument("--role", default="admin", choices=ROLES)
    sp.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")

    sp = add("add-deployment", cmd_add_deployment, "Route a model alias to an OpenAI-compatible deployment.")
    sp.add_argument("alias", help="the model name clients will ask for")
    sp.add_argument("base_url", help="e.g. http://10.0.0.5:8000/v1")
    sp.add_argument("--model", help="the upstream's model name (default: the alias)")
    sp.add_argument(
        "--kind",
        default="openai",
        choices=["openai", "anthropic", "azure"],
        help="openai: any OpenAI-compatible server (vLLM, OpenAI, LiteLLM, ...); anthropic; azure (Azure OpenAI, "
        "--model is the Azure deployment name)",
    )
    sp.add_argument("--api-version", help="Azure OpenAI api-version (default 2024-10-21)")
    sp.add_argument("--weight", type=int, default=1)
    sp.add_argument("--max-concurrency", type=int, help="cap on this deployment's requests in flight")
    sp.add_argument(
        "--allow-private",
        action="store_true",
        help="the URL is on a private network or loopback that you own: add its host to the upstream allow-list",
    )
    key = sp.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", metavar="VAR", help="read the provider API key from this environment variable")
    key.add_argument("--prompt-api-key", action="store_true", help="prompt for the provider API key")

    sp = add("allow-network", cmd_allow_network, "Add a CIDR, address or host to the upstream (SSRF) allow-list.")
    sp.add_argument("entry", help="e.g. 10.0.0.0/8, 192.168.1.20, vllm.internal or *.svc.cluster.local")
    sp.add_argument("--note", help="why (kept in the audit log)")

    sp = add("route", cmd_route, "Set an alias's routing strategy, fallbacks, retries and timeouts.")
    sp.add_argument("alias")
    sp.add_argument("--strategy", choices=["weighted", "least_busy", "lowest_latency", "lowest_cost", "engine_aware"])
    sp.add_argument("--fallbacks", help="comma-separated aliases tried in order when this one fails ('' clears)")
    sp.add_argument("--retries", type=int, help="retries before the first byte (default LLMC_RETRY_ATTEMPTS)")
    sp.add_argument("--backoff-ms", type=float)
    sp.add_argument("--retry-after-cap", type=float, metavar="S", help="longest upstream Retry-After waited for")
    sp.add_argument("--connect-timeout", type=float, metavar="S")
    sp.add_argument("--first-byte-timeout", type=float, metavar="S")
    sp.add_argument("--idle-timeout", type=float, metavar="S")
    sp.add_argument("--total-timeout", type=float, metavar="S")

    sp = add("export-config", cmd_export_config, "Write the whole configuration as YAML (never API keys).")
    sp.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")

    sp = add(
        "import-config",
        cmd_import_config,
        "Import a configuration YAML (or a LiteLLM config.yaml): show the changes, then apply them in one "
        "audited transaction.",
    )
    sp.add_argument("file", metavar="FILE", help="the YAML file ('-' reads standard input)")
    sp.add_argument("--dry-run", action="store_true", help="only show what would change; write nothing")
    sp.add_argument("--litellm", action="store_true", help="FILE is a LiteLLM proxy config.yaml (its model_list)")
    sp.add_argument(
        "--allow-private",
        action="store_true",
        help="base URLs on private networks or loopback are yours: add their hosts to the upstream allow-list",
    )

    sp = add("create-key", cmd_create_key, "Mint a virtual key; it is printed once.")
    sp.add_argument("--name", default="")
    sp.add_argument("--models", help="comma-separated aliases the key may use (default: all)")
    sp.add_argument("--expires-days", type=float)
    sp.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help="extra right, repeatable or comma-separated: analytics (read /api/v1/analytics: an admin key)",
    )

    sp = add("set-budget", cmd_set_budget, "Set a user's, team's or key's spend budget in USD (audited).")
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="EMAIL")
    who.add_argument("--team", metavar="NAME")
    who.add_argument("--key-id", type=int, metavar="N")
    sp.add_argument("--daily", metavar="USD", help="limit per day ('none' clears; unchanged when omitted)")
    sp.add_argument("--monthly", metavar="USD", help="limit per month ('none' clears; unchanged when omitted)")

    sp = add("set-limits", cmd_set_limits, "Set the RPM/TPM/RPD/TPD of a user, team, key or the global default.")
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="EMAIL")
    who.add_argument("--team", metavar="NAME")
    who.add_argument("--key", metavar="PREFIX_OR_NAME")
    who.add_argument("--default", action="store_true", help="the limits of every key without its own")
    for name in ("rpm", "tpm", "rpd", "tpd"):
        sp.add_argument(f"--{name}", metavar="N", help="a whole number ('none' clears; unchanged when omitted)")

    add("cleanup", cmd_cleanup, "Apply the retention policy now (old rows, spans, bodies, rollups).")

    sp = add("seed", cmd_seed, "Fill the database with realistic synthetic request history (demo, benchmarks).")
    sp.add_argument("--count", type=int, default=100_000, help="requests to write")
    sp.add_argument("--days", type=float, default=30.0, help="spread over this many days ending now")
    sp.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")

    sp = add("demo-traffic", cmd_demo_traffic, "Send gentle, realistic traffic through a gateway.")
    sp.add_argument("--base-url", default="http://127.0.0.1:3000")
    sp.add_argument("--rate", type=float, default=0.5, help="requests per second")
    sp.add_argument("--count", type=int, help="stop after this many requests")
    sp.add_argument("--models", help="comma-separated aliases (default: all the key may use)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as exc:
        print(f"llm-console: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one readable line, never a traceback
        print(
            f"llm-console: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
