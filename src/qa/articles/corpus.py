"""Articles from the files and folders of a corpus, read only inside the folders the operator allowed.

Two files never share an id silently: a file's default id is its path in the corpus folder, or, outside it,
its path under the name of the folder it was found in; where ids still collide (an explicit JSON id, a URL
slug), the later file's article is skipped with a message, never replacing the other.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.articles.reading import SUPPORTED_SUFFIXES, read_bytes
from qa.errors import InvalidArticle, QAError
from qa.records import Article

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusFile:
    """A file to read: where it is (absolute; a symlink stays the link) and the id its article gets by default."""

    path: Path
    name: str


@dataclass
class CorpusRead:
    """The articles read from files, the file each came from, and one line per file that could not be read."""

    articles: list[Article] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def located(path: Path) -> Path:
    """An absolute path with its folders resolved but not the file itself, so a symlink keeps its own name."""
    absolute = path.absolute()
    return absolute.parent.resolve() / absolute.name if absolute.name else absolute.resolve()


def default_id(file: Path, given: Path, corpus_dir: Path) -> str:
    """The id of a file's article when the file names none (see the module's docstring)."""
    where, corpus = located(file), corpus_dir.resolve()
    if where.is_relative_to(corpus):
        return where.relative_to(corpus).as_posix()
    folder = given.resolve()
    if folder != where and where.is_relative_to(folder):
        return (Path(folder.name) / where.relative_to(folder)).as_posix()
    return where.name


def corpus_files(paths: Iterable[Path], corpus_dir: Path) -> Iterator[CorpusFile]:
    """Every file in these files and folders (walked recursively, hidden ones left out), with its default id."""
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if not any(part.startswith(".") for part in file.relative_to(path).parts):
                    yield CorpusFile(located(file), default_id(file, path, corpus_dir))
        else:
            yield CorpusFile(located(path), default_id(path, path, corpus_dir))


def read_paths(
    paths: Sequence[Path], allowed: Sequence[Path], corpus_dir: Path, exclude: Path | None = None
) -> CorpusRead:
    """The articles in these files and folders; missing paths are reported, and the folders named are trusted."""
    missing = [f"{path}: no such file or folder" for path in paths if not path.exists()]
    found = read_files(corpus_files([p for p in paths if p.exists()], corpus_dir), [*allowed, *paths], exclude)
    found.skipped[:0] = missing
    return found


def read_files(files: Iterable[CorpusFile], allowed: Sequence[Path], exclude: Path | None = None) -> CorpusRead:
    """The articles in these files; any file that cannot be read is skipped with its message, the rest go on.

    A file is read only when the file actually opened (symlinks and `..` resolved, after opening) lies inside one
    of the `allowed` folders; files under `exclude` (the index folder) are passed over silently.
    """
    found = CorpusRead()
    by_id: dict[str, Article] = {}
    roots = [root.resolve() for root in allowed]
    excluded = exclude.resolve() if exclude is not None else None
    for file in files:
        try:
            articles = read_corpus_file(file, roots, excluded)
        except _Excluded:
            continue
        except QAError as e:
            _skip(found, str(e) if isinstance(e, InvalidArticle) else f"{file.path}: {e}")
            continue
        except Exception as e:  # a reader that fails in any way costs only its own file
            log.debug("reading %s failed", file.path, exc_info=True)
            _skip(found, f"{file.path}: cannot be read ({type(e).__name__}: {_first_line(e)})")
            continue
        for article in articles:
            other = found.files.get(article.id)
            if other is not None and other != str(file.path):
                _skip(found, f"{file.path}: article id {article.id!r} is already used by {other}; not read")
                continue
            by_id[article.id] = article  # within one file, the last copy of an id wins
            found.files[article.id] = str(file.path)
    found.articles = list(by_id.values())
    return found


def read_corpus_file(file: CorpusFile, roots: Sequence[Path], exclude: Path | None = None) -> list[Article]:
    """The articles in one file, opened first and checked after: what was opened must lie inside the roots.

    Checking the path and then opening it would let a symlink swapped in between lead anywhere; here the real
    path of the open file is compared with the roots, and its identity with the file at that path.
    """
    where = str(file.path)
    if exclude is not None and Path(os.path.realpath(file.path)).is_relative_to(exclude):
        raise _Excluded
    if file.path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InvalidArticle(where, f"unsupported file type {file.path.suffix or '(none)'!r}")
    try:
        fd = os.open(file.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise InvalidArticle(where, f"cannot read file ({e.strerror or e})") from e
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(fd)
        real = Path(os.path.realpath(file.path))
        try:
            same = real.stat()
        except OSError:
            same = None
        if same is None or (same.st_dev, same.st_ino) != (opened.st_dev, opened.st_ino):
            raise InvalidArticle(where, "changed while it was being opened; not read")
        if exclude is not None and real.is_relative_to(exclude):
            raise _Excluded
        if not any(real.is_relative_to(root) for root in roots):
            raise InvalidArticle(where, f"leads outside the corpus roots (to {real}); not read")
        if not stat.S_ISREG(opened.st_mode):
            raise InvalidArticle(where, "not a regular file")
        data = handle.read()
    return read_bytes(data, file.name, where=where)


class _Excluded(Exception):
    """The file lies in the index folder (a corpus folder may hold the index)."""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]


def _skip(found: CorpusRead, message: str) -> None:
    found.skipped.append(message)
    log.warning("skipped %s", message)
