"""Fill a migrated database with a month of realistic gateway traffic, for demos and dashboard benchmarks.

Configuration first (providers, deployments, aliases, prices, teams, users, keys, budgets), then `count`
requests over the `days` before `now`, oldest first, written with the log writer's own `write_batch`:
rows, spans and rollups take the gateway's code path, so the rollups match the rows by construction.
The same `seed` and `now` give the same data.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from llm_console.db.engine import make_engine
from llm_console.db.logstore import write_batch
from llm_console.db.models import (
    AliasDeployment,
    Budget,
    Deployment,
    FeedbackScore,
    Membership,
    ModelAlias,
    ModelPrice,
    Provider,
    Team,
    User,
    VirtualKey,
)
from llm_console.db.queries.filters import utc
from llm_console.db.queries.spend import spend_by_entity
from llm_console.db.records import LogRecord, SpanRecord
from llm_console.demo.library import DemoPrompts, add_prompts, add_tiers
from llm_console.demo.traffic import PROMPTS, SYSTEM_PROMPTS
from llm_console.gateway.pricing import Price, Usage, cost_usd

BATCH = 5000
MAX_DAYS = 400
USER_COUNT, KEY_COUNT = 400, 1000
CHAT, EMBED, RERANK = "/v1/chat/completions", "/v1/embeddings", "/v1/rerank"
Progress = Callable[[int, int], None]

PROVIDERS = (  # name, kind, base URL: a self-hosted vLLM pool and three clouds
    ("gpu-cluster", "openai", "http://vllm.gpu-cluster.internal:8000/v1"),
    ("openai", "openai", "https://api.openai.com/v1"),
    ("anthropic", "anthropic", "https://api.anthropic.com"),
    ("azure-eastus", "azure", "https://acme-eastus.openai.azure.com"),
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One alias: where it is served, what it costs, how fast it answers and how much traffic it gets."""

    alias: str
    kind: str  # chat | embed | rerank
    deployments: tuple[tuple[str, str, str, int], ...]  # deployment name, provider, upstream model, weight
    price: Price
    weight: float  # share of people's traffic
    service_weight: float  # share of service keys' traffic (indexers, batch jobs)
    ttfb_ms: float  # median time to the upstream's first byte
    sigma: float = 0.45  # log-normal spread of that time
    tokens_per_s: float = 60.0
    dims: tuple[tuple[int, float], ...] = ()  # embedding sizes and their shares (text-embedding-3 `dimensions`)
    messages_share: float = 0.0  # share of calls through /v1/messages (Anthropic SDK clients)


def _spec(
    alias: str, kind: str, deps: Any, price: Any, weight: float, service: float, ttfb: float, **kw: Any
) -> ModelSpec:
    return ModelSpec(alias, kind, tuple(deps), Price(*price), weight, service, ttfb, **kw)


VLLM, OAI, ANT, AZ = (p[0] for p in PROVIDERS)
MODELS: tuple[ModelSpec, ...] = (
    _spec("llama-3.1-8b", "chat", [("vllm-llama-8b", VLLM, "meta-llama/Llama-3.1-8B-Instruct", 1)], (0.05, 0.08),
          18, 6, 55, tokens_per_s=95),
    _spec("llama-3.3-70b", "chat", [("vllm-llama-70b", VLLM, "meta-llama/Llama-3.3-70B-Instruct", 1)], (0.35, 0.4),
          10, 2, 170, tokens_per_s=32),
    _spec("qwen2.5-coder-32b", "chat", [("vllm-qwen-coder", VLLM, "Qwen/Qwen2.5-Coder-32B-Instruct", 1)], (0.2, 0.2),
          7, 0, 120, tokens_per_s=45),
    _spec("gpt-4o", "chat", [("openai-gpt-4o", OAI, "gpt-4o-2024-08-06", 2), ("azure-gpt-4o", AZ, "gpt-4o", 1)],
          (2.5, 10.0, 1.25), 14, 3, 420, sigma=0.55, tokens_per_s=80),
    _spec("gpt-4o-mini", "chat", [("openai-gpt-4o-mini", OAI, "gpt-4o-mini-2024-07-18", 1)], (0.15, 0.6, 0.075),
          20, 8, 330, sigma=0.5, tokens_per_s=110),
    _spec("o3-mini", "chat", [("azure-o3-mini", AZ, "o3-mini", 1)], (1.1, 4.4, 0.55), 2, 0, 2400, sigma=0.7,
          tokens_per_s=150),
    _spec("claude-sonnet", "chat", [("anthropic-sonnet", ANT, "claude-sonnet-4-20250514", 1)], (3.0, 15.0, 0.3),
          9, 1, 680, sigma=0.5, tokens_per_s=60, messages_share=0.4),
    _spec("claude-haiku", "chat", [("anthropic-haiku", ANT, "claude-3-5-haiku-20241022", 1)], (0.8, 4.0, 0.08),
          6, 3, 430, sigma=0.5, tokens_per_s=120, messages_share=0.4),
    _spec("bge-small-en", "embed", [("vllm-bge-small", VLLM, "BAAI/bge-small-en-v1.5", 1)], (0.01, 0.0), 5, 30, 14,
          sigma=0.5, dims=((384, 1.0),)),
    _spec("text-embedding-3-small", "embed", [("openai-te3-small", OAI, "text-embedding-3-small", 1)], (0.02, 0.0),
          6, 25, 170, sigma=0.5, dims=((1536, 0.8), (768, 0.2))),
    _spec("text-embedding-3-large", "embed", [("azure-te3-large", AZ, "text-embedding-3-large", 1)], (0.13, 0.0),
          2, 12, 240, sigma=0.5, dims=((3072, 0.7), (1024, 0.3))),
    _spec("bge-reranker", "rerank", [("vllm-bge-reranker", VLLM, "BAAI/bge-reranker-v2-m3", 1)], (0.02, 0.0), 1, 10,
          45, sigma=0.5),
)  # fmt: skip
UNKNOWN_ALIASES = ("gpt-5", "claude-opus", "llama-4-maverick", "gpt4o")
END_USERS = 600  # the applications' own users, named in the calls (X-LLMC-User / `user`)
TAGS = ("prod", "prod", "prod", "beta", "checkout", "support", "search")
FEEDBACK_SHARE = 0.03  # of successful app chat calls get a score
PROMPT_SHARE = 0.3  # of app chat calls are rendered from the support prompt (a version per its production label)
# Mean helpfulness (1-5) each chat model earns in the demo: close enough between some that a cheaper model
# is a fair recommendation, far enough for others that it is not.
SCORE_LEVEL = {
    "llama-3.1-8b": 3.4, "llama-3.3-70b": 4.0, "qwen2.5-coder-32b": 3.9, "gpt-4o": 4.2, "gpt-4o-mini": 4.1,
    "o3-mini": 4.3, "claude-sonnet": 4.4, "claude-haiku": 4.0,
}  # fmt: skip
TEAMS = (
    "search", "recommendations", "payments", "fraud", "support-bots", "docs", "platform", "data-eng", "ml-research",
    "growth", "mobile", "web", "security", "legal-ops", "finance", "hr-tools", "sales-assist", "marketing",
    "analytics", "infra", "sre", "devex", "qa", "localization", "content", "ads", "pricing", "logistics",
    "catalog", "checkout", "identity", "notifications", "maps", "voice", "vision", "labs", "partners",
    "compliance", "education", "internal-tools",
)  # fmt: skip
FIRST = ("ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jia", "kofi", "lena", "mateo",
         "nora", "omar", "priya", "quinn", "rosa", "sven", "tara", "uma", "viktor", "wen", "yusuf", "zoe")  # fmt: skip
LAST = ("adams", "baker", "costa", "dubois", "evans", "fischer", "garcia", "haddad", "ito", "jensen", "kim",
        "lopez", "moreau", "nakamura", "okafor", "petrov", "rossi", "singh", "tanaka", "varga")  # fmt: skip
KEY_NAMES = ("laptop", "notebook", "ci", "staging", "prod", "eval-harness", "cli", "ide-plugin")
SERVICE_KEY_NAMES = ("rag-indexer", "support-bot prod", "nightly-batch", "search-reranker", "doc-summariser")
ANSWERS = (
    "Use `reversed(items)` or slicing, `items[::-1]`; both leave the original list untouched.",
    "TCP gives ordered, reliable delivery over a connection; UDP sends independent datagrams with no guarantees.",
    "Thanks for the invitation. Unfortunately I can't make it on Friday; could we find another slot next week?",
    "Binary search is O(log n): every comparison halves the range that can still hold the target.",
    "A readiness probe tells Kubernetes when a pod may receive traffic; failing it removes the pod from Services.",
    "Return 429 Too Many Requests, with a Retry-After header saying when the client may try again.",
    "A process has its own address space; threads share their process's memory and are cheaper to switch.",
)
CHUNKS = (
    "Quarterly revenue grew 12% on subscription renewals.",
    "Reset your password from the account page.",
    "The API returns paginated results with a next cursor.",
    "Shipping to EU countries takes 3-5 days.",
)


class _Failure(NamedTuple):
    share: float  # of all requests
    status_code: int
    error_type: str
    upstream_status: int  # what the upstream answered; 0: no answer (unreachable, timed out) or no upstream
    upstream_ms: float
    attempts: int
    message: str


FAILURES = (
    _Failure(0.011, 429, "upstream_error", 429, 120, 2, "Rate limit reached for requests. Please try again in 2s."),
    _Failure(0.004, 503, "upstream_error", 503, 300, 2, "The server is overloaded. Please retry later."),
    _Failure(0.003, 502, "upstream_unavailable", 0, 900, 1, "The upstream could not be reached."),
    _Failure(0.0025, 504, "upstream_timeout", 0, 60000, 1, "The upstream did not answer in time."),
    _Failure(0.0015, 500, "upstream_error", 500, 700, 1, "The server had an error while processing your request."),
    _Failure(0.004, 400, "upstream_error", 400, 90, 1, "This model's maximum context length is 128000 tokens."),
    _Failure(0.0015, 404, "model_not_found", 0, 0, 1, "The model does not exist."),
)
OVERLOADED = _Failure(0.0, 503, "upstream_error", 529, 200, 2, "Overloaded")  # the Anthropic outage's answer
FAILURE_CUM = tuple(itertools.accumulate(f.share for f in FAILURES))
INCIDENT_ERROR_SHARE = 0.35  # one 45-minute outage of the Anthropic provider


@dataclass(frozen=True, slots=True)
class SeedSummary:
    requests: int
    spans: int
    errors: int
    incomplete: int
    streams: int
    embeddings: int
    aliases: int
    deployments: int
    teams: int
    users: int
    keys: int
    start: datetime
    end: datetime
    seconds: float

    def line(self) -> str:
        return (
            f"seeded {self.requests:,} requests ({self.errors:,} errors, {self.incomplete:,} incomplete, "
            f"{self.streams:,} streams, {self.embeddings:,} embeddings) and {self.spans:,} spans from "
            f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC over {self.keys:,} keys, "
            f"{self.users:,} users, {self.teams} teams and {self.aliases} aliases in {self.seconds:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class _Key:
    id: int
    user_id: int | None
    team_id: int | None
    service: bool
    ip: str


@dataclass(slots=True)
class _Counts:
    spans: int = 0
    errors: int = 0
    incomplete: int = 0
    streams: int = 0
    embeddings: int = 0


def _row(table: type[SQLModel], **values: Any) -> dict[str, Any]:
    """A full row with the model's own defaults filled in (Core inserts skip Python-side defaults)."""
    return {k: v for k, v in table(**values).model_dump().items() if k != "id" or v is not None}


def _new(conn: Connection, table: type[SQLModel], **values: Any) -> int:
    """Insert one row and return its id."""
    key = conn.execute(insert(table).values(_row(table, **values))).inserted_primary_key
    assert key is not None
    return int(key[0])


def _add_config(engine: Engine, rng: random.Random, now: datetime) -> tuple[dict[str, int], list[_Key]]:
    """Every configuration row; returns deployment ids by name and the keys that send traffic."""
    created = now - timedelta(days=90)
    with engine.begin() as conn:
        if conn.execute(select(Provider.id).where(Provider.name == VLLM)).first():  # type: ignore[call-overload]
            raise ValueError(f"this database already holds the demo seed (a provider named {VLLM!r} exists)")
        providers = {n: _new(conn, Provider, name=n, kind=k, api_base=b, created_at=created) for n, k, b in PROVIDERS}
        deployments: dict[str, int] = {}
        priced = set(conn.execute(select(ModelPrice.model)).scalars())  # type: ignore[call-overload]
        for spec in MODELS:
            alias_id = _new(conn, ModelAlias, alias=spec.alias, created_at=created)
            for dep, provider, model, weight in spec.deployments:
                pid = providers[provider]
                deployments[dep] = _new(conn, Deployment, name=dep, provider_id=pid, model=model, created_at=created)
                conn.execute(
                    insert(AliasDeployment).values(alias_id=alias_id, deployment_id=deployments[dep], weight=weight)
                )
                if model not in priced:
                    priced.add(model)
                    price = {k: getattr(spec.price, k) for k in ("input_per_mtok", "output_per_mtok")}
                    cached = spec.price.cached_input_per_mtok
                    row = _row(ModelPrice, model=model, cached_input_per_mtok=cached, updated_at=created, **price)
                    conn.execute(insert(ModelPrice).values(row))
        team_ids = [_new(conn, Team, name=name, created_at=created) for name in TEAMS]
        people = rng.sample([(f, la) for f in FIRST for la in LAST], USER_COUNT)
        user_ids = [
            _new(conn, User, email=f"{f}.{la}@acme.example", name=f"{f.title()} {la.title()}", created_at=created)
            for f, la in people
        ]
        team_size = [1.0 / (i + 1) ** 0.8 for i in range(len(team_ids))]  # a few big teams, many small ones
        team_of = {u: rng.choices(team_ids, team_size)[0] for u in user_ids}
        conn.execute(insert(Membership), [_row(Membership, user_id=u, team_id=t) for u, t in team_of.items()])
        keys: list[_Key] = []
        for i in range(KEY_COUNT):
            service = i % 8 == 0  # team service accounts: indexers and batch jobs, heavy on embeddings
            user = None if service else rng.choice(user_ids)
            team = rng.choice(team_ids) if user is None else team_of[user]
            secret = f"sk-llmc-{rng.getrandbits(192):048x}"
            revoked = now - timedelta(days=rng.uniform(1, 25)) if rng.random() < 0.03 else None
            key_id = _new(conn, VirtualKey, key_hash=hashlib.sha256(secret.encode()).hexdigest(), prefix=secret[:14],
                          name=rng.choice(SERVICE_KEY_NAMES if service else KEY_NAMES), user_id=user, team_id=team,
                          allowed_aliases=[], scopes=[], revoked_at=revoked,
                          created_at=now - timedelta(days=rng.uniform(35, 90)))  # fmt: skip
            if revoked is None:  # revoked keys stay listed but send nothing
                keys.append(_Key(key_id, user, team, service, f"10.{key_id // 250 % 256}.{key_id % 250}.{i % 7 + 2}"))
    return deployments, keys


def _hour_counts(rng: random.Random, start: datetime, end: datetime, count: int) -> list[tuple[float, float, int]]:
    """(slot start, slot end, requests) per hour: a diurnal curve, quiet weekends, some growth, daily noise."""
    slots: list[tuple[float, float, float]] = []
    at = start.replace(minute=0, second=0, microsecond=0)
    noise: dict[int, float] = {}
    span_s = (end - start).total_seconds()
    while at < end:
        lo, hi = max(at, start), min(at + timedelta(hours=1), end)
        h = at.hour + 0.5
        shape = 0.22 + math.exp(-(((h - 14.5) / 3.6) ** 2)) + 0.45 * math.exp(-(((h - 9.0) / 2.2) ** 2))
        weekday = 0.35 if at.weekday() >= 5 else 1.0
        growth = 1.0 + 0.25 * (lo - start).total_seconds() / span_s
        day = noise.setdefault(at.toordinal(), rng.uniform(0.85, 1.15))
        slots.append((lo.timestamp(), hi.timestamp(), shape * weekday * growth * day * (hi - lo).total_seconds()))
        at += timedelta(hours=1)
    total = sum(w for _, _, w in slots)
    exact = [count * w / total for _, _, w in slots]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(slots)), key=lambda i: counts[i] - exact[i])[: count - sum(counts)]:
        counts[i] += 1  # largest remainders first, so the counts add up to exactly `count`
    return [(lo, hi, n) for (lo, hi, _), n in zip(slots, counts, strict=True)]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class _Traffic:
    """Builds one LogRecord at a time; every draw comes from the one seeded generator."""

    def __init__(
        self,
        rng: random.Random,
        deployments: dict[str, int],
        keys: list[_Key],
        incident: float,
        people: random.Random | None = None,
        prompts: DemoPrompts | None = None,
    ) -> None:
        self.rng = rng
        self.prompts = prompts  # a share of the chat calls is rendered from the support prompt
        self.prompt_rng = random.Random(7)
        # End users, sessions, tags and feedback draw from their own generator, so the calls themselves are
        # the same with or without them.
        self.people = people or random.Random(0)
        self.feedback: list[dict[str, Any]] = []
        self.keys = keys
        zipf = [1.0 / (rank + 1) ** 1.05 for rank in range(len(keys))]  # a few keys send most of the traffic
        rng.shuffle(zipf)
        self.key_cum = list(itertools.accumulate(zipf))
        self.app_cum = list(itertools.accumulate(m.weight for m in MODELS))
        self.service_cum = list(itertools.accumulate(m.service_weight for m in MODELS))
        self.dep_cum = {m.alias: list(itertools.accumulate(d[3] for d in m.deployments)) for m in MODELS}
        self.deployments = deployments
        self.incident = (incident, incident + 45 * 60)
        self.counts = _Counts()

    def pick(self, cum: Sequence[float]) -> int:
        return bisect.bisect_right(cum, self.rng.random() * cum[-1])

    def failure(self, spec: ModelSpec, ts: float) -> _Failure | None:
        r = self.rng.random()
        if spec.deployments[0][1] == ANT and self.incident[0] <= ts < self.incident[1] and r < INCIDENT_ERROR_SHARE:
            return OVERLOADED
        i = bisect.bisect_right(FAILURE_CUM, r)
        return FAILURES[i] if i < len(FAILURES) else None

    def batches(self, hours: list[tuple[float, float, int]]) -> Iterator[list[LogRecord]]:
        """Records oldest first, BATCH at a time."""
        batch: list[LogRecord] = []
        for lo, hi, n in hours:
            for offset in sorted([self.rng.random() for _ in range(n)]):
                batch.append(self.record(lo + (hi - lo) * offset))
                if len(batch) == BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def record(self, ts: float) -> LogRecord:
        rng, c = self.rng, self.counts
        key = self.keys[self.pick(self.key_cum)]
        spec = MODELS[self.pick(self.service_cum if key.service else self.app_cum)]
        dep, _, model, _ = spec.deployments[self.pick(self.dep_cum[spec.alias])]
        endpoint = {"chat": CHAT, "embed": EMBED, "rerank": RERANK}[spec.kind]
        if spec.messages_share and rng.random() < spec.messages_share:
            endpoint = "/v1/messages"
        stream = spec.kind == "chat" and rng.random() < 0.4
        bits = rng.getrandbits(74)  # a UUIDv7 of the request's own time, as new_request_id makes them
        h = f"{(int(ts * 1000) << 80) | (0x7 << 76) | (bits >> 62 << 64) | (0b10 << 62) | (bits & (2**62 - 1)):032x}"
        rec = LogRecord(
            id=f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
            created_at=datetime.fromtimestamp(ts, UTC),
            endpoint=endpoint,
            alias=spec.alias,
            model=model,
            deployment_id=self.deployments[dep],
            key_id=key.id,
            user_id=key.user_id,
            team_id=key.team_id,
            stream=stream,
            client_ip=key.ip,
        )
        auth = round(0.06 + rng.expovariate(8.0), 3)
        rec.spans.append(SpanRecord("auth", 0.0, auth))
        c.streams += stream
        prompt, completion, cached = self.tokens(spec)
        dims = (spec.dims[0][0] if rng.random() < spec.dims[0][1] else spec.dims[-1][0]) if spec.dims else None
        failure = self.failure(spec, ts)
        unknown = failure is not None and failure.status_code == 404  # an alias nobody configured: no route
        if unknown:
            rec.alias, rec.model, rec.deployment_id = rng.choice(UNKNOWN_ALIASES), "", None
        rec.request_body = self.request_body(spec, rec.alias, endpoint, stream, dims)
        if failure is not None and unknown:
            return self.failed(rec, failure, auth)
        route = round(0.02 + rng.expovariate(25.0), 3)
        rec.spans.append(SpanRecord("route", auth, route, attributes={"alias": spec.alias}))
        at = auth + route
        base = {"deployment": dep, "alias": spec.alias}
        retries = failure.attempts - 1 if failure else (1 if rng.random() < 0.008 else 0)
        for attempt in range(1, retries + 1):  # attempts that failed before the last one
            took = round(rng.lognormvariate(math.log(spec.ttfb_ms * 0.4), 0.5), 3)
            status = failure.upstream_status if failure and failure.upstream_status else rng.choice((429, 503))
            rec.spans.append(
                SpanRecord("upstream", at, took, "error", {**base, "attempt": attempt, "status_code": status})
            )
            at = round(at + took + rng.uniform(50, 250), 3)
        rec.attempts = retries + 1
        if failure is not None:
            took = round(failure.upstream_ms * (rng.uniform(1.0, 1.001) if failure.status_code == 504 else
                                                rng.lognormvariate(0.0, 0.3)), 3)  # fmt: skip
            attrs: dict[str, Any] = {**base, "attempt": rec.attempts}
            if failure.upstream_status:
                attrs["status_code"] = failure.upstream_status
            else:
                attrs["error"] = failure.error_type.removeprefix("upstream_")
            rec.spans.append(SpanRecord("upstream", at, took, "error", attrs))
            return self.failed(rec, failure, at + took)
        first = rng.lognormvariate(math.log(spec.ttfb_ms), spec.sigma)
        gen_ms = completion / spec.tokens_per_s * 1000 * rng.lognormvariate(0.0, 0.2)
        upstream_ms = round(first if stream else first + gen_ms, 3)  # non-streaming: the first byte is all of it
        ttfb = round(at + upstream_ms, 3)
        latency = round(ttfb + (gen_ms if stream else rng.uniform(0.1, 0.8)), 3)
        attrs = {**base, "attempt": rec.attempts, "status_code": 200, "ttfb_ms": upstream_ms}
        rec.spans.append(SpanRecord("upstream", at, upstream_ms, "ok", attrs))
        if stream and rng.random() < 0.012:  # the client went away, or the upstream broke off, mid-stream
            cut = rng.uniform(0.05, 0.7)
            completion, latency = int(completion * cut), round(ttfb + gen_ms * cut, 3)
            rec.status = "incomplete"
            rec.error_type = "client_disconnected" if rng.random() < 0.8 else "upstream_disconnected"
            c.incomplete += 1
        rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens = prompt, completion, cached
        rec.cost_usd = cost_usd(Usage(prompt, completion, cached), spec.price)
        rec.latency_ms, rec.ttfb_ms = latency, ttfb
        if dims is not None:
            rec.embedding_dims = dims
            c.embeddings += 1
        rec.response_body = self.response_body(spec, rec, int(ts))
        if stream:
            attrs = {"chunks": max(1, completion // 3), "usage_reported": rec.status == "ok"}
            state = "ok" if rec.status == "ok" else "error"
            rec.spans.append(SpanRecord("stream", ttfb, round(latency - ttfb, 3), state, attrs))
        c.spans += len(rec.spans)
        if spec.kind == "chat" and not key.service:
            self.attribute(rec, ts)
        return rec

    def attribute(self, rec: LogRecord, ts: float) -> None:
        """An application's end user (a few hundred, some much busier), a session per user and half hour,
        a tag or two; now and then a score: helpfulness 1-5 (each model has its own level) or thumbs."""
        p = self.people
        n = int(p.paretovariate(1.2)) % END_USERS
        rec.end_user = f"user-{n:04d}"
        rec.session_id = f"{rec.end_user}-{int(ts) // 1800:x}"
        rec.tags = ",".join(sorted({p.choice(TAGS) for _ in range(p.randint(1, 2))}))
        if self.prompts is not None and self.prompt_rng.random() < PROMPT_SHARE:
            rec.prompt_version_id = self.prompts.v1 if ts < self.prompts.promoted_at else self.prompts.v2
        if rec.status == "ok" and p.random() < FEEDBACK_SHARE:
            level = SCORE_LEVEL.get(rec.alias, 3.8)
            common = {"request_id": rec.id, "alias": rec.alias, "deployment_id": rec.deployment_id,
                      "key_id": rec.key_id, "request_at": rec.created_at, "prompt_version_id": rec.prompt_version_id,
                      "created_at": rec.created_at + timedelta(seconds=p.uniform(5, 600))}  # fmt: skip
            if p.random() < 0.7:
                value = float(min(5, max(1, round(p.gauss(level, 0.9)))))
                self.feedback.append({**common, "name": "helpfulness", "value": value, "category": None})
            else:
                up = p.random() < (level - 1) / 4
                self.feedback.append({**common, "name": "thumbs", "value": None, "category": "up" if up else "down"})

    def failed(self, rec: LogRecord, failure: _Failure, at: float) -> LogRecord:
        rec.status, rec.status_code, rec.error_type = "error", failure.status_code, failure.error_type
        code = failure.status_code
        kind = "rate_limit_error" if code == 429 else "server_error" if code >= 500 else "invalid_request_error"
        rec.error_message = _dumps({"error": {"message": failure.message, "type": kind, "code": failure.error_type}})
        rec.latency_ms = round(at + self.rng.uniform(0.1, 0.6), 3)
        self.counts.errors += 1
        self.counts.spans += len(rec.spans)
        return rec

    def tokens(self, spec: ModelSpec) -> tuple[int, int, int]:
        rng = self.rng
        if spec.kind == "embed":
            return max(2, int(rng.lognormvariate(math.log(220), 1.0))), 0, 0
        if spec.kind == "rerank":
            return max(20, int(rng.lognormvariate(math.log(1400), 0.6))), 0, 0
        prompt = min(120_000, max(8, int(rng.lognormvariate(math.log(650), 1.1))))
        completion = min(4096, max(1, int(rng.lognormvariate(math.log(190), 0.8))))
        cached = int(prompt * rng.uniform(0.3, 0.9)) if spec.price.cached_input_per_mtok and rng.random() < 0.3 else 0
        return prompt, completion, cached

    def request_body(self, spec: ModelSpec, alias: str, endpoint: str, stream: bool, dims: int | None) -> str:
        rng = self.rng
        if spec.kind == "embed":
            body: dict[str, Any] = {"model": alias, "input": rng.sample(CHUNKS, rng.randint(1, 3))}
            if dims != spec.dims[0][0]:  # text-embedding-3's `dimensions`: a shorter vector than the model's own
                body["dimensions"] = dims
            return _dumps(body)
        if spec.kind == "rerank":
            return _dumps({"model": alias, "query": rng.choice(PROMPTS), "documents": CHUNKS, "top_n": 3})
        messages = [{"role": "user", "content": rng.choice(PROMPTS)}]
        if rng.random() < 0.4 and endpoint == CHAT:
            messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        body = {"model": alias, "messages": messages, "max_tokens": rng.choice((256, 512, 1024, 4096))}
        if stream:
            body["stream"] = True
            if endpoint == CHAT:
                body["stream_options"] = {"include_usage": True}
        return _dumps(body)

    def response_body(self, spec: ModelSpec, rec: LogRecord, created: int) -> str:
        rng, p, n, cached = self.rng, rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens
        if spec.kind == "embed":  # the log keeps the start of the vector, as the body cap would
            vector = ", ".join(f"{rng.gauss(0, 0.05):.6f}" for _ in range(8))
            return f'{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[{vector}, -0.0'
        if spec.kind == "rerank":
            results = [
                {"index": i, "relevance_score": round(rng.uniform(0.2, 0.99), 4)} for i in rng.sample(range(4), 3)
            ]
            return _dumps(
                {"id": f"rerank-{rng.getrandbits(64):016x}", "results": results, "usage": {"total_tokens": p}}
            )
        text = rng.choice(ANSWERS)
        if rec.endpoint == "/v1/messages":
            usage = {"input_tokens": p - cached, "output_tokens": n, "cache_read_input_tokens": cached}
            if rec.stream:
                delta = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": text[:60]}}
                return "".join(
                    f"event: {e['type']}\ndata: {_dumps(e)}\n\n"
                    for e in ({"type": "message_start", "message": {"model": rec.model}}, delta,
                              {"type": "message_delta", "usage": usage})
                )  # fmt: skip
            message = {"id": f"msg_{rng.getrandbits(96):024x}", "type": "message", "role": "assistant"}
            content = [{"type": "text", "text": text}]
            return _dumps(
                {**message, "model": rec.model, "content": content, "stop_reason": "end_turn", "usage": usage}
            )
        ident = f"chatcmpl-{rng.getrandbits(96):024x}"
        totals: dict[str, Any] = {"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n}
        if cached:
            totals["prompt_tokens_details"] = {"cached_tokens": cached}
        if rec.stream:
            head = f'data: {{"id":"{ident}","object":"chat.completion.chunk","created":{created},"model":"{rec.model}",'
            return (
                f'{head}"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}}}}]}}\n\n'
                f'{head}"choices":[{{"index":0,"delta":{_dumps({"content": text[:60]})}}}]}}\n\n'
                + (f'{head}"choices":[],"usage":{_dumps(totals)}}}\n\ndata: [DONE]\n\n' if rec.status == "ok" else "")
            )  # fmt: skip
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return _dumps({"id": ident, "object": "chat.completion", "created": created, "model": rec.model,
                       "choices": [choice], "usage": totals})  # fmt: skip


def _seeding_engine(engine: Engine) -> tuple[Engine, bool]:
    """A private engine whose connections skip fsync (SQLite) or synchronous commit (PostgreSQL); dispose it."""
    sqlite_db = engine.dialect.name == "sqlite"
    if sqlite_db and engine.url.database in (None, "", ":memory:"):
        return engine, False
    private = make_engine(engine.url.render_as_string(hide_password=False))

    @event.listens_for(private, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if sqlite_db:
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-262144")  # 256 MiB: the request indexes stay in memory
        else:
            cur.execute("SET synchronous_commit TO off")
        cur.close()
        if not sqlite_db:
            dbapi_conn.commit()

    return private, True


def _add_budgets(engine: Engine, now: datetime, tz: str) -> None:
    """Monthly budgets for the biggest spenders, some already past them, so the Spend page shows every state;
    sized on the spend of the budget time zone's day and month, which the pages show."""
    rows = []
    for entity, n in (("team", 8), ("user", 12)):
        top = sorted(spend_by_entity(engine, entity, now, tz=tz), key=lambda s: (-s.month_usd, s.entity_id))[:n]
        for i, s in enumerate(top):
            monthly = round(s.month_usd * (0.8, 1.15, 1.6, 3.0)[i % 4] + 1, 2)
            daily = min(round(s.day_usd * 2.5 + 1, 2), monthly) if i % 3 == 0 else None
            rows.append(dict(entity_type=entity, entity_id=s.entity_id, daily_usd=daily, monthly_usd=monthly))
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(Budget), [_row(Budget, **r, updated_at=now) for r in rows])


def _write_feedback(engine: Engine, rows: list[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as conn:
            conn.execute(
                FeedbackScore.__table__.insert(),  # type: ignore[attr-defined]
                [{**r, "session_id": None, "comment": None, "source": "api", "user_id": None} for r in rows],
            )


def seed(
    engine: Engine,
    *,
    count: int = 1_000_000,
    days: float = 30,
    now: datetime | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    tz: str = "UTC",
) -> SeedSummary:
    """Add the demo configuration and `count` requests over the `days` before `now` to a migrated database.

    `progress(done, count)` is called after every batch; `tz` is LLMC_BUDGET_TIMEZONE, for the budgets.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive whole number, got {count!r}")
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= MAX_DAYS:
        raise ValueError(f"days must be above 0 and at most {MAX_DAYS}, got {days!r}")
    began = time.perf_counter()
    end = utc(now or datetime.now(UTC))
    start = end - timedelta(days=days)
    rng = random.Random(seed)
    writer, private = _seeding_engine(engine)
    try:
        deployments, keys = _add_config(writer, rng, end)
        prompts = add_prompts(writer, start, end)
        people = random.Random(seed * 7919 + 1)
        traffic = _Traffic(rng, deployments, keys, (start + (end - start) * 0.9).timestamp(), people, prompts)
        done = 0
        for batch in traffic.batches(_hour_counts(rng, start, end, count)):
            write_batch(writer, batch)
            _write_feedback(writer, traffic.feedback)
            traffic.feedback.clear()
            done += len(batch)
            if progress is not None:
                progress(done, count)
        _add_budgets(writer, end, tz)
        add_tiers(writer)
    finally:
        if private:
            writer.dispose()
    c = traffic.counts
    return SeedSummary(
        count, c.spans, c.errors, c.incomplete, c.streams, c.embeddings, len(MODELS), len(deployments),
        len(TEAMS), USER_COUNT, KEY_COUNT, start, end, time.perf_counter() - began,
    )  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _count(raw: str) -> int:
    if not raw.replace("_", "").isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {raw!r}")
    return int(raw)


def _days(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"expected days above 0 and at most {MAX_DAYS}, got {raw!r}")
    return int(value) if value.is_integer() else value


def main(argv: list[str] | None = None) -> int:
    """`python -m llm_console.demo.seed --database-url URL [--count N] [--days D] [--seed S]`: migrate, then seed."""
    from llm_console.db.migrate import upgrade

    parser = _Parser(prog="python -m llm_console.demo.seed", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True, help="sqlite:///path/to.db or postgresql://...")
    parser.add_argument("--count", type=_count, default=1_000_000, help="requests to add (default 1,000,000)")
    parser.add_argument("--days", type=_days, default=30, help="days of traffic ending now (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    url: str = args.database_url
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        parser.error(f"--database-url must start with sqlite:/// or postgresql://, got {url[:60]!r}")

    def report(done: int, total: int) -> None:
        print(f"\r{done:,} / {total:,} requests", end="", file=sys.stderr, flush=True)

    try:
        upgrade(url)
        engine = make_engine(url)
        try:
            summary = seed(engine, count=args.count, days=args.days, seed=args.seed, progress=report)
        finally:
            engine.dispose()
    except ValueError as exc:
        print(f"\n{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"\n{parser.prog}: error: database: {detail}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    print(summary.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
