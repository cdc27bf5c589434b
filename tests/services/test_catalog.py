"""Model catalog: effective metadata (set > discovered > guessed), search and sort, validated audited edits,
the compare figures, and display rows that keep names inert and provider secrets out."""

from __future__ import annotations

import types
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.logstore import write_batch
from llm_console.db.models import (
    AliasDeployment,
    AuditEvent,
    Deployment,
    DeploymentHealth,
    ModelAlias,
    ModelPrice,
    Provider,
)
from llm_console.db.records import LogRecord
from llm_console.presenters import catalog as present
from llm_console.services import catalog
from llm_console.services.catalog import CatalogError, compare, get_entry, list_entries, update_info
from llm_console.services.catalog_info import clean_info, hf_url, validate_info

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
PROVIDER_KEY = "sk-live-provider-secret-9f8e7d"


def add_alias(
    engine: Engine,
    box: SecretBox,
    alias: str,
    deps: list[dict[str, Any]],
    info: dict[str, Any] | None = None,
) -> None:
    """An alias routed to deployments; each dep: model, provider, discovered, status, enabled, weight."""
    with session(engine) as s:
        row = ModelAlias(alias=alias, info=info or {})
        s.add(row)
        s.flush()
        for d in deps:
            pname = d.get("provider", "vllm-a")
            provider = s.exec(select(Provider).where(Provider.name == pname)).first()
            if provider is None:
                provider = Provider(
                    name=pname, api_base=f"http://{pname}.internal:8000/v1", api_key_encrypted=box.encrypt(PROVIDER_KEY)
                )
                s.add(provider)
                s.flush()
            dep = Deployment(
                name=f"{d['model']}@{pname}",
                provider_id=provider.id,  # type: ignore[arg-type]
                model=d["model"],
                enabled=d.get("enabled", True),
                discovered=d.get("discovered", {}),
            )
            s.add(dep)
            s.flush()
            s.add(AliasDeployment(alias_id=row.id, deployment_id=dep.id, weight=d.get("weight", 1)))  # type: ignore[arg-type]
            if "status" in d:
                s.add(
                    DeploymentHealth(deployment_id=dep.id, status=d["status"], checked_at=NOW, last_error=d.get("err"))
                )  # type: ignore[arg-type]
        s.commit()


@pytest.fixture
def fleet(engine: Engine, box: SecretBox) -> Engine:
    llama = "meta-llama/Llama-3.1-8B-Instruct"
    found_a = {"max_model_len": 131072, "root": llama, "owned_by": "vllm"}
    add_alias(
        engine,
        box,
        "llama-8b",
        [
            {"model": llama, "discovered": found_a, "status": "available"},
            {"model": llama, "provider": "vllm-b", "discovered": {"max_model_len": 32768}, "status": "error"},
        ],
        {"description": "Fast general chat model", "size": "8B", "quantization": "AWQ int4"},
    )
    add_alias(
        engine,
        box,
        "qwen-72b",
        [{"model": "Qwen/Qwen2.5-72B-Instruct", "provider": "vllm-b", "status": "loading"}],
        {"size": "72B", "context_length": 32000, "type": "llm", "capabilities": {"tools": True, "streaming": True}},
    )
    add_alias(engine, box, "bge-embed", [{"model": "BAAI/bge-m3", "discovered": {"root": "/models/bge-m3"}}])
    add_alias(engine, box, "mystery", [])
    with session(engine) as s:
        s.add(ModelPrice(model="meta-llama/Llama-3.1-8B-Instruct", input_per_mtok=0.1, output_per_mtok=0.2))
        s.commit()
    return engine


def test_effective_metadata_set_wins_over_discovered_and_guesses_say_so(fleet: Engine) -> None:
    llama = get_entry(fleet, "llama-8b", now=NOW)
    assert llama is not None
    assert llama.context_length == 32768 and llama.context_source == "discovered"  # the smallest deployment's
    assert llama.hf_repo == "meta-llama/Llama-3.1-8B-Instruct" and llama.hf_source == "discovered"
    assert (llama.type, llama.type_source) == ("", "")  # no traffic, nothing telling in the name: unknown
    assert (llama.availability, llama.available_count, llama.enabled_count) == ("available", 1, 2)
    assert llama.providers == ("vllm-a", "vllm-b")
    assert llama.models == ("meta-llama/Llama-3.1-8B-Instruct",)
    assert [p.input_per_mtok for p in llama.prices] == [0.1]
    qwen = get_entry(fleet, "qwen-72b", now=NOW)
    assert qwen is not None
    assert (qwen.context_length, qwen.context_source, qwen.type, qwen.type_source) == (32000, "set", "llm", "set")
    assert qwen.capabilities == {"streaming": True, "tools": True, "vision": None, "json_mode": None}
    assert qwen.availability == "loading"
    bge = get_entry(fleet, "bge-embed", now=NOW)
    assert bge is not None
    assert (bge.type, bge.type_source) == ("embedding", "name")
    assert bge.hf_repo == ""  # a local path is not a Hugging Face repo
    assert bge.availability == "unknown"
    mystery = get_entry(fleet, "mystery", now=NOW)
    assert mystery is not None and mystery.availability == "no deployment"
    assert get_entry(fleet, "nope") is None


def record(alias: str, endpoint: str, at: datetime, **kw: Any) -> LogRecord:
    return LogRecord(id=str(uuid.uuid4()), created_at=at, endpoint=endpoint, alias=alias, **kw)


def test_type_guessed_from_traffic(fleet: Engine) -> None:
    at = NOW - timedelta(hours=2)
    write_batch(fleet, [record("llama-8b", "/v1/rerank", at) for _ in range(2)])
    write_batch(fleet, [record("bge-embed", "/v1/chat/completions", at)])
    entries = {e.alias: e for e in list_entries(fleet, now=NOW)}
    assert (entries["llama-8b"].type, entries["llama-8b"].type_source) == ("reranker", "traffic")
    assert (entries["bge-embed"].type, entries["bge-embed"].type_source) == ("llm", "traffic")
    assert entries["qwen-72b"].type_source == "set"


def test_availability_rules() -> None:
    def dep(status: str, enabled: bool = True) -> catalog.DeploymentFacts:
        return catalog.DeploymentFacts(1, "d", "m", "p", "openai", "", enabled, 1, status, None, "", None, "", "")

    assert catalog.availability([]) == ("no deployment", 0, 0)
    assert catalog.availability([dep("available", enabled=False)]) == ("disabled", 0, 0)
    assert catalog.availability([dep("error"), dep("available")]) == ("available", 1, 2)
    assert catalog.availability([dep("error"), dep("loading")]) == ("loading", 0, 2)
    assert catalog.availability([dep("unknown"), dep("error")]) == ("error", 0, 2)
    assert catalog.availability([dep("unknown"), dep("available", enabled=False)]) == ("unknown", 0, 1)


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("", ["bge-embed", "llama-8b", "mystery", "qwen-72b"]),
        ("LLAMA", ["llama-8b"]),
        ("general chat", ["llama-8b"]),  # description
        ("bge-m3", ["bge-embed"]),  # upstream model
        ("vllm-b", ["llama-8b", "qwen-72b"]),  # provider
        ("awq", ["llama-8b"]),
        ("%", []),  # wildcards are plain characters
        ("_", []),
        ("' OR 1=1 --", []),
    ],
)
def test_search(fleet: Engine, search: str, expected: list[str]) -> None:
    assert [e.alias for e in list_entries(fleet, search=search, now=NOW)] == expected


def test_sort_any_column_with_missing_values_last(fleet: Engine) -> None:
    def order(sort: str, descending: bool = False) -> list[str]:
        return [e.alias for e in list_entries(fleet, sort=sort, descending=descending, now=NOW)]

    assert order("context") == ["qwen-72b", "llama-8b", "bge-embed", "mystery"]
    assert order("context", True) == ["llama-8b", "qwen-72b", "bge-embed", "mystery"]
    assert order("size") == ["llama-8b", "qwen-72b", "bge-embed", "mystery"]
    assert order("size", True) == ["qwen-72b", "llama-8b", "bge-embed", "mystery"]
    assert order("availability") == ["llama-8b", "qwen-72b", "bge-embed", "mystery"]
    assert order("alias", True) == ["qwen-72b", "mystery", "llama-8b", "bge-embed"]
    assert order("type")[:2] == ["bge-embed", "qwen-72b"]
    for key in catalog.SORT_KEYS:
        assert len(order(key)) == 4
    with pytest.raises(CatalogError, match="cannot sort"):
        list_entries(fleet, sort="price; DROP TABLE x")


def test_size_value() -> None:
    assert catalog.size_value("8B") == 8
    assert catalog.size_value("1.5b") == 1.5
    assert catalog.size_value("350M") == pytest.approx(0.35)
    assert catalog.size_value("8x7B") == 56
    assert catalog.size_value("big") is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hf_repo": "javascript:alert(1)"}, "org/name"),
        ({"hf_repo": "https://evil.test/org/name"}, "org/name"),
        ({"hf_repo": "org/name?x=1"}, "org/name"),
        ({"hf_repo": "../../etc/passwd"}, "org/name"),
        ({"hf_repo": "org/na--me"}, "org/name"),
        ({"hf_repo": 'org/name"><script>'}, "org/name"),
        ({"hf_repo": 5}, "org/name"),
        ({"type": "chatbot"}, "type must be one of"),
        ({"context_length": -1}, "between 1"),
        ({"context_length": "128k"}, "whole number"),
        ({"context_length": True}, "whole number"),
        ({"context_length": 10**12}, "between 1"),
        ({"sunset_date": "next tuesday"}, "date like"),
        ({"description": "x" * 2001}, "longer than"),
        ({"size": "8B\x00"}, "control characters"),
        ({"version": "1\n2"}, "control characters"),
        ({"deprecated": "yes"}, "true or false"),
        ({"capabilities": {"telepathy": True}}, "unknown capabilities"),
        ({"capabilities": {"tools": "maybe"}}, "true, false or unknown"),
        ({"capabilities": {"embedding_dims": 0}}, "between 1"),
        ({"capabilities": ["tools"]}, "mapping"),
        ({"owner": "me"}, "unknown metadata field"),
    ],
)
def test_invalid_edits_are_refused_and_nothing_is_written(fleet: Engine, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        update_info(fleet, "llama-8b", changes, actor="op@example.com")
    with session(fleet) as s:
        assert s.exec(select(AuditEvent)).all() == []
        assert "hf_repo" not in s.exec(select(ModelAlias).where(ModelAlias.alias == "llama-8b")).one().info


def test_update_info_audits_before_and_after_and_clears_fields(fleet: Engine) -> None:
    entry = update_info(
        fleet,
        "llama-8b",
        {
            "hf_repo": "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/",
            "context_length": "128,000",
            "type": "llm",
            "deprecated": True,
            "sunset_date": "2026-01-31",
            "deprecation_note": "Use qwen-72b",
            "capabilities": {"streaming": True, "tools": None, "embedding_dims": None},
            "size": "",
        },
        actor="op@example.com",
    )
    assert entry.hf_repo == "meta-llama/Llama-3.1-8B-Instruct" and entry.hf_source == "set"
    assert entry.context_length == 128000 and entry.context_source == "set"
    assert entry.type_source == "set" and entry.deprecated and entry.size == ""
    assert entry.capabilities["streaming"] is True and entry.capabilities["tools"] is None
    with session(fleet) as s:
        (event,) = s.exec(select(AuditEvent)).all()
    assert (event.actor, event.action, event.target_type, event.target_id) == (
        "op@example.com",
        "catalog.update",
        "model_alias",
        "llama-8b",
    )
    assert event.before == {"description": "Fast general chat model", "size": "8B", "quantization": "AWQ int4"}
    assert event.after is not None and event.after["context_length"] == 128000 and "size" not in event.after
    assert PROVIDER_KEY not in repr(event.before) + repr(event.after)
    # The same values again change nothing and write no second event; clearing goes back to what was discovered.
    update_info(fleet, "llama-8b", {"type": "llm"}, actor="op@example.com")
    cleared = update_info(fleet, "llama-8b", {"context_length": None, "deprecated": False}, actor="op@example.com")
    assert cleared.context_source == "discovered" and not cleared.deprecated
    with session(fleet) as s:
        assert len(s.exec(select(AuditEvent)).all()) == 2
    with pytest.raises(CatalogError, match="no model"):
        update_info(fleet, "ghost", {"size": "1B"}, actor="op@example.com")


def test_hf_links_only_for_plain_repo_ids() -> None:
    assert hf_url("Qwen/Qwen2.5-7B-Instruct") == "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct"
    for bad in ("javascript:alert(1)", "//evil.test/x", "https://evil.test", "a/b/c", "a b/c", "org/", "/name", ""):
        assert hf_url(bad) == "", bad
    # A bad value stored by hand (or by an older import) is dropped when read, never shown as a link.
    assert clean_info({"hf_repo": "javascript:alert(1)//a/b", "size": "8B", "context_length": "x"}) == {"size": "8B"}


def test_compare_figures_from_rollups(fleet: Engine) -> None:
    at = NOW - timedelta(hours=1)
    records = [
        record("llama-8b", "/v1/chat/completions", at, latency_ms=90.0, ttfb_ms=40.0, completion_tokens=100)
        for _ in range(98)
    ] + [record("llama-8b", "/v1/chat/completions", at, latency_ms=9000.0, status="error") for _ in range(2)]
    records.append(record("llama-8b", "/v1/chat/completions", NOW - timedelta(days=2), latency_ms=5.0))  # too old
    write_batch(fleet, records)
    pairs = compare(fleet, ["llama-8b", "qwen-72b", "llama-8b"], now=NOW)
    assert [e.alias for e, _ in pairs] == ["llama-8b", "qwen-72b"]
    f = pairs[0][1]
    assert f.requests == 100 and f.error_rate == pytest.approx(0.02)
    assert 75 <= f.p50_ms <= 100  # the 75-100 ms histogram bucket
    assert 7500 <= f.p99_ms <= 10000
    assert f.requests_per_min == pytest.approx(100 / 1440)
    assert f.output_tokens_per_s == pytest.approx(9800 / 86400)
    assert f.decode_tokens_per_s == pytest.approx(9800 / ((98 * 90 + 2 * 9000) / 1000))
    assert pairs[1][1].requests == 0
    rows = present.compare_rows(pairs)
    assert all(len(r) == 3 for r in rows)
    assert ["Error rate", "2.0%", "—"] in rows
    assert ["Price", "$0.1 in / $0.2 out per 1M tokens", "no price set"] in rows
    for bad in (["llama-8b"], ["a", "b", "c", "d", "e"], ["llama-8b", " llama-8b "]):
        with pytest.raises(CatalogError, match="2 to 4"):
            compare(fleet, bad, now=NOW)
    with pytest.raises(CatalogError, match="not in the catalog: ghost"):
        compare(fleet, ["llama-8b", "ghost"], now=NOW)


HOSTILE = '<script>alert(1)</script>" onerror=alert(2) javascript:alert(3)'


def test_display_rows_keep_names_as_text_and_secrets_out(engine: Engine, box: SecretBox) -> None:
    add_alias(
        engine,
        box,
        HOSTILE,
        [{"model": HOSTILE, "discovered": {"root": "javascript:alert(1)", "max_model_len": 4096}}],
        {"description": HOSTILE, "hf_repo": "javascript:alert(1)"},
    )
    entry = get_entry(engine, HOSTILE)
    assert entry is not None
    row = present.row(entry)
    assert row["alias"] == HOSTILE  # rendered as a text node by the page
    assert row["hf_url"] == "" and row["hf"] == "—"
    assert row["href"].startswith("/models?alias=") and "<" not in row["href"] and '"' not in row["href"]
    root = "https://gw.example.com"
    shown = {
        "detail": present.detail(entry, root),
        "deps": present.deployment_rows(entry, show_upstream=False),
        "snippets": present.snippet_rows(entry, root),
        "caps": present.capability_row(entry),
        "edit": present.edit_defaults(entry),
    }
    assert shown["detail"]["hf_url"] == ""
    assert shown["deps"][0]["upstream"] == ""  # a viewer never gets the upstream URL
    assert PROVIDER_KEY not in repr(shown) and "internal:8000" not in repr(shown)
    operator_view = get_entry(engine, HOSTILE, show_upstream=True)
    assert operator_view is not None
    assert present.deployment_rows(operator_view, show_upstream=True)[0]["upstream"] == "http://vllm-a.internal:8000/v1"


def test_provider_names_that_spell_out_the_upstream_url_are_for_operators_only(engine: Engine, box: SecretBox) -> None:
    # `add-deployment` names a provider "<kind>:<base URL>".
    add_alias(engine, box, "private-llm", [{"model": "m", "provider": "openai:http://10.1.2.3:8000/v1"}])
    viewer = get_entry(engine, "private-llm")
    assert viewer is not None
    assert viewer.providers == ("openai",) and viewer.deployments[0].api_base == ""
    assert "10.1.2.3" not in repr(present.row(viewer)) + repr(present.detail(viewer, "http://gw"))
    assert list_entries(engine, search="10.1.2.3") == []  # a viewer cannot probe upstream addresses by search
    operator = get_entry(engine, "private-llm", show_upstream=True)
    assert operator is not None and operator.providers == ("openai:http://10.1.2.3:8000/v1",)
    assert [e.alias for e in list_entries(engine, search="10.1.2.3", show_upstream=True)] == ["private-llm"]
    assert catalog.provider_label("vllm-a", "openai", "http://x/v1", show_upstream=False) == "vllm-a"


def test_edit_form_round_trip(fleet: Engine) -> None:
    entry = update_info(
        fleet,
        "qwen-72b",
        {"version": "2.5", "capabilities": {"tools": True, "vision": False, "embedding_dims": 1024}},
        actor="op@example.com",
    )
    form = present.edit_defaults(entry)
    assert form["tools"] == "yes" and form["vision"] == "no" and form["json_mode"] == "unknown"
    assert form["embedding_dims"] == "1024" and form["deprecated"] == "no" and form["type"] == "llm"
    again = update_info(fleet, "qwen-72b", present.changes_from_form(form), actor="op@example.com")
    assert clean_info(again.info) == clean_info(entry.info)
    with session(fleet) as s:
        assert len(s.exec(select(AuditEvent)).all()) == 1  # submitting the form unchanged writes nothing
    assert validate_info(present.changes_from_form({"type": "unknown", "context_length": ""}))["type"] is None


async def test_refresh_metadata_asks_every_deployment(
    fleet: Engine, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_console.services import probe

    asked: list[tuple[int, tuple[str, ...]]] = []

    async def probe_deployment(
        engine: Engine, box: SecretBox, deployment_id: int, *, extra_allowlist: Any = (), **_: Any
    ) -> probe.ProbeResult:
        asked.append((deployment_id, tuple(extra_allowlist)))
        if len(asked) == 2:
            return probe.failed("upstream said 500")
        return probe.ProbeResult("available", 12.0, ["llama"], None)

    monkeypatch.setattr(probe, "probe_deployment", probe_deployment)
    message = await catalog.refresh_metadata(fleet, box, "llama-8b", extra_allowlist=["10.0.0.0/8"])
    assert len(asked) == 2 and all(allow == ("10.0.0.0/8",) for _, allow in asked)
    assert "Asked 2 deployment(s); 1 failed" in message and "upstream said 500" in message
    with pytest.raises(CatalogError, match="no deployments"):
        await catalog.refresh_metadata(fleet, box, "mystery")


def test_every_catalog_handler_declares_its_role() -> None:
    from llm_console.auth.policy import declared_role
    from llm_console.state.catalog import CatalogEditState, CatalogState

    expected = {
        CatalogState: ("viewer", {"load", "search_catalog", "toggle_compare", "clear_compare"}),
        CatalogEditState: ("operator", {"save", "refresh_metadata"}),
    }
    for cls, (minimum, names) in expected.items():
        assert names <= set(cls.event_handlers)
        for name in names:
            assert declared_role(cls.event_handlers[name].fn, cls) == minimum, name


def call(state: Any, name: str, *args: Any) -> Any:
    """Run an event handler the way Reflex does for a socket event (the function itself, on the state)."""
    return type(state).event_handlers[name].fn(state, *args)


@pytest.fixture
def states(fleet: Engine, box: SecretBox, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Catalog states as a socket would drive them, for a signed-in user whose role the test sets."""
    from llm_console.services.sessions import SessionUser
    from llm_console.state import catalog as state_module

    who = {"role": "viewer"}

    async def current_user(_: object) -> SessionUser:
        return SessionUser(user_id=1, email=f"{who['role']}@example.com", name="", role=who["role"])

    ctx = types.SimpleNamespace(
        engine=fleet, settings=types.SimpleNamespace(public_url=None), runtime=types.SimpleNamespace(box=box)
    )
    monkeypatch.setattr(state_module, "current_user", current_user)
    monkeypatch.setattr(state_module, "get_context", lambda: ctx)
    monkeypatch.setattr(state_module.CatalogEditState, "_alias", lambda self: "llama-8b")
    root = state_module.CatalogState.get_root_state()(_reflex_internal_init=True)
    view = root.get_substate(state_module.CatalogState.get_full_name().split(".")[1:])
    edit = root.get_substate(state_module.CatalogEditState.get_full_name().split(".")[1:])
    return types.SimpleNamespace(who=who, view=view, edit=edit, module=state_module)


async def test_a_viewer_reads_the_catalog_but_cannot_edit_it(
    states: Any, fleet: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, edit = states.view, states.edit
    monkeypatch.setattr(type(view), "_params", lambda self: {"alias": "llama-8b"})
    await call(view, "load")
    assert view.view == "detail" and view.detail["alias"] == "llama-8b"
    assert not view.can_edit and view.edit == {}
    assert all(d["upstream"] == "" for d in view.deployments)
    assert view.detail["endpoint"] == "http://localhost:3000/v1/chat/completions"
    # Calling the operator handler directly, as any socket can, changes nothing.
    await call(edit, "save", {"size": "1B"})
    assert "Only operators" in edit.edit_error
    with session(fleet) as s:
        assert s.exec(select(AuditEvent)).all() == []
    states.who["role"] = "operator"
    await call(view, "load")
    assert view.can_edit and view.edit["size"] == "8B"
    assert view.deployments[0]["upstream"].startswith("http://vllm-a.internal")
    assert await call(edit, "save", {"size": "9B", "hf_repo": "javascript:alert(1)"}) is None
    assert "org/name" in edit.edit_error
    reload = await call(edit, "save", {"size": "9B", "type": "llm"})
    assert reload is not None and edit.message == "Saved." and edit.edit_error == ""
    with session(fleet) as s:
        (event,) = s.exec(select(AuditEvent)).all()
    assert event.actor == "operator@example.com" and event.after is not None and event.after["size"] == "9B"


async def test_list_view_compare_selection_and_bad_urls(states: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    view = states.view
    params: dict[str, str] = {"q": "", "sort": "context", "dir": "desc"}
    monkeypatch.setattr(type(view), "_params", lambda self: params)
    await call(view, "load")
    assert view.view == "list" and [r["alias"] for r in view.rows][:2] == ["llama-8b", "qwen-72b"]
    assert view.sort_marks["context"] == "descending" and view.sort_hrefs["context"] == "/models?sort=context"
    for alias in ("llama-8b", "qwen-72b", "not-in-catalog"):
        await call(view, "toggle_compare", alias)
    assert view.selected == ["llama-8b", "qwen-72b"]
    assert view.compare_href == "/models?compare=llama-8b,qwen-72b"
    params.clear()
    params["compare"] = "llama-8b,qwen-72b"
    await call(view, "load")
    assert view.view == "compare" and view.compare_columns == ["llama-8b", "qwen-72b"]
    params["compare"] = "llama-8b"
    await call(view, "load")
    assert view.view == "error" and "2 to 4" in view.error
    params.clear()
    params["sort"] = "nonsense"
    await call(view, "load")
    assert view.view == "error" and "cannot sort" in view.error
