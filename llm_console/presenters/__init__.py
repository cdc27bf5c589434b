"""Plain functions turning service results into the display-ready dicts and lists pages bind to (no Reflex)."""
