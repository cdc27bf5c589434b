"""Two console replicas (`llm-console run`, one worker each) on one PostgreSQL database and one Redis.

What a load balancer without sticky sessions needs: a browser tab's Reflex state written through one
replica is read through the other (state lives in Redis, not in a process), a session cookie minted by
one replica is honoured by the other (sessions live in PostgreSQL), and a background job runs in one
process across both, moving to the other when its holder stops.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import psutil
import pytest
import redis
import socketio
from reflex.state import State
from reflex_base.utils.format import format_event_handler

from llm_console.services.leader import lock_key
from llm_console.services.sessions import COOKIE_NAME
from llm_console.state.session import SessionState
from tests.conftest import REDIS_URL, cli_env, free_port, fresh_postgres, missing_service, spawn, stop, wait_http

pytestmark = pytest.mark.postgres

CHECK = format_event_handler(SessionState.event_handlers["check"])
HYDRATE = format_event_handler(State.event_handlers["hydrate"])
SESSION_STATE = SessionState.get_full_name()
NAMESPACE = "/_event"
ADMIN_EMAIL, ADMIN_PASSWORD = "scale-out-admin@example.com", "scale-out-password-1"
LEADER_TTL_S = 2.0
T = TypeVar("T")


@dataclass
class Replica:
    url: str
    proc: Any  # subprocess.Popen[bytes]
    log: Path

    def workers(self) -> list[psutil.Process]:
        """The worker processes of the replica's Reflex server (the launcher's child's children)."""
        (server,) = psutil.Process(self.proc.pid).children()
        return list(server.children())

    def pids(self) -> set[int]:
        """The replica's launcher, Reflex and its worker processes."""
        try:
            root = psutil.Process(self.proc.pid)
            return {root.pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()


@dataclass
class Cluster:
    replicas: list[Replica]
    redis: redis.Redis
    prefix: str
    tokens: list[str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"llmc-e2e-{uuid.uuid4().hex[:10]}"  # this run's leader locks, apart from anyone else's
    shared = {
        "LLMC_REDIS_URL": REDIS_URL,
        "LLMC_REDIS_PREFIX": prefix,
        "LLMC_CONSOLE_WORKERS": "1",
        "LLMC_LEADER_TTL_S": str(LEADER_TTL_S),
        "LLMC_SECRET_KEY": secrets.token_urlsafe(32),  # every replica must hold the same one
        "LLMC_ADMIN_EMAIL": ADMIN_EMAIL,
        "LLMC_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    cluster = Cluster([], client, prefix, [])
    with fresh_postgres() as database_url:
        try:
            for name in ("a", "b"):  # one after the other: each `run` builds the frontend first
                data_dir = tmp_path_factory.mktemp(f"replica-{name}")
                env = cli_env(
                    data_dir, LLMC_DATABASE_URL=database_url, REFLEX_STATES_WORKDIR=str(data_dir / "states"), **shared
                )
                port, log = free_port(), data_dir / "console.log"
                proc = spawn([sys.executable, "-m", "llm_console.cli", "run", "--port", str(port)], env, log)
                cluster.replicas.append(Replica(f"http://127.0.0.1:{port}", proc, log))
                try:
                    wait_http(f"http://127.0.0.1:{port}/ping", 600, proc)
                except (RuntimeError, TimeoutError) as exc:
                    raise AssertionError(f"replica {name} did not start: {exc}\n{log.read_text()[-4000:]}") from exc
            yield cluster
        finally:
            for replica in cluster.replicas:
                stop(replica.proc, timeout_s=40)
            for token in cluster.tokens:
                for key in client.scan_iter(match=f"{token}_*"):
                    client.delete(key)
            client.delete(lock_key("retention", prefix))
            client.close()


def run_async(coro: Coroutine[object, object, T]) -> T:
    """A coroutine on a loop of its own, whatever loop another test module left on this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


async def send(replica: Replica, token: str, name: str, cookie: str | None = None) -> list[dict[str, Any]]:
    """Connect to `replica` as browser tab `token`, send one event, and return what was pushed back."""
    received: list[dict[str, Any]] = []
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("event", lambda data: received.append(data), namespace=NAMESPACE)
    await sio.connect(
        f"{replica.url}?token={token}",
        socketio_path="_event",
        transports=["websocket"],
        headers={"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {},
        wait_timeout=10,
        namespaces=[NAMESPACE],
    )
    try:
        router = {"pathname": "/", "query": {}, "asPath": "/"}
        await sio.emit("event", {"name": name, "payload": {}, "router_data": router}, namespace=NAMESPACE)
        deadline = time.monotonic() + 10
        while not any(SESSION_STATE in update.get("delta", {}) for update in received):
            assert time.monotonic() < deadline, f"no session state came back for {name}: {json.dumps(received)[:500]}"
            await asyncio.sleep(0.1)
    finally:
        await sio.disconnect()
    return received


def session_state(pushed: list[dict[str, Any]]) -> dict[str, Any]:
    """The session state's fields as pushed (their names carry Reflex's suffix: `email_rx_state_`)."""
    merged: dict[str, Any] = {}
    for update in pushed:
        merged.update(update.get("delta", {}).get(SESSION_STATE, {}))
    return {name.removesuffix("_rx_state_"): value for name, value in merged.items()}


async def sign_in(replica: Replica) -> str:
    async with httpx.AsyncClient(base_url=replica.url) as client:
        resp = await client.post("/auth/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert resp.status_code == 303, resp.text
    return resp.cookies[COOKIE_NAME]


def test_a_tabs_state_written_through_one_replica_is_read_through_the_other(cluster: Cluster) -> None:
    a, b = cluster.replicas
    # LLMC_CONSOLE_WORKERS=1; left to Reflex, a replica with Redis would start min(2 x CPUs + 1, 8).
    assert [len(r.workers()) for r in cluster.replicas] == [1, 1]
    token, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    cluster.tokens += [token, stranger]
    cookie = run_async(sign_in(a))
    signed_in = session_state(run_async(send(a, token, CHECK, cookie)))
    assert signed_in["email"] == ADMIN_EMAIL and signed_in["role"] == "admin"
    # The same tab reconnects to the other replica, without its cookie: what `check` stored through
    # replica A comes back from replica B, which never saw this user, so it was read from Redis.
    seen_by_b = session_state(run_async(send(b, token, HYDRATE)))
    assert seen_by_b["email"] == ADMIN_EMAIL and seen_by_b["role"] == "admin"
    # Control: another tab on B has its own, empty state.
    assert session_state(run_async(send(b, stranger, HYDRATE)))["email"] == ""
    # The session cookie minted by A is honoured by B (sessions are rows in the shared database).
    assert session_state(run_async(send(b, stranger, CHECK, cookie)))["email"] == ADMIN_EMAIL


def leader_pid(cluster: Cluster) -> int | None:
    holder = cast(bytes | None, cluster.redis.get(lock_key("retention", cluster.prefix)))
    return int(holder.decode().split(":")[-2]) if holder else None


def test_a_background_job_runs_once_across_replicas_and_moves_when_its_holder_stops(cluster: Cluster) -> None:
    deadline = time.monotonic() + 30
    while (pid := leader_pid(cluster)) is None:
        assert time.monotonic() < deadline, "no replica took the retention job's lock"
        time.sleep(0.2)
    holders = [replica for replica in cluster.replicas if pid in replica.pids()]
    assert len(holders) == 1, f"the lock holder {pid} is a worker of exactly one replica"
    # Every job the console runs once across replicas; both replicas run on this host, so its fleet sampling
    # (containers and GPUs belong to a machine) is one job too.
    jobs = ("alerts", "fleet-engines", f"fleet-host:{socket.gethostname()}", "health-results", "retention")
    deadline = time.monotonic() + 30
    while len(keys := sorted(cluster.redis.scan_iter(match=lock_key("*", cluster.prefix)))) < len(jobs):
        assert time.monotonic() < deadline, f"not every job took its lock: {keys}"
        time.sleep(0.2)
    assert keys == sorted(lock_key(j, cluster.prefix).encode() for j in jobs), "one lock per job, none per worker"
    holder, other = holders[0], next(r for r in cluster.replicas if r is not holders[0])
    stop(holder.proc, timeout_s=40)
    deadline = time.monotonic() + 1.5 * LEADER_TTL_S + 10
    while (pid := leader_pid(cluster)) is None or pid not in other.pids():
        assert time.monotonic() < deadline, f"the other replica did not take over (holder now {pid})"
        time.sleep(0.2)
