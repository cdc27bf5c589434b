"""/v1/models lists the aliases a key may use, in OpenAI's list shape."""

from __future__ import annotations

from llm_console.services.deployments import add_deployment

from .fakes import ALIAS, Gateway, GatewayFactory


async def add_aliases(gw: Gateway, *aliases: str) -> None:
    for alias in aliases:
        add_deployment(gw.rt.engine, gw.rt.box, alias=alias, base_url="http://other.test", actor="test")
    await gw.rt.reload_routes()


async def test_lists_every_alias_sorted(gw: Gateway) -> None:
    await add_aliases(gw, "zeta", "alpha")

    resp = await gw.client.get("/v1/models", headers=gw.auth)

    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["alpha", ALIAS, "zeta"]
    assert all(m["object"] == "model" and m["owned_by"] == "llm-console" for m in body["data"])


async def test_scoped_key_sees_only_its_aliases(make_gateway: GatewayFactory) -> None:
    async with make_gateway(allowed_aliases=["alpha", "not-configured"]) as gw:
        await add_aliases(gw, "alpha", "beta")

        resp = await gw.client.get("/v1/models", headers={"x-api-key": gw.key.secret})

        assert resp.status_code == 200
        assert [m["id"] for m in resp.json()["data"]] == ["alpha"]


async def test_alias_with_only_zero_weight_deployments_is_not_listed(gw: Gateway) -> None:
    add_deployment(gw.rt.engine, gw.rt.box, alias="drained", base_url="http://other.test", weight=0, actor="test")
    await gw.rt.reload_routes()

    resp = await gw.client.get("/v1/models", headers=gw.auth)

    assert [m["id"] for m in resp.json()["data"]] == [ALIAS]


async def test_models_needs_a_key(gw: Gateway) -> None:
    for headers in ({}, {"authorization": "Bearer sk-llmc-" + "x" * 40}):
        resp = await gw.client.get("/v1/models", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["error"]["type"] == "authentication_error"


async def test_health_needs_no_key(gw: Gateway) -> None:
    resp = await gw.client.get("/gateway/health")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok"})
