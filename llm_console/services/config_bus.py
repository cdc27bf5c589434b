"""Tell every gateway replica at once that the configuration changed, over a Redis channel.

Every configuration change also writes an audit event, which each replica's refresh loop notices within
LLMC_ROUTE_REFRESH_INTERVAL_S; the message only makes it immediate. `announce` is called after a commit
(never before: a replica that reads on the message must see the change) and never raises: a lost message
costs at most one refresh interval. `listen` runs in each gateway process and calls back on every message,
reconnecting with backoff while Redis is away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from llm_console.settings import Settings, get_settings

log = logging.getLogger("llm_console.config_bus")

PUBLISH_TIMEOUT_S = 2.0
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def channel(settings: Settings) -> str:
    """The channel of this installation (under its Redis prefix, so installations sharing a Redis never mix)."""
    return f"{settings.redis_prefix}:config-changed"


def announce(settings: Settings | None = None, what: str = "config") -> bool:
    """Publish "the configuration changed" (`what` names the area, for logs); True when Redis took it.
    Without LLMC_REDIS_URL there is nothing to tell (one process, whose caller invalidates itself)."""
    try:
        settings = settings or get_settings()
    except ValueError as exc:  # settings this process cannot read: it has no Redis to tell either
        log.warning("no configuration announcement: settings unreadable (%s)", type(exc).__name__)
        return False
    if not settings.redis_url:
        return False
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=PUBLISH_TIMEOUT_S, socket_connect_timeout=PUBLISH_TIMEOUT_S
    )
    try:
        client.publish(channel(settings), what[:40])
    except (RedisError, OSError) as exc:  # the refresh loops pick the change up within one interval anyway
        log.warning("could not announce a configuration change on Redis: %s", type(exc).__name__)
        return False
    finally:
        client.close()
    return True


def _safely(on_change: Callable[[], None]) -> None:
    try:
        on_change()
    except Exception:  # a failing callback must not end the subscription
        log.exception("reacting to a configuration announcement failed")


async def listen(settings: Settings, on_change: Callable[[], None], *, ready: asyncio.Event | None = None) -> None:
    """Call `on_change` for every announcement until cancelled; `ready` is set each time a subscription
    is live. After a lost connection it subscribes again (with backoff) and calls `on_change` once, since
    a message may have been missed meanwhile."""
    assert settings.redis_url
    failures = 0
    while True:
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=PUBLISH_TIMEOUT_S)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel(settings))
                if failures:
                    log.warning("configuration announcements are received again")
                    _safely(on_change)
                failures = 0
                if ready is not None:
                    ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        _safely(on_change)
        except (RedisError, OSError) as exc:
            if ready is not None:
                ready.clear()
            if failures == 0:
                log.warning("configuration announcements lost (%s); retrying", type(exc).__name__)
            await asyncio.sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
            failures += 1
        finally:
            await client.aclose()
