"""Property-based tests of the readers and the chunker: any file is an article or a declared error, and passage
offsets always slice the article text exactly."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.articles.reading import SUPPORTED_SUFFIXES, read_bytes
from qa.embedding import SentenceTransformerEmbedder
from qa.errors import InvalidArticle
from qa.indexing.chunking import SPECIAL_TOKENS, ChunkingPolicy, passages_for
from qa.records import Article
from qa.text.sentences import sentence_spans

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)

# Text that looks like news some of the time: words, punctuation that ends or does not end sentences, line and
# paragraph breaks, abbreviations, quotes, non-Latin script, and arbitrary characters.
pieces = st.sampled_from(
    ["The", "minister", "said", "Mr.", "U.S.", "J.", "oil", "3.5", "“quoted”", "北京", "نفط", "—", "(", ")", '"']
)
separators = st.sampled_from([" ", " ", " ", ". ", "! ", "? ", "\n", "\n\n", ".\n\n", "\t", "  ", "... "])
newsy = st.lists(st.tuples(pieces, separators), max_size=120).map(lambda p: "".join(w + s for w, s in p))
texts = st.one_of(newsy, st.text(max_size=400), st.text(alphabet=st.characters(codec="utf-8"), max_size=2000))


def word_count(texts: Sequence[str]) -> list[int]:
    """A stand-in tokenizer: one piece per character group of up to 4 characters, so long words cost more."""
    return [sum(-(-len(w) // 4) for w in t.split()) or 1 for t in texts]


@PROPERTY
@given(text=texts, max_tokens=st.integers(8, 64), overlap=st.integers(0, 3))
def test_passages_slice_the_article_text_exactly(text: str, max_tokens: int, overlap: int) -> None:
    article = Article(id="a", text=text)
    passages = passages_for(article, ChunkingPolicy(max_tokens, overlap), word_count)
    for i, passage in enumerate(passages):
        assert passage.ordinal == i
        assert 0 <= passage.start < passage.end <= len(text)
        assert text[passage.start : passage.end] == passage.text
        assert passage.text == passage.text.strip()
        assert word_count([passage.text])[0] + SPECIAL_TOKENS <= max_tokens or len(passage.text.split()) == 1
    # Every word of the article is in some passage.
    covered = [False] * len(text)
    for passage in passages:
        covered[passage.start : passage.end] = [True] * (passage.end - passage.start)
    assert all(covered[i] for i, c in enumerate(text) if not c.isspace())
    assert [p.start for p in passages] == sorted(p.start for p in passages)


@PROPERTY
@given(text=texts)
def test_sentence_spans_slice_the_text(text: str) -> None:
    spans = sentence_spans(text)
    for start, end in spans:
        assert 0 <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(text=newsy)
def test_passages_fit_the_real_model_window(text: str, embedder: SentenceTransformerEmbedder) -> None:
    article = Article(id="a", text=text)
    policy = ChunkingPolicy(32, 1)
    for passage in passages_for(article, policy, embedder.count_tokens):
        assert text[passage.start : passage.end] == passage.text
        assert embedder.count_tokens([passage.text])[0] + SPECIAL_TOKENS <= policy.max_tokens


# -- readers ---------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
article_objects = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none()),
        "title": json_values,
        "text": st.one_of(texts, json_values),
        "url": st.one_of(st.just("https://example.org/a/b.html"), st.just("javascript:alert(1)"), json_values),
        "published": st.one_of(st.just("2024-02-03"), st.text(max_size=20), json_values),
        "author": json_values,
        "body": texts,
    },
)
html_tags = st.sampled_from(["p", "div", "h1", "title", "script", "article", "meta", "a", "br", "b", "img"])
html_docs = st.lists(st.tuples(html_tags, texts), max_size=12).map(
    lambda parts: "<html><body>" + "".join(f"<{t}>{x}</{t}>" for t, x in parts) + "</body></html>"
)
file_bytes = st.one_of(
    st.binary(max_size=600),
    texts.map(str.encode),
    st.lists(article_objects, max_size=3).map(lambda objs: json.dumps(objs).encode()),
    article_objects.map(lambda obj: json.dumps(obj).encode()),
    st.lists(article_objects, max_size=3).map(lambda objs: "\n".join(map(json.dumps, objs)).encode()),
    html_docs.map(str.encode),
    texts.map(lambda t: f"---\ntitle: {t[:30]}\nauthor: x\n---\n# {t[:20]}\n\n{t}".encode()),
    st.sampled_from([b"\xff\xfe" + "utf 16 text".encode("utf-16-le"), b"\xfe\xff\x00a\x00", b"\xef\xbb\xbfBOM"]),
)


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
@settings(
    max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=file_bytes)
def test_any_bytes_are_an_article_or_a_declared_error(suffix: str, data: bytes) -> None:
    try:
        articles = read_bytes(data, f"upload{suffix}")
    except InvalidArticle:
        return
    assert articles
    for article in articles:
        assert article.id.strip() and article.text.strip()
        passages = passages_for(article, ChunkingPolicy(32, 1), word_count)
        assert passages
        assert all(article.text[p.start : p.end] == p.text for p in passages)
