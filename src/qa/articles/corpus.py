"""Articles from the files and folders of a corpus, read only inside the folders the operator allowed."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.articles.reading import iter_article_files, read_file
from qa.errors import InvalidArticle
from qa.records import Article

log = logging.getLogger(__name__)


@dataclass
class CorpusRead:
    """The articles read from files, the file each came from, and one line per file that could not be read."""

    articles: list[Article] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def read_paths(paths: Sequence[Path], allowed: Sequence[Path], exclude: Path | None = None) -> CorpusRead:
    """The articles in these files and folders (walked recursively); missing paths are reported."""
    missing = [f"{path}: no such file or folder" for path in paths if not path.exists()]
    found = read_files(iter_article_files(p for p in paths if p.exists()), [*allowed, *paths], exclude)
    found.skipped[:0] = missing
    return found


def read_files(pairs: Iterable[tuple[Path, Path]], allowed: Sequence[Path], exclude: Path | None = None) -> CorpusRead:
    """The articles in (file, folder its id is relative to) pairs.

    A file is read only when its real path (symlinks and `..` resolved) lies inside one of the `allowed` folders;
    anything else is skipped with a warning. Files under `exclude` (the index folder) are passed over silently.
    """
    found = CorpusRead()
    roots = [root.resolve() for root in allowed]
    excluded = exclude.resolve() if exclude is not None else None
    for file, root in pairs:
        resolved = file.resolve()
        if excluded is not None and resolved.is_relative_to(excluded):
            continue  # a corpus folder may hold the index itself
        if not any(resolved.is_relative_to(r) for r in roots):
            _skip(found, f"{file}: leads outside the corpus roots (to {resolved}); not read")
            continue
        try:
            articles = read_file(file, root)
        except InvalidArticle as e:
            _skip(found, str(e))
            continue
        found.articles.extend(articles)
        found.files.update((a.id, str(resolved)) for a in articles)
    return found


def _skip(found: CorpusRead, message: str) -> None:
    found.skipped.append(message)
    log.warning("skipped %s", message)
