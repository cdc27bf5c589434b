"""Overview page: figures from the usage service, pushed every couple of seconds while the tab is open."""

from __future__ import annotations

import asyncio

import reflex as rx

from llm_console import routes
from llm_console.auth.cookies import session_token
from llm_console.auth.guard import current_user
from llm_console.presenters.overview import overview_view
from llm_console.services.context import get_context
from llm_console.services.usage import OverviewData

LIVE_INTERVAL_S = 2.0


class OverviewState(rx.State):
    cards: list[dict[str, str]] = []
    week_cards: list[dict[str, str]] = []
    providers: list[dict[str, str]] = []
    top_users: list[dict[str, str]] = []
    top_keys: list[dict[str, str]] = []
    chart: list[dict[str, int | str]] = []
    latest: list[dict[str, str]] = []
    as_of: str = ""
    total_requests: int = 0
    _live_generation: int = 0

    def _apply(self, data: OverviewData) -> None:
        view = overview_view(data)
        self.cards, self.week_cards, self.chart, self.latest = view.cards, view.week_cards, view.chart, view.latest
        self.providers, self.top_users, self.top_keys = view.providers, view.top_users, view.top_keys
        self.as_of, self.total_requests = view.as_of, data.day.requests

    @rx.event
    async def load(self) -> rx.event.EventSpec:
        if await current_user(self) is None:
            return rx.redirect(routes.LOGIN, replace=True)
        self._apply(await get_context().overview.get())
        self._live_generation += 1
        return OverviewState.live(self._live_generation)

    @rx.event(background=True)
    async def live(self, generation: int) -> None:
        """Push fresh figures until the tab closes, navigates away or a newer loop starts."""
        from llm_console.llm_console import app

        while True:
            await asyncio.sleep(LIVE_INTERVAL_S)
            async with self:
                token = self.router.session.client_token
                cookie = self.router.headers.cookie
                stale = generation != self._live_generation or self.router.url.path != routes.OVERVIEW
            if stale or token not in app.event_namespace.token_to_sid:
                return
            if await get_context().sessions.resolve(session_token(cookie)) is None:
                return
            data = await get_context().overview.get()
            async with self:
                self._apply(data)
