"""Console sign-in: local accounts, server-side sessions, the event guard."""
