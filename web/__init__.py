"""The chat page's templates and static files; installed with qa as the package `qa.web` (see pyproject.toml)."""
