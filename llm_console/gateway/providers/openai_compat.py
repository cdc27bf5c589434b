"""OpenAI-compatible upstreams (vLLM, OpenAI, LiteLLM, FakeAI, ...): one pooled client per base URL."""

from __future__ import annotations

import httpx

from llm_console.gateway.routing import Target

# Below the 5 s idle timeout of uvicorn (and so vLLM): reusing a connection the server is closing fails the call.
KEEPALIVE_EXPIRY_S = 4.0


class UpstreamPool:
    """Keeps one `httpx.AsyncClient` per upstream base URL for the life of the gateway."""

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=connect_timeout_s)
        self._limits = httpx.Limits(
            max_connections=1000, max_keepalive_connections=200, keepalive_expiry=KEEPALIVE_EXPIRY_S
        )
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, api_base: str) -> httpx.AsyncClient:
        client = self._clients.get(api_base)
        if client is None:
            client = httpx.AsyncClient(
                base_url=api_base, timeout=self._timeout, limits=self._limits, transport=self._transport
            )
            self._clients[api_base] = client
        return client

    def build_request(self, target: Target, path: str, body: bytes) -> httpx.Request:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        base = target.api_base if target.api_base.endswith("/v1") else f"{target.api_base}/v1"
        return self.client(target.api_base).build_request("POST", f"{base}{path}", content=body, headers=headers)

    async def send(self, target: Target, request: httpx.Request, *, stream: bool) -> httpx.Response:
        return await self.client(target.api_base).send(request, stream=stream)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
