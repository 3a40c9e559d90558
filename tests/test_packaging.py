"""A normal (non-editable) install serves the chat page, its static files and the article view."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from fixtures import CORPUS, REPO, SAMPLE_ID

SERVE_FROM_INSTALLED = """
import sys
from pathlib import Path
from fastapi.testclient import TestClient
import qa
from qa import QA, Settings
from qa.server.app import create_app
assert Path(qa.__file__).is_relative_to(Path(sys.argv[1])), qa.__file__
sample = QA(Settings(index_dir=Path(sys.argv[2]), corpus_dir=Path(sys.argv[3])))
sample.ingest()
client = TestClient(create_app(sample))
for path in ("/", "/static/chat.js", "/static/style.css", "/articles/" + sys.argv[4], "/docs"):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert len(response.content) > 200, path
print("served from", qa.__file__)
"""


def test_an_installed_wheel_serves_its_pages(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so building writes nothing into the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "web", source / "web", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(source)], check=True, capture_output=True)
    [wheel] = wheels.glob("qa-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"qa/web/templates/chat.html", "qa/web/static/chat.js", "qa/web/static/style.css"} <= set(names)
    assert "qa/answering/scorer_weights.json" in names  # the answer scorer's weights ship as package data

    target = tmp_path / "installed"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    args = [str(target), str(tmp_path / "index"), str(CORPUS), SAMPLE_ID]
    served = subprocess.run(
        [sys.executable, "-c", SERVE_FROM_INSTALLED, *args], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert served.returncode == 0, served.stderr[-3000:]
    assert str(target) in served.stdout
