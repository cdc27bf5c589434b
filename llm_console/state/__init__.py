"""Thin Reflex states: one service call per event, no SQL or HTTP here."""
