"""Rate limits and budgets: periods, the limit plan of a key, and the counter backends (memory, Redis)."""
