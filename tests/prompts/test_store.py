"""Resolving a prompt by name and label or version, its ETag, and the gateway's cache: hits read no database,
misses are shared and remembered briefly, and `invalidate()` drops everything (a lookup in flight included)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from llm_console.db.engine import make_engine
from llm_console.db.migrate import upgrade
from llm_console.prompts.store import PromptCache, PromptNotFound, ResolvedPrompt, VersionNotFound, resolve
from llm_console.prompts.template import render
from llm_console.services.prompts import add_version, create_prompt, set_label


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def two_versions(engine: Engine) -> None:
    create_prompt(
        engine,
        role="operator",
        actor="op",
        name="team/greet",
        kind="chat",
        messages=[{"role": "user", "content": "Hi {{ name }}"}],
        config={"model": "m"},
        labels=["production"],
    )
    add_version(engine, role="member", actor="m", name="team/greet", messages=[{"role": "user", "content": "Yo"}])


def test_resolve_by_default_label_label_latest_and_version(engine: Engine) -> None:
    two_versions(engine)
    default = resolve(engine, "team/greet")
    assert (default.version, default.labels, default.variables, dict(default.config)) == (
        1,
        ("production",),
        ("name",),
        {"model": "m"},
    )
    assert render(default.template, {"name": "Ann"}) == [{"role": "user", "content": "Hi Ann"}]
    assert (default.rendered_chars({"name": "Ann"}), dict(default.uses)) == (len("Hi Ann"), {"name": 1})
    assert resolve(engine, "team/greet", label="production") == default
    latest = resolve(engine, "team/greet", label="latest")
    assert (latest.version, latest.labels, latest.variables) == (2, ("latest",), ())
    assert resolve(engine, "team/greet", version=2) == latest
    assert resolve(engine, "team/greet", label="staging", version=1).version == 1  # a version wins
    with pytest.raises(PromptNotFound):
        resolve(engine, "nope")
    with pytest.raises(VersionNotFound):
        resolve(engine, "team/greet", version=3)
    with pytest.raises(VersionNotFound):
        resolve(engine, "team/greet", label="staging")


def test_the_etag_follows_the_content_and_the_labels_on_the_version(engine: Engine) -> None:
    two_versions(engine)
    v1, v2 = resolve(engine, "team/greet", version=1), resolve(engine, "team/greet", version=2)
    assert v1.etag != v2.etag and v1.etag.startswith('"') and v1.etag.endswith('"') and len(v1.etag) == 34
    assert resolve(engine, "team/greet", version=1).etag == v1.etag  # stable while nothing changes
    set_label(engine, role="member", actor="m", name="team/greet", label="staging", version=1)
    assert resolve(engine, "team/greet", version=1).etag != v1.etag  # a label moved onto it
    set_label(engine, role="operator", actor="op", name="team/greet", label="production", version=2)
    moved = resolve(engine, "team/greet")
    assert (moved.version, moved.labels) == (2, ("latest", "production"))


async def test_hits_read_no_database_until_invalidated(engine: Engine, statements: list[str]) -> None:
    two_versions(engine)
    cache = PromptCache(lambda *key: resolve(engine, *key), ttl=60)
    first = await cache.get("team/greet")
    assert first.version == 1 and statements
    statements.clear()
    for _ in range(20):
        assert await cache.get("team/greet") is first
        assert await cache.get("team/greet", label="production") is first  # the same key: the default label
    assert statements == []
    set_label(engine, role="operator", actor="op", name="team/greet", label="production", version=2)
    assert (await cache.get("team/greet")).version == 1  # still cached: nothing told the cache yet
    cache.invalidate()
    assert (await cache.get("team/greet")).version == 2


async def test_misses_are_remembered_briefly_and_raise_each_time(engine: Engine, statements: list[str]) -> None:
    cache = PromptCache(lambda *key: resolve(engine, *key), ttl=60)
    for _ in range(3):
        with pytest.raises(PromptNotFound):
            await cache.get("later")
    assert len(statements) == 1
    create_prompt(engine, role="member", actor="m", name="later", kind="text", text="Hi", labels=["staging"])
    assert (await cache.get("later", label="staging")).version == 1  # another key: looked up
    with pytest.raises(PromptNotFound):
        await cache.get("later")  # the remembered miss...
    cache.invalidate()  # ...until the cache is dropped, as the gateway does on the creation's audit event
    with pytest.raises(VersionNotFound):
        await cache.get("later")  # there is no "production" label on it


async def test_concurrent_misses_share_one_lookup_and_ttl_zero_keeps_nothing(engine: Engine) -> None:
    two_versions(engine)
    calls: list[tuple[Any, ...]] = []

    def slow(*key: Any) -> ResolvedPrompt:
        calls.append(key)
        threading.Event().wait(0.05)
        return resolve(engine, *key)

    cache = PromptCache(slow, ttl=60)
    got = await asyncio.gather(*(cache.get("team/greet", version=2) for _ in range(10)))
    assert len(calls) == 1 and {r.version for r in got} == {2}
    uncached = PromptCache(slow, ttl=0)
    await uncached.get("team/greet")
    await uncached.get("team/greet")
    assert len(calls) == 3


async def test_a_lookup_running_when_the_cache_is_invalidated_is_not_kept(engine: Engine) -> None:
    two_versions(engine)
    release = threading.Event()
    calls = 0

    def gated(*key: Any) -> ResolvedPrompt:
        nonlocal calls
        calls += 1
        if calls == 1:
            release.wait(5)
        return resolve(engine, *key)

    cache = PromptCache(gated, ttl=60)
    stale = asyncio.ensure_future(cache.get("team/greet"))
    await asyncio.sleep(0.02)
    set_label(engine, role="operator", actor="op", name="team/greet", label="production", version=2)
    cache.invalidate()
    release.set()
    assert (await stale).version in (1, 2)  # whatever it read: it answers its own caller only
    assert (await cache.get("team/greet")).version == 2
    assert calls == 2
