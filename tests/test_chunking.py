"""Passages: sentence-aligned, within the model's window, with offsets that slice the article exactly."""

from __future__ import annotations

import itertools

from fixtures import CORPUS, SAMPLE_ID
from qa.articles.reading import read_file
from qa.embedding import SentenceTransformerEmbedder
from qa.indexing.chunking import ChunkingPolicy, passages_for
from qa.records import Article
from qa.text.sentences import sentence_spans


def test_sentences_respect_abbreviations_initials_and_quotes() -> None:
    text = 'Mr. Smith met Dr. J. Doe in the U.S. on Monday. "It went well," he said. Then they left!'
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == [
        "Mr. Smith met Dr. J. Doe in the U.S. on Monday.",
        '"It went well," he said.',
        "Then they left!",
    ]


def test_a_line_break_always_ends_a_sentence() -> None:
    text = "Headline without a stop\nBody sentence one. Body two."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Headline without a stop",
        "Body sentence one.",
        "Body two.",
    ]


def test_sample_passages_slice_the_text_and_fit_the_window(embedder: SentenceTransformerEmbedder) -> None:
    [article] = read_file(CORPUS / SAMPLE_ID, CORPUS)
    policy = ChunkingPolicy(max_tokens=160, overlap=1)
    passages = passages_for(article, policy, embedder.count_tokens)
    assert len(passages) > 3
    for p in passages:
        assert article.text[p.start : p.end] == p.text
        # The real tokenizer, with [CLS] and [SEP]: nothing the model would silently cut.
        assert len(embedder._model.tokenizer(p.text)["input_ids"]) <= policy.max_tokens
    # Neighbours share a sentence, and together they cover the whole text.
    assert all(b.start < a.end for a, b in itertools.pairwise(passages))
    assert passages[0].start == 0 and passages[-1].end == len(article.text)


def test_a_sentence_longer_than_the_window_is_split_not_truncated(
    embedder: SentenceTransformerEmbedder,
) -> None:
    text = "Short opening sentence. " + " ".join(f"word{i}" for i in range(600)) + ". Short closing sentence."
    article = Article(id="long", text=text)
    policy = ChunkingPolicy(max_tokens=128, overlap=1)
    passages = passages_for(article, policy, embedder.count_tokens)
    covered: set[int] = set()
    for p in passages:
        assert len(embedder._model.tokenizer(p.text)["input_ids"]) <= 128
        covered.update(range(p.start, p.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_passages_prefer_paragraph_breaks(embedder: SentenceTransformerEmbedder) -> None:
    paragraph = "This sentence is about the harbour and its many boats. " * 4
    text = "\n\n".join(paragraph.strip() for _ in range(4))
    passages = passages_for(Article(id="p", text=text), ChunkingPolicy(160, 0), embedder.count_tokens)
    assert all(p.text.endswith("boats.") for p in passages)
    assert all(text[p.start - 2 : p.start] in ("\n\n", "") for p in passages)
