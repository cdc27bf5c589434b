"""Rate-limit analytics: the limiter's refusals over time, top consumers, breach episodes and abuse patterns
(a key's sudden spike, bursts of refused credentials from one address). Operators and up."""

from __future__ import annotations

import reflex as rx

from llm_console import routes
from llm_console.components.filters import filter_errors
from llm_console.components.layout import console_page
from llm_console.components.throttle_analytics import (
    abuse_patterns,
    breach_timeline,
    refusals_chart,
    toolbar,
    top_consumers,
)
from llm_console.components.widgets import stat_card
from llm_console.state.throttle_analytics import ThrottleAnalyticsState


@console_page(routes.ANALYTICS_LIMITS, "Rate-limit analytics", on_load=[ThrottleAnalyticsState.load])
def throttle_analytics() -> rx.Component:
    S = ThrottleAnalyticsState
    return rx.vstack(
        toolbar(S),
        filter_errors(S),
        rx.flex(rx.foreach(S.cards, stat_card), gap="12px", wrap="wrap", width="100%", id="throttle-cards"),
        refusals_chart(S),
        top_consumers(S),
        breach_timeline(S),
        abuse_patterns(S),
        spacing="4",
        width="100%",
    )
