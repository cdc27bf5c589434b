"""KeyCache: one lookup per TTL, short memory for misses, and junk never reaches the lookup."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import pytest
from starlette.datastructures import Headers

from llm_console.gateway import auth
from llm_console.gateway.auth import NEGATIVE_TTL_S, KeyCache, KeyInfo, bearer_token
from llm_console.gateway.errors import GatewayError
from llm_console.services.keys import hash_key

GOOD = "sk-llmc-" + "g" * 43
INFO = KeyInfo(id=1, user_id=None, team_id=None, allowed_aliases=frozenset(), expires_at=None, revoked=False)


@dataclass
class FakeClock:
    """Stands in for the `time` module inside `llm_console.gateway.auth` only (the event loop keeps the real one)."""

    now: float = 1000.0
    wall: float = field(default_factory=time.time)

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall


@dataclass
class CountingLookup:
    known: dict[str, KeyInfo]
    calls: list[str] = field(default_factory=list)

    def __call__(self, key_hash: str) -> KeyInfo | None:
        self.calls.append(key_hash)
        return self.known.get(key_hash)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(auth, "time", fake)
    return fake


@pytest.fixture
def lookup() -> CountingLookup:
    return CountingLookup({hash_key(GOOD): INFO})


def headers(token: str) -> Headers:
    return Headers({"authorization": f"Bearer {token}"})


async def test_hit_within_ttl_looks_up_once(clock: FakeClock, lookup: CountingLookup) -> None:
    cache = KeyCache(lookup, ttl=10)

    for _ in range(5):
        assert await cache.authenticate(headers(GOOD)) is INFO
        clock.now += 1.9

    assert lookup.calls == [hash_key(GOOD)]


async def test_lookup_again_after_ttl(clock: FakeClock, lookup: CountingLookup) -> None:
    cache = KeyCache(lookup, ttl=10)
    await cache.get(hash_key(GOOD))
    clock.now += 9.99
    await cache.get(hash_key(GOOD))
    assert len(lookup.calls) == 1

    clock.now += 0.02
    await cache.get(hash_key(GOOD))
    assert len(lookup.calls) == 2


async def test_misses_are_remembered_at_most_the_negative_ttl(clock: FakeClock, lookup: CountingLookup) -> None:
    cache = KeyCache(lookup, ttl=60)
    unknown = hash_key("sk-llmc-" + "u" * 43)

    assert await cache.get(unknown) is None
    clock.now += NEGATIVE_TTL_S - 0.01
    assert await cache.get(unknown) is None
    assert len(lookup.calls) == 1

    lookup.known[unknown] = INFO  # the key was just created: it works once the miss expires
    clock.now += 0.02
    assert await cache.get(unknown) is INFO
    assert len(lookup.calls) == 2


async def test_negative_ttl_never_exceeds_the_configured_ttl(clock: FakeClock, lookup: CountingLookup) -> None:
    cache = KeyCache(lookup, ttl=0.5)
    unknown = hash_key("sk-llmc-" + "u" * 43)
    await cache.get(unknown)
    clock.now += 0.51
    await cache.get(unknown)
    assert len(lookup.calls) == 2


async def test_zero_ttl_looks_up_every_time(clock: FakeClock, lookup: CountingLookup) -> None:
    cache = KeyCache(lookup, ttl=0)
    for _ in range(3):
        await cache.authenticate(headers(GOOD))
    assert len(lookup.calls) == 3


async def test_invalidate_forgets_everything(clock: FakeClock, lookup: CountingLookup) -> None:
    cache = KeyCache(lookup, ttl=60)
    await cache.get(hash_key(GOOD))
    cache.invalidate()
    await cache.get(hash_key(GOOD))
    assert len(lookup.calls) == 2


async def test_cache_is_bounded(clock: FakeClock, lookup: CountingLookup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_ENTRIES", 3)
    cache = KeyCache(lookup, ttl=60)
    for i in range(10):
        await cache.get(f"h{i}")
    assert len(cache._entries) <= 3


@pytest.mark.parametrize(
    "token",
    ["", "junk", "' OR 1=1 --", "sk-llmc-short", "sk-llmc-" + "a" * 100, "sk-llmc-" + "é" * 20, "SK-LLMC-" + "a" * 40],
)
async def test_malformed_keys_never_reach_the_lookup(clock: FakeClock, lookup: CountingLookup, token: str) -> None:
    cache = KeyCache(lookup, ttl=60)
    with pytest.raises(GatewayError) as caught:
        await cache.authenticate(Headers({"x-api-key": token}))
    assert caught.value.status == 401
    assert caught.value.type == "authentication_error"
    assert lookup.calls == []


async def test_unknown_revoked_and_expired_keys_are_refused(clock: FakeClock, lookup: CountingLookup) -> None:
    revoked = "sk-llmc-" + "r" * 43
    expired = "sk-llmc-" + "e" * 43
    lookup.known[hash_key(revoked)] = KeyInfo(2, None, None, frozenset(), None, revoked=True)
    lookup.known[hash_key(expired)] = KeyInfo(3, None, None, frozenset(), clock.wall - 1, revoked=False)
    cache = KeyCache(lookup, ttl=60)

    codes = []
    for token in ("sk-llmc-" + "u" * 43, revoked, expired):
        with pytest.raises(GatewayError) as caught:
            await cache.authenticate(headers(token))
        assert caught.value.status == 401
        codes.append(caught.value.code)
    assert codes == ["invalid_api_key", "invalid_api_key", "expired_api_key"]


async def test_expiry_is_checked_on_every_call_even_when_cached(clock: FakeClock, lookup: CountingLookup) -> None:
    lookup.known[hash_key(GOOD)] = KeyInfo(1, None, None, frozenset(), clock.wall + 5, revoked=False)
    cache = KeyCache(lookup, ttl=60)
    await cache.authenticate(headers(GOOD))
    clock.wall += 6
    with pytest.raises(GatewayError) as caught:
        await cache.authenticate(headers(GOOD))
    assert caught.value.code == "expired_api_key"
    assert len(lookup.calls) == 1


def test_lookup_receives_the_sha256_not_the_secret() -> None:
    assert hash_key(GOOD) != GOOD
    assert len(hash_key(GOOD)) == 64
    assert GOOD not in hash_key(GOOD)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer   abc  "}, "abc"),
        ({"authorization": "Basic abc", "x-api-key": "k"}, None),
        ({"x-api-key": "k"}, "k"),
        ({}, None),
    ],
)
def test_bearer_token(raw: dict[str, str], expected: str | None) -> None:
    assert bearer_token(Headers(raw)) == expected


def test_key_scope() -> None:
    assert INFO.may_use("anything")
    scoped = KeyInfo(1, None, None, frozenset({"a"}), None, False)
    assert scoped.may_use("a")
    assert not scoped.may_use("b")


async def test_concurrent_misses_for_one_key_share_a_single_lookup(clock: FakeClock) -> None:
    release = threading.Event()
    calls: list[str] = []

    def slow_lookup(key_hash: str) -> KeyInfo | None:
        calls.append(key_hash)
        release.wait(5)
        return INFO

    cache = KeyCache(slow_lookup, ttl=10)
    waiters = [asyncio.create_task(cache.get(hash_key(GOOD))) for _ in range(20)]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters), 5)

    assert results == [INFO] * 20
    assert calls == [hash_key(GOOD)]
