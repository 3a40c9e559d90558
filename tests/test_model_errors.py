"""A model that cannot be loaded is the server's fault: 503 with a one-line message, never a 400 or a 500."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from qa import QA, Settings
from qa.server.app import create_app


def test_a_model_that_fails_to_load_is_a_503(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    qa = QA(Settings(index_dir=tmp_path / "index", model=str(broken)))
    with TestClient(create_app(qa), raise_server_exceptions=False) as client:
        response = client.post("/api/ask", json={"question": "Is anyone there?"})
    assert response.status_code == 503, response.text
    assert response.json()["error"].startswith(f"cannot load model {str(broken)!r}")
    assert "\n" not in response.json()["error"]
