"""Areas still being built: each says what is coming, with no invented figures."""

from __future__ import annotations

from llm_console.components.layout import coming_soon, console_page

# (route, title, what is coming, items); empty while every area in the sidebar is built.
PLANNED: list[tuple[str, str, str, list[str]]] = []


def _register(route: str, title: str, what: str, items: list[str]) -> None:
    console_page(route, title)(lambda: coming_soon(what, items))


for _route, _title, _what, _items in PLANNED:
    _register(_route, _title, _what, _items)
