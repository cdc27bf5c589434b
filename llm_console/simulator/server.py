"""Run the simulator under uvicorn, blocking or alongside other asyncio work."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from llm_console.simulator.app import create_app
from llm_console.simulator.config import SimulatorConfig

GRACEFUL_SHUTDOWN_S = 5


def _uvicorn_config(host: str, port: int, config: SimulatorConfig | None) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ws="none",
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def serve(host: str = "127.0.0.1", port: int = 8001, config: SimulatorConfig | None = None) -> None:
    """Serve the simulator until interrupted."""
    uvicorn.Server(_uvicorn_config(host, port, config)).run()


class SimulatorServer(uvicorn.Server):
    """A uvicorn server on a socket bound up front, so bind errors raise instead of exiting."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, handle_signals: bool) -> None:
        super().__init__(config)
        self.socket = sock
        self.handle_signals = handle_signals
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.socket.getsockname()[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self.handle_signals:
            with super().capture_signals():
                yield
        else:
            yield

    async def stop(self) -> None:
        """Ask the server to exit and wait for it, closing the listening socket."""
        self.should_exit = True
        try:
            if self.task is not None:
                await self.task
        finally:
            self.socket.close()

    async def __aenter__(self) -> SimulatorServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_async(
    host: str = "127.0.0.1",
    port: int = 8001,
    config: SimulatorConfig | None = None,
    *,
    handle_signals: bool = False,
) -> SimulatorServer:
    """Start serving in a task on the running loop and return once it accepts connections.

    Port 0 picks a free port (see `.port`/`.url`); call `await server.stop()` to shut down.
    """
    sock = _bind(host, port)
    server = SimulatorServer(_uvicorn_config(host, port, config), sock, handle_signals)
    server.task = asyncio.create_task(server.serve(sockets=[sock]), name="llm-simulator")
    while not server.started:
        if server.task.done():
            sock.close()
            server.task.result()
            raise RuntimeError("simulator server exited during startup")
        await asyncio.sleep(0.01)
    return server
