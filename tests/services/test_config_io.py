"""Config as code: export, dry run, atomic audited apply, prune, secrets, SSRF, readable errors, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import (
    AliasDeployment,
    AuditEvent,
    Budget,
    Deployment,
    ModelAlias,
    NetworkAllow,
    Provider,
    RateLimit,
    Team,
)
from llm_console.services import config_io
from llm_console.services.config_io import apply_import, export_config, preview_import
from llm_console.services.config_schema import MAX_BYTES, ConfigImportError
from llm_console.services.deployments import add_deployment, set_price, set_route_policy
from tests.conftest import cli_env, run_cli

from .conftest import SECRET_KEY, everything_stored

PROVIDER_KEY = "sk-live-config-io-provider-secret-91"
HOSTILE = "<script>alert(1)</script>"


def counts(engine: Engine) -> dict[str, int]:
    with session(engine) as s:
        return {t.name: s.exec(select(func.count()).select_from(t)).one() for t in SQLModel.metadata.sorted_tables}


def audit(engine: Engine) -> list[AuditEvent]:
    with session(engine) as s:
        return list(s.exec(select(AuditEvent).order_by(AuditEvent.id)))  # type: ignore[arg-type]


@pytest.fixture
def populated(engine: Engine, box: SecretBox) -> Engine:
    """Two providers (one private, one with a key), two aliases with a policy, a price, a team with limits."""
    add_deployment(engine, box, alias="gpt-4o", base_url="https://api.openai.test/v1", api_key=PROVIDER_KEY, actor="t")
    add_deployment(
        engine,
        box,
        alias="llama",
        base_url="http://10.0.0.5:8000/v1",
        model="meta/llama",
        actor="t",
        allow_private=True,
    )
    set_route_policy(engine, alias="gpt-4o", actor="t", fallbacks=["llama"], retries=3, timeouts={"total_s": 30.0})
    set_price(engine, model="gpt-4o", input_per_mtok=2.5, output_per_mtok=10.0, actor="t")
    with session(engine) as s:
        team = Team(name="research", description="the lab")
        s.add(team)
        s.flush()
        s.add(Budget(entity_type="team", entity_id=team.id, daily_usd=5.0, monthly_usd=None))  # type: ignore[arg-type]
        s.add(RateLimit(entity_type="team", entity_id=team.id, rpm=60))  # type: ignore[arg-type]
        alias = s.exec(select(ModelAlias).where(ModelAlias.alias == "llama")).one()
        alias.info = {"type": "llm", "context_length": 8192, "capabilities": {"streaming": True}}
        s.add(alias)
        s.commit()
    return engine


def doc(**sections: Any) -> str:
    return yaml.safe_dump({"version": 1, **sections}, sort_keys=False)


NEW = {
    "providers": [{"name": "vllm", "api_base": "https://vllm.example.test/v1"}],
    "deployments": [{"name": "qwen@vllm", "provider": "vllm", "model": "Qwen/Qwen2.5-7B"}],
    "aliases": [{"alias": "qwen", "deployments": [{"deployment": "qwen@vllm", "weight": 2}]}],
    "prices": [{"model": "Qwen/Qwen2.5-7B", "input_per_mtok": 0.1, "output_per_mtok": 0.2}],
}


def test_export_is_stable_complete_and_has_no_secret(populated: Engine) -> None:
    text = export_config(populated)
    assert text == export_config(populated)
    assert PROVIDER_KEY not in text and "api_key_encrypted" not in text
    data = yaml.safe_load(text)
    providers = {p["name"]: p for p in data["providers"]}
    assert providers["openai:https://api.openai.test/v1"]["has_api_key"] is True
    assert "api_key" not in providers["openai:https://api.openai.test/v1"]
    gpt = next(a for a in data["aliases"] if a["alias"] == "gpt-4o")
    assert gpt["policy"] == {"fallbacks": ["llama"], "retries": 3, "timeouts": {"total_s": 30.0}}
    assert data["teams"] == [{"name": "research", "description": "the lab"}]
    assert data["budgets"] == [{"team": "research", "daily_usd": 5.0, "monthly_usd": None}]
    assert data["rate_limits"][0]["rpm"] == 60
    assert data["network_allowlist"][0]["entry"] == "10.0.0.5/32"


def test_round_trip_is_no_changes_and_writes_nothing(populated: Engine, box: SecretBox) -> None:
    text = export_config(populated)
    before = counts(populated)
    plan = preview_import(populated, box, text)
    assert not plan.has_changes and plan.summary().startswith("no changes")
    assert apply_import(populated, box, text, actor="t").has_changes is False
    assert counts(populated) == before


def test_the_engine_aware_fallback_round_trips(populated: Engine, box: SecretBox) -> None:
    text = doc(aliases=[{"alias": "llama", "strategy": "engine_aware", "policy": {"engine_fallback": "lowest_cost"}}])
    assert apply_import(populated, box, text, actor="t").has_changes is True
    exported = export_config(populated)
    llama = next(a for a in yaml.safe_load(exported)["aliases"] if a["alias"] == "llama")
    assert (llama["strategy"], llama["policy"]) == ("engine_aware", {"engine_fallback": "lowest_cost"})
    assert not preview_import(populated, box, exported).has_changes
    with session(populated) as s:
        assert s.exec(select(ModelAlias).where(ModelAlias.alias == "llama")).one().settings == {
            "engine_fallback": "lowest_cost"
        }


def test_export_imports_into_an_empty_database(populated: Engine, box: SecretBox, tmp_path: Path) -> None:
    from llm_console.db.engine import make_engine
    from llm_console.db.migrate import upgrade

    url = f"sqlite:///{(tmp_path / 'other.db').as_posix()}"
    upgrade(url)
    other = make_engine(url)
    text = export_config(populated)
    plan = apply_import(other, box, text, actor="t")
    assert plan.counts["create"] == 11 and plan.counts["delete"] == 0
    # Same configuration, except that the secret never travelled.
    assert export_config(other) == text.replace("has_api_key: true", "has_api_key: false")
    other.dispose()


def test_dry_run_changes_nothing(populated: Engine, box: SecretBox, db_path: Path) -> None:
    stored = everything_stored(populated, db_path)
    plan = preview_import(populated, box, doc(**NEW))
    assert [(c.kind, c.action) for c in plan.changes] == [
        ("provider", "create"),
        ("deployment", "create"),
        ("alias", "create"),
        ("price", "create"),
    ]
    assert everything_stored(populated, db_path) == stored


def test_apply_writes_and_audits_each_object(populated: Engine, box: SecretBox) -> None:
    seen = len(audit(populated))
    plan = apply_import(populated, box, doc(**NEW), actor="ops@example.com")
    assert plan.counts == {"create": 4, "update": 0, "delete": 0, "unchanged": 0}
    with session(populated) as s:
        alias = s.exec(select(ModelAlias).where(ModelAlias.alias == "qwen")).one()
        link = s.exec(select(AliasDeployment).where(AliasDeployment.alias_id == alias.id)).one()
        assert link.weight == 2
    events = audit(populated)[seen:]
    assert [e.action for e in events] == [
        "provider.create",
        "deployment.create",
        "alias.create",
        "price.create",
        "config.import",
    ]
    assert {e.actor for e in events} == {"ops@example.com"}
    assert events[-1].after == {"create": 4, "update": 0, "delete": 0, "unchanged": 0, "prune": False, "source": "yaml"}
    assert preview_import(populated, box, doc(**NEW)).has_changes is False


def test_update_shows_fields_and_keeps_what_the_document_leaves_out(populated: Engine, box: SecretBox) -> None:
    text = doc(aliases=[{"alias": "llama", "deployments": [{"deployment": "meta/llama@10.0.0.5:8000", "weight": 4}]}])
    plan = preview_import(populated, box, text)
    (change,) = plan.changes
    assert (change.kind, change.name, change.action) == ("alias", "llama", "update")
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        (
            "deployments",
            '[{"deployment": "meta/llama@10.0.0.5:8000", "weight": 1}]',
            '[{"deployment": "meta/llama@10.0.0.5:8000", "weight": 4}]',
        )
    ]
    assert plan.rows()[0]["changes"].startswith("deployments: [")
    apply_import(populated, box, text, actor="t")
    with session(populated) as s:
        alias = s.exec(select(ModelAlias).where(ModelAlias.alias == "llama")).one()
        assert alias.info["context_length"] == 8192  # info was not in the document: kept


def test_apply_is_all_or_nothing(populated: Engine, box: SecretBox, monkeypatch: pytest.MonkeyPatch) -> None:
    before = counts(populated)
    real, calls = config_io.record, []

    def failing(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs["action"])
        if len(calls) == 3:
            raise RuntimeError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(config_io, "record", failing)
    with pytest.raises(RuntimeError):
        apply_import(populated, box, doc(**NEW), actor="t")
    assert counts(populated) == before


def test_a_database_error_halfway_is_readable_and_leaves_nothing(
    populated: Engine, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = counts(populated)
    real = config_io._WRITERS["alias"]

    def clash(s: Any, op: Any, box_: SecretBox, actor: str) -> None:
        real(s, op, box_, actor)
        s.add(Team(name="research"))  # violates teams.name UNIQUE at the next flush

    monkeypatch.setitem(config_io._WRITERS, "alias", clash)
    with pytest.raises(ConfigImportError, match=r"database refused the import .*nothing was written"):
        apply_import(populated, box, doc(**NEW), actor="t")
    assert counts(populated) == before


def test_prune_deletes_only_in_sections_the_document_has(populated: Engine, box: SecretBox) -> None:
    keep = {
        "providers": [{"name": "openai:https://api.openai.test/v1", "api_base": "https://api.openai.test/v1"}],
        "deployments": [
            {"name": "gpt-4o@api.openai.test", "provider": "openai:https://api.openai.test/v1", "model": "gpt-4o"}
        ],
        "aliases": [{"alias": "gpt-4o", "policy": {}}],
    }
    assert not any(c.action == "delete" for c in preview_import(populated, box, doc(**keep)).changes)
    plan = apply_import(populated, box, doc(prune=True, **keep), actor="t")
    deleted = {(c.kind, c.name) for c in plan.changes if c.action == "delete"}
    assert deleted == {
        ("provider", "openai:http://10.0.0.5:8000/v1"),
        ("deployment", "meta/llama@10.0.0.5:8000"),
        ("alias", "llama"),
    }
    c = counts(populated)
    assert (c["providers"], c["deployments"], c["model_aliases"]) == (1, 1, 1)
    assert (c["model_prices"], c["teams"], c["budgets"], c["network_allowlist"]) == (1, 1, 1, 1)
    assert "alias.delete" in [e.action for e in audit(populated)]


def test_prune_of_a_referenced_object_is_refused(populated: Engine, box: SecretBox) -> None:
    text = doc(prune=True, aliases=[{"alias": "gpt-4o"}])  # gpt-4o falls back to llama, which would go
    with pytest.raises(ConfigImportError, match="alias 'gpt-4o' falls back to 'llama', which this import removes"):
        preview_import(populated, box, text)
    text = doc(prune=True, aliases=[{"alias": "gpt-4o", "policy": {"fallbacks": ["llama"]}}])
    with pytest.raises(ConfigImportError, match=r"aliases\[0\]\.policy\.fallbacks\[0\]: no alias 'llama'"):
        preview_import(populated, box, text)


def test_literal_key_is_encrypted_and_never_shown(engine: Engine, box: SecretBox, db_path: Path) -> None:
    providers = [{"name": "p", "api_base": "https://api.example.test/v1", "api_key": PROVIDER_KEY}]
    plan = preview_import(engine, box, doc(providers=providers))
    assert ("api_key", "", "(set)") in [(f.field, f.before, f.after) for f in plan.changes[0].fields]
    assert PROVIDER_KEY not in repr(plan) and PROVIDER_KEY not in repr(plan.rows())
    apply_import(engine, box, doc(providers=providers), actor="t")
    assert PROVIDER_KEY.encode() not in everything_stored(engine, db_path)
    with session(engine) as s:
        row = s.exec(select(Provider)).one()
        assert row.api_key_encrypted and box.decrypt(row.api_key_encrypted) == PROVIDER_KEY
    assert PROVIDER_KEY not in export_config(engine)
    assert preview_import(engine, box, doc(providers=providers)).has_changes is False
    providers[0]["api_key"] = PROVIDER_KEY + "-rotated"
    (change,) = preview_import(engine, box, doc(providers=providers)).changes
    assert [(f.field, f.before, f.after) for f in change.fields] == [("api_key", "(set)", "(changed)")]
    apply_import(engine, box, doc(providers=providers), actor="t")
    assert PROVIDER_KEY.encode() not in everything_stored(engine, db_path)
    update = next(e for e in audit(engine) if e.action == "provider.update")
    assert update.before == {"api_key": "***"} and update.after == {"api_key": "***"}


def test_environment_references(engine: Engine, box: SecretBox) -> None:
    providers = [{"name": "p", "api_base": "https://api.example.test/v1", "api_key": "os.environ/UPSTREAM_KEY"}]
    with pytest.raises(ConfigImportError, match=r"providers\[0\]\.api_key: the environment variable UPSTREAM_KEY"):
        preview_import(engine, box, doc(providers=providers), env={})
    apply_import(engine, box, doc(providers=providers), actor="t", env={"UPSTREAM_KEY": PROVIDER_KEY})
    with session(engine) as s:
        assert box.decrypt(s.exec(select(Provider)).one().api_key_encrypted or "") == PROVIDER_KEY
    assert (
        preview_import(engine, box, doc(providers=providers), env={"UPSTREAM_KEY": PROVIDER_KEY}).has_changes is False
    )
    with pytest.raises(ConfigImportError, match="UPSTREAM_KEY holds spaces or control characters"):
        preview_import(engine, box, doc(providers=providers), env={"UPSTREAM_KEY": "sk-a\r\nX-Evil: 1"})
    providers[0]["api_key"] = "sk-with\nnewline"
    with pytest.raises(ConfigImportError, match=r"providers\[0\]\.api_key: must not contain spaces"):
        preview_import(engine, box, doc(providers=providers))
    providers[0]["api_key"] = "os.environ/LLMC_SECRET_KEY"
    with pytest.raises(ConfigImportError, match="console's own settings"):
        preview_import(engine, box, doc(providers=providers), env={"LLMC_SECRET_KEY": SECRET_KEY})


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000/v1", "http://127.0.0.1:8000", "http://[::1]:8000/v1"])
def test_private_hosts_need_allow_private(engine: Engine, box: SecretBox, url: str) -> None:
    text = doc(providers=[{"name": "local", "api_base": url}])
    with pytest.raises(ConfigImportError, match=r"providers\[0\]\.api_base: .*allow private hosts"):
        apply_import(engine, box, text, actor="t")
    assert counts(engine)["providers"] == 0
    plan = apply_import(engine, box, text, actor="t", allow_private=True)
    assert [(c.kind, c.action) for c in plan.changes] == [("network_allow", "create"), ("provider", "create")]
    with session(engine) as s:
        assert len(list(s.exec(select(NetworkAllow)))) == 1


def test_metadata_addresses_are_never_allowed_automatically(engine: Engine, box: SecretBox) -> None:
    text = doc(providers=[{"name": "meta", "api_base": "http://169.254.169.254/latest"}])
    with pytest.raises(ConfigImportError, match="link-local"):
        preview_import(engine, box, text, allow_private=True, role="operator")


def test_operators_cannot_change_organization_objects(populated: Engine, box: SecretBox) -> None:
    text = doc(teams=[{"name": "new team"}], network_allowlist=[{"entry": "10.9.0.0/16"}])
    plan = preview_import(populated, box, text, role="operator")
    assert any("only an admin can change" in w for w in plan.warnings)
    with pytest.raises(ConfigImportError, match="only an admin can change allow-list entry, team"):
        apply_import(populated, box, text, actor="op", role="operator")
    assert apply_import(populated, box, doc(**NEW), actor="op", role="operator").counts["create"] == 4
    private = doc(providers=[{"name": "lan", "api_base": "http://192.168.1.20:8000/v1"}])
    with pytest.raises(ConfigImportError, match="only an admin can change allow-list entry"):
        apply_import(populated, box, private, actor="op", role="operator", allow_private=True)
    assert apply_import(populated, box, private, actor="admin", role="admin", allow_private=True).has_changes


def test_catalog_info_is_checked_and_normalised(engine: Engine, box: SecretBox) -> None:
    info = {
        "type": "embedding",
        "hf_repo": "https://huggingface.co/BAAI/bge-m3",
        "deprecated": False,
        "sunset_date": "2027-01-31",
        "capabilities": {"streaming": False, "embedding_dims": 1024},
        "size": None,
    }
    apply_import(engine, box, doc(aliases=[{"alias": "bge", "info": info}]), actor="t")
    with session(engine) as s:
        stored = s.exec(select(ModelAlias)).one().info
    assert stored == {
        "type": "embedding",
        "hf_repo": "BAAI/bge-m3",
        "sunset_date": "2027-01-31",
        "capabilities": {"streaming": False, "embedding_dims": 1024},
    }
    assert preview_import(engine, box, export_config(engine)).has_changes is False
    bad = doc(aliases=[{"alias": "bge", "info": {"hf_repo": "https://evil.test/x", "colour": "red"}}])
    with pytest.raises(ConfigImportError) as caught:
        preview_import(engine, box, bad)
    assert [p.split(":")[0] for p in caught.value.problems] == ["aliases[0].info.hf_repo", "aliases[0].info.colour"]


def test_hostile_names_are_stored_as_plain_text(engine: Engine, box: SecretBox) -> None:
    text = doc(
        providers=[{"name": HOSTILE, "api_base": "https://api.example.test/v1"}],
        deployments=[{"name": HOSTILE, "provider": HOSTILE, "model": "<img src=x onerror=alert(1)>"}],
        aliases=[{"alias": HOSTILE, "deployments": [{"deployment": HOSTILE}], "info": {"description": HOSTILE}}],
        teams=[{"name": "'; DROP TABLE teams; --", "description": HOSTILE}],
    )
    apply_import(engine, box, text, actor="t")
    with session(engine) as s:
        assert s.exec(select(ModelAlias)).one().alias == HOSTILE
        assert s.exec(select(Deployment)).one().model == "<img src=x onerror=alert(1)>"
        assert s.exec(select(Team)).one().name == "'; DROP TABLE teams; --"
    assert yaml.safe_load(export_config(engine))["aliases"][0]["info"]["description"] == HOSTILE
    assert preview_import(engine, box, export_config(engine)).has_changes is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nproviders: [\n", "YAML error at line 3, column 1"),
        ("version: 1\nprune: false\nprune: true\n", "line 3, column 1: the key 'prune' appears twice"),
        ("- 1\n- 2\n", "must be a mapping starting with 'version: 1', not a list"),
        ("providers: []\n", "version: must be 1"),
        ("version: 2\n", "version: must be 1"),
        ("version: 1\nprovider: []\n", "provider: unknown field (did you mean 'providers'?)"),
        ("version: 1\nproviders: [{name: p, api_base: 'https://a.test', enabeld: true}]\n",
         "providers[0].enabeld: unknown field (did you mean 'enabled'?)"),
        ("version: 1\nproviders: [{name: p, api_base: 'ftp://a.test'}]\n", "providers[0].api_base: base URL must be"),
        ("version: 1\nproviders: [{name: p}]\n", "providers[0].api_base: is required"),
        ("version: 1\ndeployments: [{name: 5, provider: p, model: m}]\n",
         "deployments[0].name: must be text, not a number"),
        ("version: 1\ndeployments: [{name: d, provider: p, model: m, max_concurrency: '5'}]\n",
         "deployments[0].max_concurrency: must be a whole number, not text"),
        ("version: 1\naliases: [{alias: a, deployments: [{deployment: d, weight: -1}]}]\n",
         "aliases[0].deployments[0].weight: must be >= 0"),
        ("version: 1\naliases: [{alias: a, strategy: random}]\n", "aliases[0].strategy: must be one of: weighted"),
        ("version: 1\naliases: [{alias: a, policy: {engine_fallback: engine_aware}}]\n",
         "aliases[0].policy.engine_fallback: must be one of: weighted, least_busy, lowest_latency, lowest_cost"),
        ("version: 1\naliases: [{alias: a, info: {sunset_date: soon}}]\n",
         "aliases[0].info.sunset_date: sunset date must be a date"),
        ("version: 1\nprices: [{model: m, input_per_mtok: .nan}]\n", "prices[0].input_per_mtok: must be"),
        ("version: 1\nteams: [{name: a}, {name: a}]\n", "teams[1].name: 'a' is already used by teams[0]"),
        ("version: 1\ndeployments: [{name: d, provider: nowhere, model: m}]\n",
         "deployments[0].provider: no provider 'nowhere'"),
        ("version: 1\nbudgets: [{team: ghosts, daily_usd: 1}]\n", "budgets[0].team: no team 'ghosts'"),
        ("version: 1\nnetwork_allowlist: [{entry: 'http://10.0.0.1/'}]\n", "network_allowlist[0].entry: "),
        ("version: 1\nproviders: [{name: p, api_base: 'https://a.test', api_key: 'os.environ/bad-name'}]\n",
         "providers[0].api_key: an environment reference must look like os.environ/NAME"),
        ("model_list: []\n", "looks like a LiteLLM config"),
        ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
         "expands to more than"),
        ("version: 1\nx: &x [*x]\n", "refers to itself (a recursive alias)"),
        ("version: 1\nx: " + "[" * 100 + "]" * 100 + "\n", "nested too deeply"),
        ("version: 1\nteams: [{name: \"a\\tb\"}]\n", "teams[0].name: must not contain control characters"),
    ],
)  # fmt: skip
def test_bad_documents_are_refused_readably(populated: Engine, box: SecretBox, text: str, message: str) -> None:
    before = counts(populated)
    with pytest.raises(ConfigImportError) as caught:
        apply_import(populated, box, text, actor="t")
    assert message in str(caught.value), caught.value.problems
    assert counts(populated) == before


def test_oversized_document_is_refused(engine: Engine, box: SecretBox) -> None:
    text = "version: 1\n# " + "x" * MAX_BYTES
    with pytest.raises(ConfigImportError, match="larger than 1024 KiB"):
        preview_import(engine, box, text)


def test_every_problem_is_listed(engine: Engine, box: SecretBox) -> None:
    text = "version: 1\nproviders: [{name: p, kind: bedrock, api_base: 'https://a.test', extra: 1}]\n"
    with pytest.raises(ConfigImportError) as caught:
        preview_import(engine, box, text)
    assert caught.value.problems == [
        "providers[0].kind: must be one of: openai, anthropic, azure",
        "providers[0].extra: unknown field",
    ]


def test_cli_export_and_import(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    assert run_cli(env, "migrate").returncode == 0
    config = tmp_path / "config.yaml"
    config.write_text(doc(**NEW), encoding="utf-8")
    dry = run_cli(env, "import-config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "create  alias            qwen" in dry.stdout
    assert "dry run: 4 to create, 0 to update, 0 to delete, 0 unchanged; nothing was changed" in dry.stdout
    assert "qwen" not in run_cli(env, "export-config").stdout
    applied = run_cli(env, "import-config", str(config))
    assert applied.returncode == 0 and "applied: 4 to create" in applied.stdout
    out = tmp_path / "export.yaml"
    exported = run_cli(env, "export-config", "--output", str(out))
    assert exported.returncode == 0 and "written to" in exported.stderr
    assert "alias: qwen" in out.read_text(encoding="utf-8")
    again = run_cli(env, "import-config", str(out))
    assert again.returncode == 0 and "applied: no changes" in again.stdout
    private = tmp_path / "private.yaml"
    private.write_text(doc(providers=[{"name": "lan", "api_base": "http://10.3.0.9:8000/v1"}]), encoding="utf-8")
    refused = run_cli(env, "import-config", str(private))
    assert refused.returncode == 2 and "pass --allow-private" in refused.stderr and "Traceback" not in refused.stderr
    assert run_cli(env, "import-config", str(private), "--allow-private").returncode == 0
    bad = run_cli(env, "import-config", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr
