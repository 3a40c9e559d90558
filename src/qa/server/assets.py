"""The chat page's templates and static files: the top-level web/ folder, installed with qa as `qa.web`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi.templating import Jinja2Templates

WEB_DIR = Path(str(files("qa.web")))  # a real folder: qa is installed unzipped, editable or not
templates = Jinja2Templates(directory=WEB_DIR / "templates")  # autoescapes .html templates
