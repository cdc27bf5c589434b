"""Reusable page pieces: the shell, cards, charts, tables."""
