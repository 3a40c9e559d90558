"""Reading article files: formats, cleaning of scraped text, ids, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import CORPUS, SAMPLE_ID, SHARED
from qa.articles.reading import iter_article_files, read_bytes, read_file
from qa.errors import InvalidArticle


def test_sample_article_is_cleaned_of_site_chrome() -> None:
    [article] = read_file(CORPUS / SAMPLE_ID, CORPUS)
    assert article.id == SAMPLE_ID
    assert article.title == 'Kazakhstan, China To Cooperate In "New Silk Road" Global Trade Expansion'
    assert article.author == "Azamat Batyrov"
    assert article.published == "2017-06-11"
    for chrome in ("Last update", "Newsroom logo", "\nNone\n", "/ Ak Orda", "By Azamat"):
        assert chrome not in article.text
    assert article.text.startswith("On Thursday, Kazakhstan’s President Nursultan Nazarbayev")
    assert article.text.endswith("in the summer of 2018.")


def test_bbc_style_text_takes_the_headline_as_title() -> None:
    [article] = read_bytes(b"Ad sales boost Time Warner profit\n\nQuarterly profits rose 76%.\n", "business/001.txt")
    assert (article.id, article.title, article.text) == (
        "business/001.txt",
        "Ad sales boost Time Warner profit",
        "Quarterly profits rose 76%.",
    )


def test_latin1_file_falls_back_instead_of_failing() -> None:
    [article] = read_bytes("Café owners\n\nThe café in Zürich reopened.".encode("latin-1"), "x.txt")
    assert article.text == "The café in Zürich reopened."


@pytest.mark.skipif(not (SHARED / "data/bbc-news").exists(), reason="../shared/data/bbc-news is not here")
def test_the_latin1_bbc_article_reads() -> None:
    folder = SHARED / "data/bbc-news/sport"
    [article] = read_file(folder / "199.txt", folder)
    assert article.id == "199.txt"
    assert "\ufffd" not in article.text and len(article.text) > 200


def test_jsonl_in_the_squad_format(tmp_path: Path) -> None:
    lines = [
        {
            "id": "a1",
            "title": "One",
            "text": "First text.",
            "url": "https://ex.com/1",
            "published": "2020-01-02",
        },
        {"id": "a2", "title": "Two", "text": "Second text.", "author": "Ann", "source": "wire"},
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    articles = read_file(path, tmp_path)
    assert [a.id for a in articles] == ["a1", "a2"]
    assert articles[0].url == "https://ex.com/1" and articles[0].published == "2020-01-02"
    assert articles[1].author == "Ann" and articles[1].source == "wire"


def test_json_list_and_ids_from_urls(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"url": "https://www.example.com/news/story-1.html", "text": "Body."}]))
    [article] = read_file(path, tmp_path)
    assert article.id == "example.com/news/story-1"
    assert article.title  # never empty


def test_html_main_text_and_metadata_are_extracted() -> None:
    html = b"""<html><head><title>Site | Big news</title>
    <link rel="canonical" href="https://news.example.org/big-news">
    <meta name="author" content="Jane Doe"><meta property="article:published_time" content="2021-05-04">
    </head><body><nav>Home | World | Sport</nav><article><h1>Big news</h1>
    <p>The council approved the new bridge across the river on Tuesday after a long debate.</p>
    <p>Construction is expected to start next spring and last for two years, officials said.</p>
    </article><footer>Copyright Example News</footer></body></html>"""
    [article] = read_bytes(html, "big.html")
    assert article.title == "Big news"
    assert article.author == "Jane Doe"
    assert article.published == "2021-05-04"
    assert article.url == "https://news.example.org/big-news"
    assert article.id == "news.example.org/big-news"
    assert "council approved the new bridge" in article.text
    assert "Home | World" not in article.text and "Copyright" not in article.text


def test_markdown_front_matter_and_heading() -> None:
    md = b"---\nauthor: Sam Lee\npublished: 2022-03-01\n---\n# A heading\n\nSome **bold** text with a [link](https://x.y).\n"
    [article] = read_bytes(md, "notes/a.md")
    assert (article.id, article.title, article.author, article.published) == (
        "notes/a.md",
        "A heading",
        "Sam Lee",
        "2022-03-01",
    )
    assert article.text == "Some bold text with a link."


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"  \n\n ", "empty"),
        ("photo.jpg", b"\xff\xd8\xff", "unsupported file type"),
        ("broken.json", b'{"id": "x", "text": ', "invalid JSON"),
        ("notext.json", b'{"id": "x", "title": "t"}', "missing or empty 'text'"),
        ("binary.txt", b"abc\x00\x01\x02", "binary"),
        ("lines.jsonl", b'{"id": "a", "text": "ok"}\nnot json\n', "invalid JSON"),
        ("wrong.json", b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_files_raise_a_one_line_error_naming_the_file(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidArticle) as caught:
        read_bytes(data, name)
    message = str(caught.value)
    assert name in message and reason in message and "\n" not in message


def test_folders_are_walked_recursively_skipping_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/deep.txt").write_text("T\n\nBody.")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden/x.txt").write_text("T\n\nBody.")
    found = [(f.relative_to(tmp_path).as_posix(), root) for f, root in iter_article_files([tmp_path])]
    assert found == [("a/b/deep.txt", tmp_path)]
