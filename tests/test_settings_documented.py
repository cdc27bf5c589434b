"""Docs are a contract: every setting is documented, and nothing documented is gone."""

from __future__ import annotations

import re

from llm_console.settings import Settings
from tests.conftest import ROOT


def test_every_setting_is_documented_and_nothing_stale() -> None:
    documented = set(re.findall(r"`LLMC_([A-Z0-9_]+)`", (ROOT / "docs" / "settings.md").read_text()))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "undocumented settings"
    assert documented - fields == set(), "documented settings that no longer exist"
