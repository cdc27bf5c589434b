"""Prompt templates: parsing and rendering (`template`), shared by the gateway and the console."""
