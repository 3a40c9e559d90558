"""Extractive answers: the best supporting sentences, each cited as [n], or an abstention."""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.answering.cues import asks_reason_or_manner, gives_reason_or_manner
from qa.answering.support import PRONOUN, ScoredSentence
from qa.records import Answer, Citation, SearchHit
from qa.retrieval.hybrid import Candidate
from qa.text.words import STOPWORDS, stem

NOT_FOUND = "Not found in the articles."
SECOND_SENTENCE = 0.9  # a runner-up joins the answer when it scores at least this share of the best
FOLLOW_ON = 0.05  # ... or this share, when it directly follows the best and refers back to it (nearly always)
REASON_SHARE = 0.1  # for why/how, a sentence giving the reason leads when at least this share as likely as the best
REASON_DEPTH = 6  # ... and among the best this many sentences
RELATED = 0.1  # another passage is cited when its best sentence is at least this share as likely as the lead
# The most of a passage a citation carries: the longest passage chunking makes (256 word pieces x 10 characters).
# Passages stored by a qa without the character cap can be far longer; a citation shows the part around its
# highlight, with `start`/`end` naming that part.
MAX_CITED_CHARS = 2_560


def hits_for(candidates: Sequence[Candidate], sentences: Sequence[Sequence[ScoredSentence]]) -> list[SearchHit]:
    """Search results, each highlighting its passage's best supporting sentence."""
    hits: list[SearchHit] = []
    for candidate, scored in zip(candidates, sentences, strict=True):
        best = max(scored, key=lambda s: s.score, default=None)
        p = candidate.passage
        highlight = (best.start, best.end) if best else (p.start, p.end)
        hits.append(SearchHit(**_citation(0, candidate, highlight).model_dump(exclude={"n"})))
    return hits


def compose(
    question: str,
    candidates: Sequence[Candidate],
    sentences: Sequence[Sequence[ScoredSentence]],
    confidence: float,
    min_confidence: float,
    query: str | None = None,
) -> Answer:
    """The answer: the best supporting sentence(s), each with the [n] of the citation that highlights it.

    Sentence scores are probabilities that the sentence holds an answer; `confidence` is the calibrated
    probability that the answer is right, and below `min_confidence` the answer is withheld (abstained).
    Citations come first for the answer's sentences (one per sentence, or one for two neighbouring
    sentences), then for the other relevant passages, each highlighting its own best sentence. `query` is what
    was searched (a follow-up's question with its conversation's key words), by default the question.
    """
    ranked = sorted((s for passage in sentences for s in passage), key=lambda s: s.score, reverse=True)
    # A sentence that only restates the question (a headline, often) answers nothing: it does not lead.
    asked = {stem(w) for w in re.findall(r"\w+", question.lower())}
    lead_at = next((i for i, s in enumerate(ranked[:3]) if not _restates(asked, _sentence_text(candidates, s))), 0)
    ranked = ranked[lead_at:] + ranked[:lead_at]
    if not ranked or confidence < min_confidence:
        return Answer(
            question=question,
            query=query or question,
            answer=NOT_FOUND,
            abstained=True,
            confidence=round(confidence, 4),
            citations=[],
        )
    best = ranked[0]
    chosen = [best]
    follow_on = _follow_on(candidates, sentences[best.candidate], best)
    reason = _reason_first(question, candidates, ranked)
    if reason is not None:
        # A why/how question: the sentence giving the reason (or manner) leads; the best one completes it.
        chosen = [reason, best]
    elif follow_on is not None and follow_on.score >= FOLLOW_ON * best.score:
        # The next sentence continues the best one ("... it welcomed India and Pakistan"): keep them together.
        chosen.append(follow_on)
    else:
        # Otherwise a runner-up joins when it supports the answer nearly as well and says something new.
        chosen += [s for s in ranked[1:3] if s.score >= SECOND_SENTENCE * best.score and not _overlaps(s, best)][:1]
    spans = [(s.candidate, s.start, s.end) for s in chosen]
    if len(chosen) == 2 and _neighbours(candidates, chosen[0], chosen[1]):
        first, second = sorted(chosen, key=lambda s: s.start)
        spans = [(first.candidate, first.start, second.end)]
    citations: list[Citation] = []
    markers: list[int] = []
    for candidate, start, end in spans:
        citations.append(_citation(len(citations) + 1, candidates[candidate], (start, end)))
        markers.append(len(citations))
    if len(spans) < len(chosen):
        markers.append(markers[0])
    cited = {candidates[c].passage.id for c, _, _ in spans}
    for i, passage in enumerate(sentences):
        if (
            candidates[i].passage.id not in cited
            and passage
            and max(s.score for s in passage) >= RELATED * ranked[0].score
        ):
            best = max(sentences[i], key=lambda s: s.score)
            citations.append(_citation(len(citations) + 1, candidates[i], (best.start, best.end)))
    answer = " ".join(f"{_sentence_text(candidates, s)} [{n}]" for s, n in zip(chosen, markers, strict=True))
    return Answer(
        question=question,
        query=query or question,
        answer=answer,
        abstained=False,
        confidence=round(confidence, 4),
        citations=citations,
    )


def _restates(asked: set[str], sentence: str) -> bool:
    """Every content word of the sentence is already among the question's (stemmed) words."""
    words = [stem(w) for w in re.findall(r"\w+", sentence.lower()) if w not in STOPWORDS]
    return bool(words) and all(w in asked for w in words)


def _reason_first(
    question: str, candidates: Sequence[Candidate], ranked: Sequence[ScoredSentence]
) -> ScoredSentence | None:
    """For a why/how question whose best sentence gives no reason (or manner): a close runner-up that does."""
    if not asks_reason_or_manner(question) or gives_reason_or_manner(question, _sentence_text(candidates, ranked[0])):
        return None
    best = ranked[0]
    return next(
        (
            s
            for s in ranked[1:REASON_DEPTH]
            if s.score >= REASON_SHARE * best.score
            and not _overlaps(s, best)
            and gives_reason_or_manner(question, _sentence_text(candidates, s))
        ),
        None,
    )


def _citation(n: int, candidate: Candidate, highlight: tuple[int, int]) -> Citation:
    p = candidate.passage
    start, end = bounded_window(p.start, p.end, highlight, MAX_CITED_CHARS)
    return Citation(
        n=n,
        article_id=p.article_id,
        title=p.title,
        url=p.url,
        published=p.published,
        passage=p.text[start - p.start : end - p.start],
        start=start,
        end=end,
        highlight=(max(highlight[0], start), min(highlight[1], end)),
        score=round(candidate.similarity, 4),
        source=p.source,
    )


def bounded_window(start: int, end: int, focus: tuple[int, int], most: int) -> tuple[int, int]:
    """At most `most` characters of start..end, around `focus` (its beginning, when it is longer itself)."""
    if end - start <= most:
        return start, end
    middle = (focus[0] + min(focus[1], focus[0] + most)) // 2
    first = min(max(start, middle - most // 2), end - most)
    return first, first + most


def _follow_on(
    candidates: Sequence[Candidate], passage_sentences: Sequence[ScoredSentence], best: ScoredSentence
) -> ScoredSentence | None:
    """The sentence right after `best` in its passage, when it refers back to it with a pronoun."""
    following = [s for s in passage_sentences if s.start >= best.end]
    if not following:
        return None
    nxt = min(following, key=lambda s: s.start)
    p = candidates[best.candidate].passage
    between = p.text[best.end - p.start : nxt.start - p.start]
    text = p.text[nxt.start - p.start : nxt.end - p.start]
    return nxt if "\n\n" not in between and PRONOUN.search(text) else None


def _neighbours(candidates: Sequence[Candidate], a: ScoredSentence, b: ScoredSentence) -> bool:
    """Two sentences of one passage with only white space between them."""
    if a.candidate != b.candidate:
        return False
    first, second = sorted((a, b), key=lambda s: s.start)
    p = candidates[a.candidate].passage
    return not p.text[first.end - p.start : second.start - p.start].strip()


def _sentence_text(candidates: Sequence[Candidate], sentence: ScoredSentence) -> str:
    p = candidates[sentence.candidate].passage
    return p.text[sentence.start - p.start : sentence.end - p.start]


def _overlaps(a: ScoredSentence, b: ScoredSentence) -> bool:
    return a.article_id == b.article_id and a.start < b.end and b.start < a.end
