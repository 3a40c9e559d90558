"""Every setting is documented in the README, with its environment variable."""

from __future__ import annotations

import pytest

from fixtures import REPO
from qa.settings import Settings


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (REPO / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"| `QA_{name.upper()}` |" in readme, name
        assert field.description, name


def test_settings_come_from_qa_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_TOP_SECRET", "ignored")
    monkeypatch.setenv("QA_PORT", "9123")
    monkeypatch.setenv("QA_API_KEY", "k")
    settings = Settings()
    assert settings.port == 9123 and settings.api_key == "k"
