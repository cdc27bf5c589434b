"""Alert channels' addresses, checked before they are stored: a webhook URL and e-mail recipients.

The checks give readable `AlertError`s for the rule form. Webhook URLs are not resolved here: delivery
sends only a notice and reads back only a status, and link-local (cloud metadata) literals are refused.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from llm_console.gateway.ssrf import never_allowlistable
from llm_console.services.users import UserError, normalize_email

MAX_URL = 2000
MAX_RECIPIENTS = 20


class AlertError(ValueError):
    """A readable reason an alert rule was refused (shown on the page as it is)."""


def mask_url(url: str) -> str:
    """Scheme and host only: Slack-style URLs carry their secret in the path."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/***"


def check_webhook_url(raw: str) -> str:
    """An http(s) URL with a host, no credentials, no whitespace; never a link-local (metadata) address."""
    url = raw.strip()
    if len(url) > MAX_URL:
        raise AlertError(f"the webhook URL is longer than {MAX_URL} characters")
    if any(c.isspace() for c in url) or not url.isprintable():
        raise AlertError("the webhook URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise AlertError("the webhook URL is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise AlertError(
            "the webhook URL must start with https:// (or http://), e.g. https://hooks.slack.com/services/…"
        )
    if not host:
        raise AlertError("the webhook URL has no host name")
    if parts.username or parts.password:
        raise AlertError("put no user name or password in the webhook URL")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    why = never_allowlistable(ip) if ip is not None else None
    if why:
        raise AlertError(f"the webhook URL's host is refused: {why}")
    return url


def parse_emails(raw: str) -> list[str]:
    """Recipients separated by commas, semicolons, spaces or lines; each a plain address, at most 20."""
    found = [p for p in re.split(r"[\s,;]+", raw.strip()) if p]
    if len(found) > MAX_RECIPIENTS:
        raise AlertError(f"at most {MAX_RECIPIENTS} e-mail recipients per rule")
    out: list[str] = []
    for address in found:
        # The users' own rule: one "@", no spaces, quotes, brackets, commas or control characters, so an
        # address can never add a header to the message.
        try:
            email = normalize_email(address)
        except UserError:
            raise AlertError(f"{address[:80]!r} is not an e-mail address (expected name@example.com)") from None
        if email not in out:
            out.append(email)
    return out
