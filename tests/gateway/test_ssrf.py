"""The SSRF guard: URL tables without DNS, injected resolvers, and a real aiohttp client against 127.0.0.1."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from llm_console.gateway.ssrf import (
    AllowList,
    GuardedResolver,
    SSRFConnectError,
    SSRFError,
    check_ip,
    check_literal_host,
    check_url,
    check_url_syntax,
    is_public,
    literal_ip_middleware,
)

NOTHING = AllowList()
ALLOW = AllowList.parse(
    ["10.0.0.0/8", "fd00::/8", "127.0.0.1/32", "192.168.1.7", "VLLM.lan.", "*.internal.example", "  ", ""]
)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://8.8.8.8/v1/", "https://8.8.8.8/v1"),
        ("http://[2606:4700:4700::1111]:8000/v1", "http://[2606:4700:4700::1111]:8000/v1"),
        ("HTTPS://API.Example.COM:443/v1/", "https://api.example.com/v1"),
        ("http://api.example.com:8443", "http://api.example.com:8443"),
        ("http://vllm.example.", "http://vllm.example."),
        ("http://[::ffff:8.8.8.8]/", "http://[::ffff:808:808]"),
        ("http://[2002:808:808::1]/v1", "http://[2002:808:808::1]/v1"),
        ("http://[64:ff9b::808:808]/", "http://[64:ff9b::808:808]"),
        ("http://0x08.0x08.0x08.0x08/", "http://8.8.8.8"),
    ],
)
def test_public_urls_pass_and_are_normalised(url: str, normalised: str) -> None:
    assert check_url_syntax(url, NOTHING) == normalised


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8000/v1", "127.0.0.1"),
        ("http://127.255.0.9/", "127.255.0.9"),
        ("http://10.1.2.3/", "10.1.2.3"),
        ("http://172.16.0.1/", "172.16.0.1"),
        ("http://192.168.1.1/", "192.168.1.1"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://100.64.0.1/", "100.64.0.1"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://0.1.2.3/", "0.1.2.3"),
        ("http://224.0.0.1/", "224.0.0.1"),
        ("http://240.0.0.1/", "240.0.0.1"),
        ("http://255.255.255.255/", "255.255.255.255"),
        ("http://198.18.0.1/", "198.18.0.1"),
        ("http://192.0.2.1/", "192.0.2.1"),
        ("http://192.0.0.8/", "192.0.0.8"),
        ("http://192.88.99.1/", "192.88.99.1"),
        ("http://[::]/", "::"),
        ("http://[::1]:8000/", "::1"),
        ("http://[fd00::1]/", "fd00::1"),
        ("http://[fc12:3456::1]/", "fc12:3456::1"),
        ("http://[fe80::1]/", "fe80::1"),
        ("http://[fec0::1]/", "fec0::1"),
        ("http://[ff02::1]/", "ff02::1"),
        ("http://[ff0e::1]/", "ff0e::1"),
        ("http://[2001:db8::1]/", "2001:db8::1"),
        ("http://[3fff::1]/", "3fff::1"),
        ("http://[2001::1]/", "2001::1"),
        ("http://[100::1]/", "100::1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe"),
        ("http://[::ffff:0:7f00:1]/", "::ffff:0:7f00:1"),
        ("http://[64:ff9b::10.0.0.1]/", "64:ff9b::a00:1"),
        ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1"),
        ("http://[64:ff9b:1::1]/", "64:ff9b:1::1"),
        ("http://[2002:7f00:1::1]/", "2002:7f00:1::1"),
        ("http://[2002:a9fe:a9fe::]/", "2002:a9fe:a9fe::"),
        ("http://[::127.0.0.1]/", "::7f00:1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://0X7F.0.0.1/", "127.0.0.1"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://127.0.1/", "127.0.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://0xa9fea9fe/", "169.254.169.254"),
        ("http://0251.0376.0251.0376/", "169.254.169.254"),
        ("http://0/", "0.0.0.0"),
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "127.0.0.1"),  # fullwidth digits
    ],
)
def test_special_addresses_refused_in_every_encoding(url: str, address: str) -> None:
    with pytest.raises(SSRFError) as caught:
        check_url_syntax(url, NOTHING)
    message = str(caught.value)
    assert address in message
    assert "allow-list" in message


def test_refusal_explains_metadata_and_names_the_entry_to_add() -> None:
    with pytest.raises(SSRFError) as caught:
        check_url_syntax("http://169.254.169.254/", NOTHING)
    assert "metadata" in str(caught.value)
    assert "'169.254.169.254/32'" in str(caught.value)
    with pytest.raises(SSRFError, match=r"IPv4-mapped IPv6 address of 127\.0\.0\.1, a loopback address"):
        check_url_syntax("http://[::ffff:127.0.0.1]/", NOTHING)
    with pytest.raises(SSRFError, match=r"NAT64 address of 10\.0\.0\.1, a private address"):
        check_url_syntax("http://[64:ff9b::10.0.0.1]/", NOTHING)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://api.example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://api.example.com:70/", "http or https"),
        ("//api.example.com/v1", "http or https"),
        ("api.example.com/v1", "http or https"),
        ("http:///v1", "absolute"),
        ("http://user:hunter2@8.8.8.8/", "user:password@"),
        ("http://user@api.example.com/", "user:password@"),
        ("http://@api.example.com/", "user:password@"),
        ("http://:@api.example.com/", "user:password@"),
        ("http://api.example.com:0/", "out of range"),
        ("http://api.example.com:70000/", "not a valid URL"),
        ("http://[fe80::1%25eth0]/", "zone id"),
        ("http://[::1%25lo]:8000/", "zone id"),
        ("http://08.1.1.1/", "not a valid one"),
        ("http://1.2.3.4.5/", "not a valid one"),
        ("http://256.1.1.1/", "not a valid one"),
        ("http://0x/", "not a valid one"),
        ("http://evil.0x10/", "not a valid one"),
        ("http://%31%32%37.0.0.1/", "not a valid"),
        ("http://%6cocalhost/", "not a valid hostname"),
        ("http://[v1.fe]/", "only hold IPv6"),
        ("http://api.example.com/v1?api-version=1", "query"),
        ("http://api.example.com/v1#frag", "query"),
        ("http://api.example.com\t/v1", "whitespace"),
        (" http://api.example.com/v1", "whitespace"),
        ("", "empty"),
        ("http://evil.example\\@8.8.8.8/", "backslash"),
    ],
)
def test_malformed_urls_refused(url: str, reason: str) -> None:
    with pytest.raises(SSRFError, match="(?i)" + reason.replace("?", r"\?")) as caught:
        check_url_syntax(url, NOTHING)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),
        ("2002:808:808::", True),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:c0a8:101::", False),
        ("fe80::1%eth0", False),
        ("ff0e::1", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://10.1.2.3:8000/v1/", "http://10.1.2.3:8000/v1"),
        ("http://[fd00::5]/v1", "http://[fd00::5]/v1"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://192.168.1.7/", "http://192.168.1.7"),
        ("http://0x0a.1/", "http://10.0.0.1"),
        ("http://[::ffff:10.0.0.1]/", "http://[::ffff:a00:1]"),
        ("http://[64:ff9b::a00:1]/", "http://[64:ff9b::a00:1]"),
    ],
)
def test_allow_listed_networks_pass(url: str, normalised: str) -> None:
    assert check_url_syntax(url, ALLOW) == normalised


@pytest.mark.parametrize(
    "url", ["http://127.0.0.2/", "http://192.168.1.8/", "http://[fe80::1]/", "http://[fe00::1]/", "http://172.16.0.1/"]
)
def test_allow_list_is_not_wider_than_written(url: str) -> None:
    with pytest.raises(SSRFError):
        check_url_syntax(url, ALLOW)


def test_allow_list_parse_normalises_and_dedupes() -> None:
    parsed = AllowList.parse(["10.0.0.0/8", "10.0.0.0/8", "[fd00::1]", "Host.Example.", "host.example", "::1"])
    assert parsed.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::1/128"),
        ipaddress.ip_network("::1/128"),
    )
    assert parsed.hosts == ("host.example",)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("vllm.lan", True),
        ("VLLM.LAN.", True),
        ("gpu1.internal.example", True),
        ("a.b.internal.example.", True),
        ("internal.example", False),
        ("evilinternal.example", False),
        ("vllm.lan.evil.example", False),
        ("xvllm.lan", False),
        ("", False),
    ],
)
def test_allows_host(host: str, allowed: bool) -> None:
    assert ALLOW.allows_host(host) is allowed


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.1/8",
        "10.0.0.0/33",
        "fd00::/129",
        "http://vllm:8000",
        "vllm.lan:8000",
        "127.1",
        "0x7f.0.0.1",
        "010.0.0.1",
        "*",
        "*.",
        "a..b",
        "-bad.example",
        "bad host",
        "fe80::1%eth0",
        "gpu*.example",
    ],
)
def test_allow_list_entry_errors(entry: str) -> None:
    with pytest.raises(SSRFError, match="Allow-list entry") as caught:
        AllowList.parse(["10.0.0.0/8", entry])
    assert repr(entry) in str(caught.value)


def test_check_ip_and_literal_host_directly() -> None:
    check_ip(ipaddress.ip_address("1.1.1.1"), NOTHING)
    with pytest.raises(SSRFError, match=r"Host 'db\.example' resolves to 10\.9\.9\.9"):
        check_ip(ipaddress.ip_address("10.9.9.9"), NOTHING, host="db.example.")
    check_literal_host("api.example.com", NOTHING)
    check_literal_host("[fd00::7]", ALLOW)
    for host in ("127.0.0.1", "0x7f.1", "[::1]", "2130706433"):
        with pytest.raises(SSRFError):
            check_literal_host(host, NOTHING)


class FakeDNS:
    """An injected resolver for `check_url`: fixed answers per host, and a record of every lookup."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


async def test_check_url_refuses_when_any_answer_is_private() -> None:
    dns = FakeDNS({"rebind.example": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(SSRFError) as caught:
        await check_url("https://rebind.example:8443/v1", NOTHING, resolve=dns)
    assert "'rebind.example' resolves to 10.0.0.5" in str(caught.value)
    assert "hostname 'rebind.example'" in str(caught.value)
    assert dns.calls == [("rebind.example", 8443)]


async def test_check_url_passes_public_answers_and_allow_listed_names() -> None:
    dns = FakeDNS({"api.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})
    assert await check_url("https://API.example.com/v1/", NOTHING, resolve=dns) == "https://api.example.com/v1"
    assert dns.calls == [("api.example.com", 443)]
    mixed = FakeDNS({"api.example.com": ["93.184.215.14", "10.0.0.5"]})
    assert await check_url("https://api.example.com", ALLOW, resolve=mixed) == "https://api.example.com"
    # An allow-listed hostname is allowed whatever it resolves to, so it is not looked up at all.
    untouched = FakeDNS({})
    gpu = "http://gpu1.internal.example:8000"
    assert await check_url(gpu, ALLOW, resolve=untouched) == gpu
    assert await check_url("http://[fd00::9]:8000/v1", ALLOW, resolve=untouched) == "http://[fd00::9]:8000/v1"
    assert untouched.calls == []


async def test_check_url_resolution_failures() -> None:
    with pytest.raises(SSRFError, match=r"cannot resolve host 'missing\.example': .*not known"):
        await check_url("http://missing.example/", NOTHING, resolve=FakeDNS({}))
    with pytest.raises(SSRFError, match=r"cannot resolve host 'empty\.example': no addresses"):
        await check_url("http://empty.example/", NOTHING, resolve=FakeDNS({"empty.example": []}))
    with pytest.raises(SSRFError, match="not an address"):
        await check_url("http://odd.example/", NOTHING, resolve=FakeDNS({"odd.example": ["not-an-ip"]}))
    with pytest.raises(SSRFError, match="fe80::1, a link-local address"):
        await check_url("http://scoped.example/", NOTHING, resolve=FakeDNS({"scoped.example": ["fe80::1%eth0"]}))


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "http://localhost/"])
async def test_localhost_refused_by_real_resolution(url: str) -> None:
    with pytest.raises(SSRFError, match="Host 'localhost' resolves to") as caught:
        await check_url(url, NOTHING)
    assert "allow-list" in str(caught.value)


async def test_localhost_with_trailing_dot_refused() -> None:
    # Some C libraries resolve "localhost." to loopback and some find nothing; either way it is refused.
    with pytest.raises(SSRFError, match=r"(Host|cannot resolve host) 'localhost'( resolves to|:)"):
        await check_url("http://LOCALHOST./", NOTHING)


async def test_localhost_passes_when_loopback_is_allow_listed() -> None:
    loopback = AllowList.parse(["127.0.0.0/8", "::1"])
    assert await check_url("http://localhost:8000/v1/", loopback) == "http://localhost:8000/v1"


def answer(host: str, address: str, port: int = 80) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)


class FixedResolver(AbstractResolver):
    """An aiohttp resolver with fixed answers, standing in for DNS that changed since the URL was saved."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [answer(host, a, port) for a in self.addresses]

    async def close(self) -> None:
        self.closed = True


async def test_guarded_resolver_filters_and_follows_the_current_allow_list() -> None:
    current = [NOTHING]
    inner = FixedResolver("93.184.215.14", "10.0.0.5", "::1")
    guard = GuardedResolver(lambda: current[0], inner)
    assert [a["host"] for a in await guard.resolve("api.example.com", 443)] == ["93.184.215.14"]

    rebound = GuardedResolver(lambda: current[0], FixedResolver("10.0.0.5", "::1"))
    with pytest.raises(SSRFConnectError) as caught:
        await rebound.resolve("rebind.example", 443)
    assert isinstance(caught.value, OSError)
    assert "'rebind.example' resolves to 10.0.0.5" in str(caught.value)
    assert caught.value.strerror == str(caught.value)

    current[0] = AllowList.parse(["10.0.0.0/8"])
    assert [a["host"] for a in await rebound.resolve("rebind.example", 443)] == ["10.0.0.5"]
    current[0] = AllowList.parse(["rebind.example"])
    assert [a["host"] for a in await rebound.resolve("rebind.example", 443)] == ["10.0.0.5", "::1"]

    await guard.close()
    assert inner.closed


@contextlib.asynccontextmanager
async def upstream() -> AsyncIterator[int]:
    """A tiny aiohttp server on 127.0.0.1: /ok serves, /hop redirects to the literal 127.0.0.1 address."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="served")

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/hop", hop)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def guarded_session(allow: Callable[[], AllowList], *, middleware: bool) -> AsyncIterator[aiohttp.ClientSession]:
    resolver = GuardedResolver(allow)
    middlewares = (literal_ip_middleware(allow),) if middleware else ()
    try:
        connector = aiohttp.TCPConnector(resolver=resolver)
        async with aiohttp.ClientSession(connector=connector, middlewares=middlewares) as session:
            yield session
    finally:
        await resolver.close()


async def test_real_client_refuses_localhost_until_allowed() -> None:
    current = [NOTHING]
    async with upstream() as port, guarded_session(lambda: current[0], middleware=True) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(f"http://localhost:{port}/ok")
        assert isinstance(caught.value.os_error, SSRFError)
        assert "Host 'localhost' resolves to" in str(caught.value)
        assert "allow-list" in str(caught.value)

        # The runtime swaps the list; the same session now connects.
        current[0] = AllowList.parse(["127.0.0.0/8", "::1"])
        async with session.get(f"http://localhost:{port}/ok") as resp:
            assert resp.status == 200
            assert await resp.text() == "served"


async def test_real_client_served_when_loopback_allowed_from_the_start() -> None:
    loopback = AllowList.parse(["127.0.0.0/8", "::1/128"])
    async with upstream() as port, guarded_session(lambda: loopback, middleware=True) as session:
        async with session.get(f"http://localhost:{port}/ok") as resp:
            assert await resp.text() == "served"


async def test_resolver_catches_hex_ip_hosts_that_aiohttp_resolves_through_libc() -> None:
    async with upstream() as port, guarded_session(lambda: NOTHING, middleware=False) as session:
        with pytest.raises(aiohttp.ClientConnectorError, match=r"127\.0\.0\.1, a loopback address"):
            await session.get(f"http://0x7f.1:{port}/ok")


async def test_literal_ips_skip_the_resolver_so_the_middleware_guards_them() -> None:
    async with upstream() as port:
        # Pins the aiohttp behaviour the middleware exists for: a literal IP never reaches the resolver.
        async with guarded_session(lambda: NOTHING, middleware=False) as bare:
            async with bare.get(f"http://127.0.0.1:{port}/ok") as resp:
                assert await resp.text() == "served"
        async with guarded_session(lambda: NOTHING, middleware=True) as session:
            with pytest.raises(aiohttp.ClientConnectorError) as caught:
                await session.get(f"http://127.0.0.1:{port}/ok")
            assert isinstance(caught.value.os_error, SSRFError)
            assert "Address 127.0.0.1 is a loopback address" in str(caught.value)


async def test_redirect_to_a_literal_ip_is_refused() -> None:
    by_name = AllowList.parse(["localhost"])
    async with upstream() as port, guarded_session(lambda: by_name, middleware=True) as session:
        async with session.get(f"http://localhost:{port}/ok") as resp:
            assert await resp.text() == "served"
        with pytest.raises(aiohttp.ClientConnectorError, match=r"Address 127\.0\.0\.1 is a loopback address"):
            await session.get(f"http://localhost:{port}/hop")
