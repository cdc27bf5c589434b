"""Fleet & GPUs in the browser, against a real Docker Engine API (podman's) watched by the console's collector.

Two "vLLM" containers (the project's simulator, labelled `llm-console.fleet=1`) start; the page shows them
running with an uptime; one is stopped and shows exited, then started again and shows one restart and a fresh
uptime. A deployment made on the first container's port, before the container, is scraped (failing) first,
so the deployment page can time the model's load on its timeline.

This console has no GPU, so the page says "No NVIDIA driver"; the GPU cards and the GPU-to-model matrix are
checked with a GPU row written into the console's database the way the NVML sampler writes it (the sampler
never touches `fleet_gpus` while NVML is missing, so the row stays), and removed afterwards.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from docker.models.containers import Container
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from llm_console import routes
from llm_console.crypto import SecretBox
from llm_console.db.engine import make_engine, session
from llm_console.db.fleet_tables import FleetEngine, FleetGpu, FleetSample
from llm_console.fleet import store
from llm_console.fleet.types import GpuInfo, GpuProcess
from llm_console.services import providers
from llm_console.services.deployment_admin import DeploymentFields, create_deployment, set_deployment_enabled
from llm_console.settings import Settings
from tests.conftest import free_port, missing_service
from tests.e2e.conftest import Console
from tests.e2e.test_accessibility import assert_accessible, open_settled
from tests.fleet.podman import DockerEngine, run_simulator_container, wait_simulator

pytestmark = pytest.mark.browser

ACTOR = "fleet-e2e"
GiB = 1024**3
SEEDED_HOST = "e2e-seeded-gpu-host"
WAIT_MS = 45_000  # a collector round (1 s) plus a live refresh (5 s), with room for a slow podman


@dataclass(frozen=True)
class Fleet:
    tag: str
    deployment: str
    deployment_id: int
    serving: Container  # serves the deployment's port
    spare: Container  # serves nothing the console routes to
    spare_port: int
    gpu_uuid: str


@pytest.fixture(scope="module")
def docker(console: Console) -> DockerEngine:
    if console.docker is None:
        missing_service(console.docker_missing or "no Docker Engine API for the fleet collector")
    assert console.docker is not None
    return console.docker


@pytest.fixture(scope="module")
def engine(console: Console) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(console.data_dir / 'llm_console.db').as_posix()}")
    yield engine
    engine.dispose()


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def scraped(engine: Engine, deployment_id: int) -> bool:
    with session(engine) as s:
        return s.get(FleetEngine, deployment_id) is not None


@pytest.fixture(scope="module")
def fleet(console: Console, docker: DockerEngine, engine: Engine) -> Iterator[Fleet]:
    tag = secrets.token_hex(3)
    name, port, spare_port = f"fleet-{tag}", free_port(), free_port()
    box = SecretBox(Settings(data_dir=console.data_dir).resolved_secret_key())
    provider = providers.create_provider(
        engine, box, name=name, kind="openai", base_url=f"http://127.0.0.1:{port}/v1", allow_private=True, actor=ACTOR
    )
    dep = create_deployment(engine, provider.id, DeploymentFields("llama-3.1-8b-instruct", name, name), actor=ACTOR)
    # The engine loop knows the deployment once it has scraped it (and failed: nothing listens yet).
    wait_for("the first scrape of the new deployment", lambda: scraped(engine, dep.id))
    serving = run_simulator_container(docker.client, f"llmc-{name}-a", port)
    spare = run_simulator_container(docker.client, f"llmc-{name}-b", spare_port)
    gpu_uuid = f"GPU-e2e-{tag}"
    gpu = GpuInfo(
        gpu_uuid, 0, "NVIDIA H100 80GB HBM3", 13 * GiB, 80 * GiB, 37.0, 12.0, 48.0, 120.0, 700.0, "550.54.15", "12.4",
        (GpuProcess(4242, 12 * GiB, serving.id, serving.name, dep.id, "llama-3.1-8b-instruct"),),
    )  # fmt: skip
    store.save_gpus(engine, SEEDED_HOST, [gpu], datetime.now(UTC))
    try:
        yield Fleet(tag, name, dep.id, serving, spare, spare_port, gpu_uuid)
    finally:
        for container in (serving, spare):
            container.remove(force=True)
        set_deployment_enabled(engine, dep.id, False, actor=ACTOR)
        with session(engine) as s:
            s.execute(delete(FleetGpu).where(FleetGpu.uuid == gpu_uuid))  # type: ignore[arg-type]
            s.execute(delete(FleetSample).where(FleetSample.subject == gpu_uuid))  # type: ignore[arg-type]
            s.commit()


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    p = admin.new_page()
    yield p
    p.close()


def row(page: Page, container: Container) -> Locator:
    return page.locator(f'#fleet-containers tr[data-container="{container.name}"]')


def cell(r: Locator, name: str) -> Locator:
    return r.locator(f"[data-cell={name}]")


UPTIME = re.compile(r"^\d+ (s|min)$")


def test_the_fleet_page_shows_containers_gpus_and_the_matrix(page: Page, console: Console, fleet: Fleet) -> None:
    open_settled(page, f"{console.url}{routes.FLEET}")
    nvml = page.locator('#fleet-sources [data-source="nvml"]')
    expect(nvml).to_contain_text("No NVIDIA driver")
    expect(page.locator('#fleet-sources [data-source="docker"]')).to_have_attribute("data-level", "ok")
    for container in (fleet.serving, fleet.spare):
        r = row(page, container)
        expect(cell(r, "status")).to_have_text("running", timeout=WAIT_MS)
        expect(cell(r, "uptime")).to_have_text(UPTIME)
        expect(cell(r, "restarts")).to_have_text("0")
    expect(row(page, fleet.serving).get_by_role("link", name=fleet.deployment)).to_be_visible()

    card = page.locator(f'[data-gpu="{fleet.gpu_uuid}"]')
    expect(card).to_contain_text("NVIDIA H100 80GB HBM3")
    expect(card).to_contain_text(f"pid 4242 · {fleet.serving.name} · {fleet.deployment}")
    expect(card.get_by_role("progressbar", name="GPU 0 memory used: 16%")).to_have_attribute("aria-valuenow", "16")
    matrix = page.locator("#gpu-matrix")
    header = matrix.get_by_role("columnheader", name=fleet.deployment)
    expect(header).to_be_visible()
    gpu_row = matrix.locator("tr", has=page.get_by_role("rowheader", name="GPU 0", exact=True))
    column = matrix.get_by_role("columnheader").all_inner_texts().index(fleet.deployment)
    expect(gpu_row.locator("th, td").nth(column)).to_have_text("12.0 GiB")
    engine_row = page.locator(f'#fleet-engines tr[data-engine="{fleet.deployment}"]')
    expect(engine_row).to_contain_text("ok", timeout=WAIT_MS)
    assert_accessible(page, f"{routes.FLEET} with containers, a GPU and its matrix")


def test_stopping_and_starting_a_container_changes_its_status_restarts_and_uptime(
    page: Page, console: Console, fleet: Fleet
) -> None:
    open_settled(page, f"{console.url}{routes.FLEET}")
    r = row(page, fleet.spare)
    expect(cell(r, "status")).to_have_text("running", timeout=WAIT_MS)
    expect(cell(r, "restarts")).to_have_text("0")
    fleet.spare.stop(timeout=2)
    expect(cell(r, "status")).to_contain_text("exited", timeout=WAIT_MS)
    expect(cell(r, "uptime")).to_contain_text("exited")
    fleet.spare.start()
    wait_simulator(fleet.spare, fleet.spare_port)
    expect(cell(r, "status")).to_have_text("running", timeout=WAIT_MS)
    expect(cell(r, "restarts")).to_have_text("1", timeout=WAIT_MS)
    expect(cell(r, "uptime")).to_have_text(re.compile(r"^\d+ s$"))


def test_the_deployment_page_shows_its_engine_containers_and_loading_timeline(
    page: Page, console: Console, fleet: Fleet
) -> None:
    open_settled(page, f"{console.url}{routes.FLEET}")
    page.locator(f'#fleet-engines tr[data-engine="{fleet.deployment}"]').get_by_role("link").click()
    page.wait_for_url(re.compile(rf"{re.escape(routes.FLEET_DEPLOYMENT)}\?deployment={fleet.deployment_id}$"))
    expect(page.get_by_role("heading", name=fleet.deployment, exact=True)).to_be_visible()
    expect(page.locator("#deployment-containers")).to_contain_text(fleet.serving.name)
    timeline = page.locator("#loading-timeline")
    expect(timeline).to_contain_text("Started, loading the model")
    # "Model loaded" needs the collector's ready event; when its first good scrape came before the container
    # was stored with its deployment, none is recorded and the page times the load by that scrape instead.
    loaded = re.compile(r"Model loaded in \d+ s|Engine answered \d+ s after this start")
    expect(timeline).to_contain_text(loaded, timeout=WAIT_MS)
    expect(page.locator("#engine-status")).to_contain_text("Scraped", timeout=WAIT_MS)
    # The simulator is idle, so the queue line may lie flat on zero (a box of no height): check it was drawn.
    expect(page.locator("#chart-queue .recharts-line-curve").first).to_have_attribute(
        "d", re.compile(r"^M\d"), timeout=WAIT_MS
    )  # drawn once the live refresh (every 5 s) brings the samples: 5 s alone was a flake on a busy machine
    open_settled(page, f"{console.url}{routes.FLEET_KV}")
    worker = page.locator(f'#kv-workers tr[data-worker="{fleet.deployment}"]')
    expect(worker.get_by_role("progressbar", name=re.compile(rf"^{fleet.deployment} KV cache in use"))).to_be_visible()


def test_the_usage_page_shows_each_engines_queue(page: Page, console: Console, fleet: Fleet) -> None:
    open_settled(page, f"{console.url}{routes.USAGE}")
    queue = page.locator(f'#usage-queues tr[data-engine="{fleet.deployment}"]')
    expect(queue.get_by_role("link", name=fleet.deployment)).to_have_attribute(
        "href", f"{routes.FLEET_DEPLOYMENT}?deployment={fleet.deployment_id}"
    )
    expect(queue).to_contain_text("ok", timeout=WAIT_MS)
    # The chart names the engine once it has a sample in the range, and draws it: a line, or while the range
    # holds fewer than 3 bins (over 24 h one bin may hold every sample so far) dots, as a one-point line has no path.
    chart = page.locator("#chart-queue-depth")
    expect(chart.locator(".recharts-legend-wrapper")).to_contain_text(fleet.deployment, timeout=WAIT_MS)
    drawn = chart.locator(".recharts-line-dot, .recharts-line-curve[d^='M']")
    expect(drawn.first).to_be_attached(timeout=WAIT_MS)
    assert_accessible(page, f"{routes.USAGE} with an engine's queue")
