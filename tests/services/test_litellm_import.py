"""LiteLLM proxy configs converted and imported: providers, weighted aliases, prices, catalog info, routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import select

from llm_console.crypto import SecretBox
from llm_console.db.engine import session
from llm_console.db.models import AliasDeployment, Deployment, ModelAlias, ModelPrice, Provider
from llm_console.services.config_io import apply_import, export_config, preview_import, read_document
from llm_console.services.config_schema import ConfigImportError
from llm_console.services.litellm_import import convert_litellm
from tests.conftest import cli_env, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
ENV = {
    "AZURE_API_KEY_EU": "azure-eu-secret-1",
    "AZURE_API_KEY_CA": "azure-ca-secret-2",
    "OPENAI_API_KEY": "sk-openai-secret-3",
    "ANTHROPIC_API_KEY": "sk-ant-secret-4",
    "UPSTREAM_PROXY_KEY": "sk-proxy-secret-5",
}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def convert(text: str) -> tuple[dict[str, Any], list[str]]:
    return convert_litellm(yaml.safe_load(text))


def routes(engine: Engine) -> dict[str, list[tuple[str, str, int]]]:
    """alias -> [(provider api_base, upstream model, weight)]."""
    with session(engine) as s:
        providers = {p.id: p for p in s.exec(select(Provider))}
        deployments = {d.id: d for d in s.exec(select(Deployment))}
        out: dict[str, list[tuple[str, str, int]]] = {}
        for alias in s.exec(select(ModelAlias)):
            links = s.exec(select(AliasDeployment).where(AliasDeployment.alias_id == alias.id))
            out[alias.alias] = sorted(
                (
                    providers[deployments[x.deployment_id].provider_id].api_base,
                    deployments[x.deployment_id].model,
                    x.weight,
                )
                for x in links
            )
    return out


def test_azure_and_openai_config(engine: Engine, box: SecretBox) -> None:
    text = fixture("litellm_azure_openai.yaml")
    _, warnings = convert(text)
    assert any("provider 'bedrock' is not supported" in w for w in warnings)
    assert any("rpm/tpm" in w for w in warnings)
    assert any("text-embedding-3-small' has no provider prefix" in w for w in warnings)
    assert any("router_settings ignored" in w and "redis_password" in w for w in warnings)
    assert any(w.startswith("general_settings: ignored") for w in warnings)
    assert not any("sk-1234" in w or "REDIS" in w for w in warnings)  # keys named, values never echoed
    plan = apply_import(engine, box, text, litellm=True, env=ENV, actor="t")
    assert plan.source == "litellm" and plan.counts["create"] == 11
    assert routes(engine) == {
        "gpt-4o": [
            ("https://my-endpoint-canada-berri992.openai.azure.com", "gpt-4o-ca", 2),
            ("https://my-endpoint-europe-berri-992.openai.azure.com", "gpt-4o-eu", 1),
        ],
        "gpt-4o-mini": [("https://api.openai.com/v1", "gpt-4o-mini", 1)],
        "text-embedding-3-small": [("https://api.openai.com/v1", "text-embedding-3-small", 1)],
    }
    with session(engine) as s:
        keys = {p.api_base: box.decrypt(p.api_key_encrypted or "") for p in s.exec(select(Provider))}
        assert keys["https://my-endpoint-europe-berri-992.openai.azure.com"] == "azure-eu-secret-1"
        assert keys["https://api.openai.com/v1"] == "sk-openai-secret-3"
        kinds = {p.kind for p in s.exec(select(Provider))}
        assert kinds == {"azure", "openai"}
        eu = s.exec(select(Deployment).where(Deployment.model == "gpt-4o-eu")).one()
        assert eu.settings == {"api_version": "2024-10-21"}
        mini = s.exec(select(Deployment).where(Deployment.model == "gpt-4o-mini")).one()
        assert mini.settings == {"timeouts": {"total_s": 60.0, "first_byte_s": 10.0}}
        aliases = {a.alias: a for a in s.exec(select(ModelAlias))}
        price = s.get(ModelPrice, "gpt-4o-mini")
    assert aliases["gpt-4o"].info == {
        "type": "llm",
        "context_length": 128000,
        "capabilities": {"tools": True, "vision": True, "json_mode": True, "streaming": True},
    }
    assert aliases["text-embedding-3-small"].info == {"type": "embedding", "context_length": 8191}
    assert aliases["gpt-4o"].strategy == "weighted"
    assert aliases["gpt-4o"].settings == {"retries": 2, "timeouts": {"total_s": 120.0}, "fallbacks": ["gpt-4o-mini"]}
    assert aliases["gpt-4o-mini"].settings["retries"] == 3  # its own max_retries beats num_retries
    assert price is not None and (price.input_per_mtok, price.output_per_mtok) == (0.15, 0.6)
    assert preview_import(engine, box, text, litellm=True, env=ENV).has_changes is False
    assert preview_import(engine, box, export_config(engine)).has_changes is False
    assert not any(secret in export_config(engine) for secret in ENV.values())


def test_self_hosted_vllm_config(engine: Engine, box: SecretBox) -> None:
    text = fixture("litellm_self_hosted.yaml")
    with pytest.raises(ConfigImportError, match="allow private hosts"):
        preview_import(engine, box, text, litellm=True)
    plan = preview_import(engine, box, text, litellm=True, allow_private=True)
    assert any("wildcard routing has no equivalent" in w for w in plan.warnings)
    assert {c.name for c in plan.changes if c.kind == "network_allow"} == {
        "10.0.0.11/32",
        "10.0.0.12/32",
        "10.0.0.21/32",
    }
    apply_import(engine, box, text, litellm=True, allow_private=True, actor="t")
    assert routes(engine)["llama-3.1-8b"] == [
        ("http://10.0.0.11:8000/v1", "meta-llama/Llama-3.1-8B-Instruct", 3),
        ("http://10.0.0.12:8000/v1", "meta-llama/Llama-3.1-8B-Instruct", 1),
    ]
    assert routes(engine)["qwen-coder"] == [
        ("http://vllm-coder.internal:8000/v1", "Qwen/Qwen2.5-Coder-32B-Instruct", 1)
    ]
    with session(engine) as s:
        aliases = {a.alias: a for a in s.exec(select(ModelAlias))}
        replica = s.exec(select(Deployment).where(Deployment.name == "meta-llama/Llama-3.1-8B-Instruct@10.0.0.11:8000"))
        dep = replica.one()
        embed_and_rerank = s.exec(select(Provider).where(Provider.api_base == "http://10.0.0.21:8000/v1")).all()
    assert dep.max_concurrency == 64 and dep.settings == {"timeouts": {"total_s": 300.0}}
    assert len(embed_and_rerank) == 1  # one provider per (kind, api_base), shared by two models
    assert {a: aliases[a].info.get("type") for a in aliases} == {
        "llama-3.1-8b": "llm",
        "qwen-coder": "llm",
        "bge-m3": "embedding",
        "bge-reranker": "reranker",
    }
    assert aliases["qwen-coder"].info["context_length"] == 32768
    assert {a.strategy for a in aliases.values()} == {"least_busy"}
    assert aliases["bge-m3"].settings == {"retries": 1, "timeouts": {"total_s": 600.0}}
    assert preview_import(engine, box, text, litellm=True, allow_private=True).has_changes is False


def test_anthropic_and_proxy_config(engine: Engine, box: SecretBox) -> None:
    text = fixture("litellm_anthropic_proxy.yaml")
    plan = preview_import(engine, box, text, litellm=True, env=ENV)
    assert any("'usage-based-routing-v2' has no equivalent" in w for w in plan.warnings)
    assert any("provider 'vertex_ai' is not supported" in w for w in plan.warnings)
    assert any("vertex_project" in w for w in plan.warnings) is False  # skipped entries add no param noise
    apply_import(engine, box, text, litellm=True, env=ENV, actor="t")
    assert routes(engine) == {
        "claude-sonnet": [("https://api.anthropic.com", "claude-3-5-sonnet-20241022", 1)],
        "team-proxy-gpt": [("https://llm-proxy.example.com", "gpt-4o", 1)],
        "davinci": [("https://api.openai.com/v1", "gpt-3.5-turbo-instruct", 1)],
    }
    with session(engine) as s:
        price = s.get(ModelPrice, "claude-3-5-sonnet-20241022")
        claude = s.exec(select(ModelAlias).where(ModelAlias.alias == "claude-sonnet")).one()
        kinds = {p.api_base: p.kind for p in s.exec(select(Provider))}
    assert price is not None
    assert (price.input_per_mtok, price.output_per_mtok, price.cached_input_per_mtok) == (3.0, 15.0, 0.3)
    assert claude.strategy == "weighted"
    assert claude.info["capabilities"] == {"tools": True, "vision": True, "streaming": True}
    assert kinds == {
        "https://api.anthropic.com": "anthropic",
        "https://llm-proxy.example.com": "openai",
        "https://api.openai.com/v1": "openai",
    }


def test_missing_environment_variable_is_named(engine: Engine, box: SecretBox) -> None:
    with pytest.raises(ConfigImportError, match="environment variable ANTHROPIC_API_KEY is not set"):
        preview_import(engine, box, fixture("litellm_anthropic_proxy.yaml"), litellm=True, env={})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_list": "gpt-4o"}, "model_list: a LiteLLM config needs a model_list"),
        ({"general_settings": {}}, "model_list: a LiteLLM config needs a model_list"),
        ({"model_list": [{"litellm_params": {"model": "openai/x"}}]}, "model_list[0].model_name: is required"),
        ({"model_list": [{"model_name": "x"}]}, "model_list[0].litellm_params.model: is required"),
        ({"model_list": [{"model_name": "x", "litellm_params": {"model": "hosted_vllm/m"}}]},
         "model_list[0].litellm_params.api_base: required for hosted_vllm/ models"),
        ({"model_list": [{"model_name": "x", "litellm_params": {"model": "azure/d", "api_base": "os.environ/AZ"}}]},
         "model_list[0].litellm_params.api_base: os.environ/ references are read only for api_key"),
        ({"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/m", "weight": -1}}]},
         "model_list[0].litellm_params.weight: must be >= 0"),
        ({"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/m", "timeout": "soon"}}]},
         "model_list[0].litellm_params.timeout: must be a number"),
        ({"model_list": [{"model_name": "x", "litellm_params": {"model": "bedrock/m"}}]},
         "model_list: no entry could be converted"),
        ({"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/m"}}], "router_settings": []},
         "router_settings: must be a mapping"),
        ({"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/m"}}],
          "router_settings": {"fallbacks": {"x": ["y"]}}}, "router_settings.fallbacks: must be a list"),
    ],
)  # fmt: skip
def test_bad_litellm_configs_are_refused_readably(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigImportError) as caught:
        read_document(yaml.safe_dump(config), litellm=True)
    assert message in str(caught.value), caught.value.problems


def test_prices_convert_from_per_token_to_per_million() -> None:
    data, _ = convert(
        "model_list:\n- model_name: m\n  litellm_params: {model: openai/m, input_cost_per_token: 1.25e-7}\n"
        "  model_info: {output_cost_per_token: 0.000002}\n"
    )
    assert data["prices"] == [{"input_per_mtok": 0.125, "output_per_mtok": 2.0, "model": "m"}]


def test_entries_sharing_a_deployment_are_merged_with_warnings() -> None:
    data, warnings = convert(
        "model_list:\n"
        "- {model_name: a, litellm_params: {model: openai/m, weight: 0.5}}\n"
        "- {model_name: a, litellm_params: {model: openai/m}}\n"
        "- {model_name: b, litellm_params: {model: openai/m, timeout: 5}}\n"
        "- {model_name: b, litellm_params: {model: openai/m, api_key: k1}}\n"
        "- {model_name: c, litellm_params: {model: openai/n, api_key: k2}}\n"
    )
    assert len(data["providers"]) == 1 and data["providers"][0]["api_key"] == "k1"
    assert [d["name"] for d in data["deployments"]] == ["m@api.openai.com", "n@api.openai.com"]
    assert data["aliases"][0]["deployments"] == [{"deployment": "m@api.openai.com", "weight": 1}]
    assert any("0.5 rounded" in w for w in warnings)
    assert any("'a' already routes to" in w for w in warnings)
    assert any("appears earlier with other settings" in w for w in warnings)
    assert any("another key for https://api.openai.com/v1" in w for w in warnings)


def test_unknown_fallbacks_are_left_out_with_a_warning() -> None:
    data, warnings = convert(
        "model_list:\n- {model_name: a, litellm_params: {model: openai/a}}\n"
        "- {model_name: b, litellm_params: {model: openai/b}}\n"
        "litellm_settings:\n  fallbacks: [{a: [b, elsewhere]}, {zzz: [a]}]\n"
    )
    assert data["aliases"][0]["policy"] == {"fallbacks": ["b"]}
    assert any("litellm_settings.fallbacks[0].a: fallbacks that are not model_names" in w for w in warnings)
    assert any("litellm_settings.fallbacks[1].zzz: ignored" in w for w in warnings)


def test_cli_imports_a_litellm_config(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    assert run_cli(env, "migrate").returncode == 0
    config = str(FIXTURES / "litellm_self_hosted.yaml")
    dry = run_cli(env, "import-config", config, "--litellm", "--allow-private", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "warning: model_list[5]: skipped '*'" in dry.stderr
    assert "create  alias            llama-3.1-8b" in dry.stdout
    done = run_cli(env, "import-config", config, "--litellm", "--allow-private")
    assert done.returncode == 0 and "applied: 16 to create" in done.stdout, done.stdout
    assert "alias: bge-reranker" in run_cli(env, "export-config").stdout
