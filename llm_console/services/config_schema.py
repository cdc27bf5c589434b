"""The config-as-code document (`version: 1`): YAML read safely and within limits, then validated by pydantic
models that refuse unknown fields and wrong types, with every problem named by its path
("aliases[2].deployments[0].weight: must be >= 0")."""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Any, get_args

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from llm_console.gateway.routing import STRATEGIES
from llm_console.gateway.ssrf import AllowList, SSRFError
from llm_console.services.catalog_info import CatalogError, validate_info
from llm_console.services.deployments import PROVIDER_KINDS, ConfigError, validate_base_url
from llm_console.services.routing_rules import ENGINE_FALLBACKS

MAX_BYTES = 1 << 20
MAX_NODES = 200_000
MAX_DEPTH = 40
MAX_PROBLEMS = 20
ENV_PREFIX = "os.environ/"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# The console's own settings (its secret key, database URL) must never be sent upstream as a provider key.
FORBIDDEN_ENV_PREFIXES = ("LLMC_", "REFLEX_")


class ConfigImportError(ConfigError):
    """Why a document cannot be imported: one readable line per problem, each naming where it is."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems[:MAX_PROBLEMS] + (
            [f"... and {len(problems) - MAX_PROBLEMS} more"] if len(problems) > MAX_PROBLEMS else []
        )
        super().__init__("; ".join(self.problems))


def _plain_text(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters (tabs, newlines)")
    return value


def _base_url(value: str) -> str:
    try:
        return validate_base_url(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _api_key(value: str) -> str:
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain spaces, line breaks or control characters")
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if not ENV_NAME.fullmatch(name):
            raise ValueError("an environment reference must look like os.environ/NAME (letters, digits, _)")
        if name.upper().startswith(FORBIDDEN_ENV_PREFIXES):
            raise ValueError(f"os.environ/{name} is one of the console's own settings, never a provider key")
    return value


def _allow_entry(value: str) -> str:
    try:
        AllowList.parse([value])
    except SSRFError as exc:
        raise ValueError(str(exc)) from None
    return value


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"must be one of: {', '.join(allowed)}")
    return value


def _strategy(value: str) -> str:
    return _one_of(value, STRATEGIES)


def _engine_fallback(value: str) -> str:
    """Engine-aware routing's fallback when no engine sample is fresh: any strategy but engine-aware itself."""
    return _one_of(value, ENGINE_FALLBACKS)


def _kind(value: str) -> str:
    return _one_of(value, PROVIDER_KINDS)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Name200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_plain_text)]
Name300 = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_plain_text)]
Seconds = Annotated[float, Field(gt=0, le=86_400), AfterValidator(_finite)]
Usd = Annotated[float, Field(ge=0, le=1e12), AfterValidator(_finite)]
PerMtok = Annotated[float, Field(ge=0, le=1e6), AfterValidator(_finite)]
Count = Annotated[int, Field(ge=0, le=10**12)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class Timeouts(Strict):
    connect_s: Seconds | None = None
    first_byte_s: Seconds | None = None
    idle_s: Seconds | None = None
    total_s: Seconds | None = None


class Options(Strict):
    """Provider or deployment settings, merged (deployment last) into what the provider adapter reads."""

    timeouts: Timeouts | None = None
    api_version: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    anthropic_version: Annotated[str, Field(min_length=1, max_length=40)] | None = None


def _metrics_url(value: str) -> str:
    """Any spelling of off becomes "off"; a URL's host is checked against its provider's when the import is planned."""
    return "off" if value.lower() == "off" else value


def _metrics_off(value: Any) -> Any:
    """YAML reads an unquoted `off` as false: take it as meant."""
    return "off" if value is False else value


class DeploymentOptions(Options):
    """A deployment's settings: the provider's, plus its GPU-hour price and where its engine metrics are."""

    gpu_hour_usd: Annotated[float, Field(ge=0, le=1_000_000), AfterValidator(_finite)] | None = None
    metrics_url: (
        Annotated[
            str, BeforeValidator(_metrics_off), Field(min_length=1, max_length=1000), AfterValidator(_metrics_url)
        ]
        | None
    ) = None


class ProviderDoc(Strict):
    name: Name200
    kind: Annotated[str, AfterValidator(_kind)] = "openai"
    api_base: Annotated[str, Field(max_length=1000), AfterValidator(_base_url)]
    enabled: bool = True
    settings: Options = Options()
    # Import only: a literal key (encrypted at rest) or os.environ/NAME. Export writes has_api_key instead.
    api_key: Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_api_key)] | None = None
    has_api_key: bool | None = None


class DeploymentDoc(Strict):
    name: Name200
    provider: Name200
    model: Name300
    enabled: bool = True
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] | None = None
    settings: DeploymentOptions = DeploymentOptions()


class TargetDoc(Strict):
    deployment: Name200
    weight: Annotated[int, Field(ge=0, le=1_000_000)] = 1


class PolicyDoc(Strict):
    fallbacks: list[Name300] | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    backoff_ms: Annotated[float, Field(ge=0, le=600_000), AfterValidator(_finite)] | None = None
    retry_after_cap_s: Annotated[float, Field(ge=0, le=3600), AfterValidator(_finite)] | None = None
    timeouts: Timeouts | None = None
    engine_fallback: Annotated[str, AfterValidator(_engine_fallback)] | None = None


class AliasDoc(Strict):
    alias: Name300
    strategy: Annotated[str, AfterValidator(_strategy)] = "weighted"
    policy: PolicyDoc = PolicyDoc()
    deployments: list[TargetDoc] = []
    # Catalog metadata, checked field by field by services.catalog_info (the catalog edit form's rules).
    info: dict[str, Any] = {}


class PriceDoc(Strict):
    model: Name300
    input_per_mtok: PerMtok = 0.0
    output_per_mtok: PerMtok = 0.0
    cached_input_per_mtok: PerMtok = 0.0


class TeamDoc(Strict):
    name: Name200
    description: Annotated[str, Field(max_length=1000)] = ""


class BudgetDoc(Strict):
    team: Name200
    daily_usd: Usd | None = None
    monthly_usd: Usd | None = None


class RateLimitDoc(Strict):
    team: Name200
    rpm: Count | None = None
    tpm: Count | None = None
    rpd: Count | None = None
    tpd: Count | None = None


class AllowDoc(Strict):
    entry: Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_allow_entry)]
    note: Annotated[str, Field(max_length=500)] = ""


class ConfigDocument(Strict):
    """A section left out is not managed by the document: import neither changes nor prunes it."""

    version: int
    prune: bool = False
    providers: list[ProviderDoc] | None = None
    deployments: list[DeploymentDoc] | None = None
    aliases: list[AliasDoc] | None = None
    prices: list[PriceDoc] | None = None
    teams: list[TeamDoc] | None = None
    budgets: list[BudgetDoc] | None = None
    rate_limits: list[RateLimitDoc] | None = None
    network_allowlist: list[AllowDoc] | None = None


# The field each section's objects are known by.
KEYS = {
    "providers": "name",
    "deployments": "name",
    "aliases": "alias",
    "prices": "model",
    "teams": "name",
    "budgets": "team",
    "rate_limits": "team",
    "network_allowlist": "entry",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader (no Python objects) that also refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    mark = key_node.start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key_node.value[:60]!r} appears twice in one mapping", mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML text (at most 1 MiB, no Python tags, no alias bombs); errors name the line and column."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigImportError([f"the document is larger than {MAX_BYTES // 1024} KiB"])
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigImportError([f"YAML error at {where}{exc.problem or exc.context or 'cannot parse'}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigImportError([f"YAML error: {str(exc).splitlines()[0][:200]}"]) from None
    except RecursionError:
        raise ConfigImportError([f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)"]) from None
    _check_size(data)
    return data


def _check_size(data: Any) -> None:
    """Aliases let a small text expand into a huge tree: count nodes as validation would see them."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, dict | list):
            return 1
        if depth > MAX_DEPTH:
            raise ConfigImportError([f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)"])
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise ConfigImportError(["the YAML refers to itself (a recursive alias)"])
        active.add(key)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1 + sum(size(child, depth + 1) for child in children)
        active.discard(key)
        if total > MAX_NODES:
            raise ConfigImportError([f"the document expands to more than {MAX_NODES:,} values (aliases?)"])
        memo[key] = total
        return total

    size(data, 0)


def path_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """('aliases', 2, 'weight') -> 'aliases[2].weight'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for a bad mapping key
            out += " (the key)"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__


def _message(err: Any) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, _kind_of(err.get("input"))
    simple = {
        "missing": "is required",
        "string_too_short": "cannot be empty",
        "finite_number": "must be a finite number",
        "string_type": f"must be text, not {got}",
        "int_type": f"must be a whole number, not {got}",
        "int_from_float": "must be a whole number",
        "float_type": f"must be a number, not {got}",
        "bool_type": f"must be true or false, not {got}",
        "list_type": f"must be a list, not {got}",
        "dict_type": f"must be a mapping (key: value), not {got}",
        "model_type": f"must be a mapping (key: value), not {got}",
        "string_pattern_mismatch": "must be lowercase letters, digits and _",
    }
    if kind in simple:
        return simple[kind]
    if kind == "extra_forbidden":
        field = str(err["loc"][-1]) if err["loc"] else ""
        close = difflib.get_close_matches(field, _fields_at(err["loc"]), n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    for name, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if name in ctx and kind.startswith(("greater", "less")):
            bound = ctx[name]
            return f"must be {sign} {bound:g}" if isinstance(bound, int | float) else f"must be {sign} {bound}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    return str(err["msg"]).removeprefix("Value error, ")


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The fields allowed where an unknown one was found (for a "did you mean" hint)."""
    model: type[BaseModel] | None = ConfigDocument
    for part in loc[:-1]:
        if isinstance(part, str) and model is not None:
            info = model.model_fields.get(part)
            model = _model_in(info.annotation) if info is not None else None
    return list(model.model_fields) if model is not None else []


def readable(exc: ValidationError, prefix: str = "") -> list[str]:
    return [f"{path_of([*([prefix] if prefix else []), *e['loc']])}: {_message(e)}" for e in exc.errors()]


def parse_document(data: Any) -> ConfigDocument:
    """Validate parsed YAML as a version-1 document, or raise ConfigImportError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigImportError([f"the document must be a mapping starting with 'version: 1', not {_kind_of(data)}"])
    if "model_list" in data and "version" not in data:
        raise ConfigImportError(["this looks like a LiteLLM config (it has model_list): import it as a LiteLLM config"])
    if data.get("version") != 1:
        raise ConfigImportError(["version: must be 1 (the only document version this console reads)"])
    try:
        doc = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        raise ConfigImportError(readable(exc)) from None
    problems = duplicates(doc) + _check_info(doc)
    if problems:
        raise ConfigImportError(problems)
    return doc


def _check_info(doc: ConfigDocument) -> list[str]:
    """Each alias's catalog metadata, checked and normalised field by field (a null or empty field is dropped)."""
    problems: list[str] = []
    for i, alias in enumerate(doc.aliases or []):
        if "info" not in alias.model_fields_set:
            continue
        clean: dict[str, Any] = {}
        for key, value in alias.info.items():
            try:
                checked = validate_info({key: value})[key]
            except CatalogError as exc:
                problems.append(f"aliases[{i}].info.{key[:40]}: {exc}")
                continue
            if checked is not None:
                clean[key] = checked
        alias.info = clean
    return problems


def duplicates(doc: ConfigDocument) -> list[str]:
    """Two objects with the same name in one section, or one deployment twice under one alias."""
    problems: list[str] = []
    for section, key in KEYS.items():
        first: dict[str, int] = {}
        for i, item in enumerate(getattr(doc, section) or []):
            name = getattr(item, key)
            if name in first:
                problems.append(f"{section}[{i}].{key}: {name[:80]!r} is already used by {section}[{first[name]}]")
            first.setdefault(name, i)
    for i, alias in enumerate(doc.aliases or []):
        seen: set[str] = set()
        for j, target in enumerate(alias.deployments):
            if target.deployment in seen:
                problems.append(f"aliases[{i}].deployments[{j}].deployment: listed twice for this alias")
            seen.add(target.deployment)
    return problems
