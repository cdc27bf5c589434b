"""SSRF guard for upstream deployment URLs: the gateway sends provider credentials only to public addresses
or to addresses an admin allow-listed.

Three checks, because one is not enough:

1. ``check_url`` when an admin saves a base URL: syntax, literal IPs in every encoding, and every address the
   hostname resolves to right now.
2. ``GuardedResolver`` inside ``aiohttp.TCPConnector``, at connect time, so a name that resolved to a public
   address when saved and to 127.0.0.1 later (DNS rebinding) is still refused.
3. ``literal_ip_middleware`` on the ``aiohttp.ClientSession``: aiohttp never calls the resolver for literal IP
   hosts (``connector._resolve_host`` short-cuts on ``helpers.is_ip_address``), and the middleware runs for every
   redirect hop, so a redirect to ``http://169.254.169.254/`` is refused too.

Limits the caller must respect: the connector caches resolved (already filtered) addresses for its
``ttl_dns_cache`` (10 s by default), so an address removed from the allow-list stays reachable that long;
and sessions must not use a proxy (``trust_env``/``proxy=``), since the resolver would then check the proxy.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc
import yarl
from aiohttp.abc import ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Awaitable[list[str]]]


class SSRFError(ValueError):
    """Why a URL or address was refused, readable by an admin (names the address and how to allow it)."""


class SSRFConnectError(SSRFError, OSError):
    """An ``SSRFError`` that is also an ``OSError``, so aiohttp reports it as a ``ClientConnectorError``."""

    def __init__(self, message: str) -> None:
        # Two-argument form sets .strerror, which ClientConnectorError.__str__ shows.
        OSError.__init__(self, errno.EACCES, message)

    def __str__(self) -> str:
        return str(self.strerror)


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


_PRIVATE = "a private address"
_DOCS = "a documentation address"
_IETF = "an IETF protocol-assignment address"
# IANA special-purpose registries, most specific first; listed explicitly so the verdict does not depend on which
# Python patch release's ipaddress tables are installed.
_SPECIAL = _nets(
    ("0.0.0.0/32", "the unspecified address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", _PRIVATE),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (the range of cloud metadata services such as 169.254.169.254)"),
    ("172.16.0.0/12", _PRIVATE),
    ("192.0.0.0/24", _IETF),
    ("192.0.2.0/24", _DOCS),
    ("192.88.99.0/24", "a deprecated 6to4 relay address"),
    ("192.168.0.0/16", _PRIVATE),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", _DOCS),
    ("203.0.113.0/24", _DOCS),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "a deprecated IPv4-compatible IPv6 address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", _IETF + " (Teredo included)"),
    ("2001:db8::/32", _DOCS),
    ("3fff::/20", _DOCS),
    ("5f00::/16", "an SRv6 segment-identifier address"),
    ("fc00::/7", "a unique-local IPv6 address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a deprecated site-local IPv6 address"),
    ("ff00::/8", "a multicast address"),
)
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _unscoped(ip: IPAddress) -> IPAddress:
    """The address without its IPv6 zone id, which says which interface, not which host."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(int(ip))
    return ip


def _embedded_ipv4(ip: IPAddress, *, with_6to4: bool = True) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 host an IPv6 address really reaches (mapped, translated, NAT64, optionally 6to4)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address", ip.ipv4_mapped
    if ip in _TRANSLATED or ip in _NAT64:
        kind = "an IPv4-translated IPv6 address" if ip in _TRANSLATED else "a NAT64 address"
        return kind, ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if with_6to4 and ip.sixtofour is not None:
        return "a 6to4 address", ip.sixtofour
    return None


def _why_not_public(ip: IPAddress) -> str | None:
    """A phrase naming the special-purpose range ``ip`` is in, or None for a public address."""
    ip = _unscoped(ip)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        kind, v4 = embedded
        inner = _why_not_public(v4)
        return None if inner is None else f"{kind} of {v4}, {inner}"
    for net, label in _SPECIAL:
        if ip.version == net.version and ip in net:
            return label
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved or ip.is_private or ip.is_loopback or ip.is_link_local or not ip.is_global:
        return "a special-purpose address"
    return None


def is_public(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses; embedded IPv4 (mapped, NAT64, 6to4) is judged itself."""
    return _why_not_public(ip) is None


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HEX = re.compile(r"0x[0-9a-f]*")


def _ends_in_number(labels: list[str]) -> bool:
    """The WHATWG rule: a host whose last label is numeric is an IPv4 address, or invalid."""
    last = labels[-1].lower()
    return bool(last) and ((last.isascii() and last.isdigit()) or _HEX.fullmatch(last) is not None)


def _inet_aton_part(part: str) -> int | None:
    part = part.lower()
    if part.startswith("0x"):
        digits = part[2:]
        return int(digits, 16) if digits and _HEX.fullmatch(part) else None
    if not part.isascii() or not part.isdigit():
        return None
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8) if set(part) <= set("01234567") else None
    return int(part)


def _inet_aton(labels: list[str]) -> ipaddress.IPv4Address | None:
    """The C library's reading of ``a``, ``a.b``, ``a.b.c``, ``a.b.c.d`` in decimal, octal (0...) or hex (0x...)."""
    if not 1 <= len(labels) <= 4:
        return None
    values = [_inet_aton_part(label) for label in labels]
    if any(v is None for v in values):
        return None
    parts = [v for v in values if v is not None]
    *head, last = parts
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(parts)):
        return None
    value = last
    for i, v in enumerate(head):
        value |= v << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _literal_ip(host: str) -> IPAddress | None:
    """The address a literal host names in any encoding aiohttp or libc accept; None for a hostname."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise SSRFError(f"IPv6 zone ids are not accepted in upstream URLs ({host!r}); use an address without '%'.")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise SSRFError(f"{host!r} is not a valid IPv6 address.") from None
    labels = host.rstrip(".").split(".")
    if not _ends_in_number(labels):
        return None
    ip = _inet_aton(labels)
    if ip is None:
        raise SSRFError(f"{host!r} looks like an IPv4 address but is not a valid one; write it as a.b.c.d.")
    return ip


def _parse_resolved(address: str) -> IPAddress | None:
    """An address string from a resolver, zone id dropped; None if it is not an address at all."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True)
class AllowList:
    """Admin-approved exceptions: networks (CIDRs or single IPs) and hostnames (exact or ``*.suffix``)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Read admin-typed entries; blank ones are skipped, anything ambiguous is refused with a reason."""
        parsed = dict.fromkeys(_parse_entry(entry.strip()) for entry in entries if entry.strip())
        hosts = tuple(p for p in parsed if isinstance(p, str))
        return cls(tuple(p for p in parsed if not isinstance(p, str)), hosts)

    def allows_host(self, host: str) -> bool:
        """Exact names match case-insensitively, ignoring a trailing dot; ``*.x.y`` matches any name under x.y."""
        key = _host_key(host)
        return any(key.endswith(entry[1:]) if entry.startswith("*.") else key == entry for entry in self.hosts)

    def allows_ip(self, ip: IPAddress) -> bool:
        """Inside a listed network; an IPv6 form that reaches an IPv4 host (mapped, NAT64) is judged by that host."""
        ip = _unscoped(ip)
        candidates: list[IPAddress] = [ip]
        embedded = _embedded_ipv4(ip, with_6to4=False)
        if embedded is not None:
            candidates.append(embedded[1])
        return any(c.version == net.version and c in net for c in candidates for net in self.networks)


def _parse_entry(entry: str) -> IPNetwork | str:
    """One allow-list entry as a network or a lower-case host pattern."""
    bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
    if "://" in entry:
        raise SSRFError(f"Allow-list entry {entry!r} is a URL; write only its host, network or address.")
    if "/" in bare or ":" in bare:
        if "%" in bare:
            raise SSRFError(f"Allow-list entry {entry!r} has an IPv6 zone id; write the address without '%'.")
        try:
            return ipaddress.ip_network(bare)
        except ValueError as exc:
            hint = " (ports are not part of an entry)" if ":" in bare and "/" not in bare else ""
            raise SSRFError(f"Allow-list entry {entry!r} is not a valid network or address{hint}: {exc}.") from None
    key = _host_key(bare)
    if _ends_in_number(key.split(".")):
        try:
            return ipaddress.ip_network(key)
        except ValueError:
            raise SSRFError(
                f"Allow-list entry {entry!r} is not a valid IPv4 address; write a.b.c.d or a CIDR like 10.0.0.0/8."
            ) from None
    name = key[2:] if key.startswith("*.") else key
    if len(name) > 253 or not _HOSTNAME.fullmatch(name):
        raise SSRFError(
            f"Allow-list entry {entry!r} is not a CIDR (10.0.0.0/8), an address, a hostname or a '*.suffix' wildcard."
        )
    return key


def never_allowlistable(ip: IPAddress) -> str | None:
    """Why "this private host is ours" must not admit `ip`, or None: link-local (where cloud metadata
    services live), multicast, unspecified or reserved, also when the IPv4 host is embedded in IPv6."""
    ip = _unscoped(ip)
    embedded = _embedded_ipv4(ip)
    real: IPAddress = embedded[1] if embedded is not None else ip
    if real.is_link_local or real.is_multicast or real.is_unspecified or (real.is_reserved and not real.is_loopback):
        return f"{real} is a link-local, multicast or reserved address (where cloud metadata services live)"
    return None


def check_ip(ip: IPAddress, allow: AllowList, *, host: str = "") -> None:
    """Pass public or allow-listed addresses; refuse the rest, saying what to add to the allow-list."""
    if allow.allows_ip(ip):
        return
    why = _why_not_public(ip)
    if why is None:
        return
    ip = _unscoped(ip)
    exact = f"{ip}/{ip.max_prefixlen}"
    if host and _host_key(host) != str(ip):
        subject = f"Host {_host_key(host)!r} resolves to {ip}, {why}"
        remedy = f"add {exact!r} (or a network containing it) or the hostname {_host_key(host)!r}"
    else:
        subject = f"Address {ip} is {why}"
        remedy = f"add {exact!r} or a network containing it"
    raise SSRFError(f"{subject}. The gateway only calls such upstreams when allowed: {remedy} to the allow-list.")


def check_literal_host(host: str, allow: AllowList) -> None:
    """Check a URL host that is a literal IP (any encoding); hostnames pass, the resolver checks them."""
    ip = _literal_ip(host)
    if ip is not None:
        check_ip(ip, allow)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_url_syntax(url: str, allow: AllowList) -> str:
    """Refuse bad schemes, credentials, ports and disallowed literal IPs without DNS; return the normalised URL."""
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in url):
        raise SSRFError("The upstream URL is empty or contains whitespace or control characters.")
    if "\\" in url:
        raise SSRFError("The upstream URL contains a backslash, which URL parsers disagree about.")
    try:
        netloc = urlsplit(url).netloc
        parsed = yarl.URL(url)
    except ValueError as exc:
        raise SSRFError(f"The upstream URL is not a valid URL: {exc}.") from None
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise SSRFError(f"The upstream URL scheme must be http or https, not {scheme or 'missing'!r}.")
    if "@" in netloc or parsed.raw_user is not None or parsed.raw_password is not None:
        # The URL itself is not echoed: it holds a credential.
        raise SSRFError("The upstream URL may not contain user:password@; store the provider key as the credential.")
    host = parsed.raw_host
    if not parsed.absolute or not host:
        raise SSRFError("The upstream URL must be absolute, like https://api.example.com/v1.")
    if parsed.raw_query_string or parsed.raw_fragment:
        raise SSRFError("The upstream base URL may not carry a query string or fragment.")
    port = parsed.explicit_port
    if port is not None and not 1 <= port <= 65535:
        raise SSRFError(f"The upstream URL port {port} is out of range (1-65535).")
    ip = _literal_ip(host)
    if "[" in netloc and not isinstance(ip, ipaddress.IPv6Address):
        raise SSRFError("Brackets in an upstream URL host may only hold IPv6 addresses.")
    if ip is not None:
        check_ip(ip, allow)
        host_part = f"[{ip}]" if ip.version == 6 else str(ip)
    else:
        name = host.rstrip(".")
        if len(name) > 253 or not _HOSTNAME.fullmatch(name):
            raise SSRFError(f"The upstream URL host {host!r} is not a valid hostname.")
        host_part = name + ("." if host.endswith(".") else "")
    port_part = f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host_part}{port_part}{parsed.raw_path.rstrip('/')}"


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_url(url: str, allow: AllowList, *, resolve: Resolve | None = None) -> str:
    """``check_url_syntax`` plus DNS: refuse if ANY address the host resolves to is not allowed."""
    normalised = check_url_syntax(url, allow)
    parsed = yarl.URL(normalised)
    host = parsed.raw_host or ""
    if _literal_ip(host) is not None or allow.allows_host(host):
        return normalised
    try:
        addresses = await (resolve or _system_resolve)(host, parsed.port or 0)
    except (OSError, UnicodeError) as exc:
        raise SSRFError(f"The gateway cannot resolve host {_host_key(host)!r}: {exc}.") from None
    if not addresses:
        raise SSRFError(f"The gateway cannot resolve host {_host_key(host)!r}: no addresses.")
    for address in addresses:
        ip = _parse_resolved(address)
        if ip is None:
            raise SSRFError(f"The gateway cannot resolve host {_host_key(host)!r}: got {address!r}, not an address.")
        check_ip(ip, allow, host=host)
    return normalised


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """aiohttp resolver that refuses disallowed addresses at connect time (defeats DNS rebinding).

    Disallowed answers are dropped; when none remain it raises ``SSRFConnectError``, which aiohttp wraps in a
    ``ClientConnectorError`` whose ``os_error`` is that exception. The connector does not close a resolver it
    was given, so whoever builds this one closes it.
    """

    def __init__(self, allow: Callable[[], AllowList], inner: aiohttp.abc.AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            # Created here, not in __init__: ThreadedResolver needs a running loop.
            self._inner = aiohttp.ThreadedResolver()
        answers = await self._inner.resolve(host, port, family)
        allow = self._allow()
        if not answers or allow.allows_host(host):
            return answers
        kept: list[ResolveResult] = []
        refusal: str | None = None
        for answer in answers:
            ip = _parse_resolved(answer["host"])
            if ip is None:
                refusal = refusal or f"The resolver returned {answer['host']!r} for {host!r}, not an address."
                continue
            try:
                check_ip(ip, allow, host=host)
            except SSRFError as exc:
                refusal = refusal or str(exc)
                continue
            kept.append(answer)
        if not kept:
            raise SSRFConnectError(refusal or f"No allowed address for {host!r}.")
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def literal_ip_middleware(allow: Callable[[], AllowList]) -> aiohttp.ClientMiddlewareType:
    """Client middleware that checks literal IP hosts, which aiohttp sends past the resolver, on every hop."""

    async def middleware(req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        host = req.url.raw_host
        if host:
            try:
                check_literal_host(host, allow())
            except SSRFError as exc:
                raise aiohttp.ClientConnectorError(req.connection_key, SSRFConnectError(str(exc))) from exc
        return await handler(req)

    return middleware
