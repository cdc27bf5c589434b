"""Read-only query modules the console's states call (never SQL in a State)."""
