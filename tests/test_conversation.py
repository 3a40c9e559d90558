"""Follow-up questions: the conversation stage's decisions, then whole conversations on the real model."""

from __future__ import annotations

import pytest

from fixtures import SAMPLE_ID
from qa import QA, Article
from qa.conversation import ConversationContext, search_text, stands_alone, trimmed, turn_of
from qa.conversation.anchor import ArticleSentences, locate, locate_turn
from qa.conversation.context import Anchor, ConversationWeights
from qa.conversation.followup import answer_text, history_text, topic_terms, turn_text
from qa.errors import InvalidQuestion
from qa.records import Answer, Citation, Turn

KAZAKHSTAN_OIL = Turn(question="How large are Kazakhstan's oil reserves?", answer="30 billion barrels")
# A second article, so that "its gas" asked alone has a better match than the sample article.
TURKMENISTAN = Article(
    id="turkmenistan-gas",
    title="Turkmenistan bets on its gas",
    published="2017-05-02",
    text=(
        "Turkmenistan holds the fourth largest reserves of natural gas in the world, about 19.5 trillion cubic"
        " meters, most of its gas lying in the giant Galkynysh field.\n\n"
        "Its gas is sold mainly to China through a pipeline that opened in 2009; exports to Russia stopped in 2016"
        " after a price dispute.\n\n"
        "The capital, Ashgabat, is known for its white marble buildings. President Gurbanguly Berdimuhamedow has"
        " ruled the country since 2006."
    ),
)
STORY = (
    "Police searched the house of John Carter on Monday. The house is in Springfield, a city in Clark County. "
    "Officers took two computers and a box of letters. Carter, a retired teacher, was not at home. "
    "His lawyer said he would answer every question. The search was ordered by Judge Ann Miles."
)
HISTORY = [Turn(question="x", answer="y")]


# -- does a question stand alone? ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question",
    [
        "What did he do?",
        "In what city?",
        "County?",
        "Whom?",
        "and what about its gas?",
        "What about the state?",
        "Is Staten Island one?",
        "Where was it held?",
        "What else did they find?",
    ],
)
def test_referring_and_elliptical_questions_do_not_stand_alone(question: str) -> None:
    assert not stands_alone(question, HISTORY)


@pytest.mark.parametrize(
    "question",
    [
        "Who painted the Mona Lisa?",
        "Where is Szczecin?",
        "How many NOCs were there in 2016?",  # "there" after "were" points at nothing
        "What ethnicity is the majority population?",
    ],
)
def test_questions_that_name_their_subject_stand_alone(question: str) -> None:
    assert stands_alone(question, HISTORY)


def test_without_history_every_question_stands_alone() -> None:
    assert stands_alone("What did he do?", [])


# -- what a follow-up carries ---------------------------------------------------------------------------------
def test_a_follow_up_searches_its_own_words_first_then_the_topic() -> None:
    query = search_text("and what about its gas?", [KAZAKHSTAN_OIL])
    assert query.startswith("and what about its gas?")
    carried = query.removeprefix("and what about its gas?")
    assert "kazakhstan" in carried and "oil" in carried and "30" in carried
    assert "large" not in carried  # "how large" says what is asked, not what it is about


def test_the_newest_turn_comes_first_and_terms_are_not_repeated() -> None:
    older = Turn(question="Who won the election in Ruritania?", answer="Rudolf")
    newer = Turn(question="When did Rudolf take office?", answer="in 1894")
    terms = topic_terms([older, newer])
    assert terms.index("1894") < terms.index("ruritania")
    assert terms.count("rudolf") == 1


def test_an_answer_is_read_up_to_its_first_marker_and_yes_no_have_no_text() -> None:
    assert answer_text(Turn(question="q", answer="It rained. [1] Then it snowed. [2]")) == "It rained."
    assert answer_text(Turn(question="q", answer="Yes.")) == ""
    assert answer_text(Turn(question="q", answer="Not found in the articles.")) == ""


def test_a_long_history_is_searched_within_bounds() -> None:
    turns = [Turn(question=f"What about topic{i} and subject{i}?", answer=f"detail{i} " * 200) for i in range(40)]
    assert len(turn_text(turns[0])) <= 300
    text = history_text(turns, max_terms=30)
    assert "topic39" in text and "topic0" not in text  # the newest turns are kept
    assert len(set(text.lower().split())) < 60


# -- where the previous answer sits ---------------------------------------------------------------------------
def test_the_previous_answer_is_found_in_its_sentence() -> None:
    article = ArticleSentences.of(STORY)
    place = locate_turn(Turn(question="In what city?", answer="Springfield"), article, None)
    assert place is not None and "Springfield" in STORY[slice(*article.spans[place])]


def test_a_yes_no_answer_is_placed_by_its_question() -> None:
    article = ArticleSentences.of(STORY)
    place = locate_turn(Turn(question="Did officers take any computers?", answer="yes"), article, None)
    assert place is not None and "computers" in STORY[slice(*article.spans[place])]


def test_a_repeated_mention_is_resolved_by_following_the_thread() -> None:
    text = "Carter lives in Springfield. Rain fell all day. The mayor of Springfield spoke. Carter left."
    article = ArticleSentences.of(text)
    turns = [
        Turn(question="What fell?", answer="rain"),
        Turn(question="Who spoke?", answer="Springfield"),  # both sentences say it; the later one follows rain
    ]
    place = locate(turns, article)
    assert place is not None and "mayor" in text[slice(*article.spans[place])]


def test_distance_after_the_anchor_counts_sentences() -> None:
    anchor = Anchor(sentence=2, sentence_starts=(0, 10, 20, 30, 40))
    assert [anchor.distance(s) for s in (0, 20, 25, 30, 45)] == [-2, 0, 0, 1, 2]


def test_the_bonus_favours_the_anchor_and_what_follows_it() -> None:
    weights = ConversationWeights(anchor=(0.3, 0.2), anchor_before=0.0, prior_sentence=1.0)
    context = ConversationContext(
        "q", "q", prior={"a": 0.5}, anchors={"a": Anchor(1, (0, 10, 20, 30))}, weights=weights
    )
    bonuses = [context.sentence_bonus("a", start) for start in (0, 10, 20, 30)]
    assert bonuses == [0.5, 0.8, 0.7, 0.5]
    assert context.sentence_bonus("elsewhere", 10) == 0.0
    assert context.after_anchor("a", 20) == 1 and context.after_anchor("elsewhere", 20) is None


# -- the client's side of the thread ---------------------------------------------------------------------------
def citation(n: int, article_id: str) -> Citation:
    return Citation(
        n=n,
        article_id=article_id,
        title="",
        url=None,
        published=None,
        passage="p",
        start=0,
        end=1,
        highlight=(0, 1),
        score=0.5,
    )


def test_a_turn_keeps_the_articles_its_sentences_cite() -> None:
    answer = Answer(
        question="Q?",
        query="Q?",
        answer="One. [1] Two. [2]",
        abstained=False,
        confidence=0.5,
        citations=[citation(1, "a"), citation(2, "a"), citation(3, "b")],  # [3] is a further source only
    )
    turn = turn_of(answer)
    assert turn == Turn(question="Q?", answer="One. [1] Two. [2]", article_ids=["a"])


def test_a_thread_keeps_the_most_recent_turns_within_the_limits() -> None:
    turns = [Turn(question=f"question {i}", answer="x" * 10) for i in range(5)]
    assert [t.question for t in trimmed(turns, 3, 1000)] == ["question 2", "question 3", "question 4"]
    assert [t.question for t in trimmed(turns, 5, 45)] == ["question 3", "question 4"]


# -- whole conversations on the real model -------------------------------------------------------------------
@pytest.fixture
def two_countries(sample_qa: QA) -> QA:
    """The sample article on Kazakhstan and a short one on Turkmenistan's gas."""
    sample_qa.add(TURKMENISTAN)
    return sample_qa


def test_its_gas_follows_the_country_of_the_conversation(two_countries: QA) -> None:
    alone = two_countries.ask("and what about its gas?")
    assert alone.citations[0].article_id == TURKMENISTAN.id  # asked alone, the gas article wins

    answer = two_countries.ask("and what about its gas?", history=[KAZAKHSTAN_OIL])
    assert not answer.abstained
    assert answer.citations[0].article_id == SAMPLE_ID
    assert "2.4 trillion cubic meters of natural gas" in answer.answer
    assert answer.query != answer.question and "kazakhstan" in answer.query.lower()


def test_a_question_that_names_another_subject_changes_it(two_countries: QA) -> None:
    answer = two_countries.ask("Who has ruled Turkmenistan since 2006?", history=[KAZAKHSTAN_OIL])
    assert answer.citations[0].article_id == TURKMENISTAN.id
    assert "Berdimuhamedow" in answer.answer
    context = two_countries.context("Who has ruled Turkmenistan since 2006?", [KAZAKHSTAN_OIL])
    assert context.changed_topic and context.query == context.question


def test_the_articles_a_turn_cited_are_followed(two_countries: QA) -> None:
    cited = Turn(
        question="Which country has the Galkynysh field?", answer="Turkmenistan", article_ids=[TURKMENISTAN.id]
    )
    answer = two_countries.ask("When did the pipeline to China open?", history=[cited])
    assert answer.citations[0].article_id == TURKMENISTAN.id and "2009" in answer.answer
    unknown = Turn(question="What happened?", answer="Something", article_ids=["no-such-article"])
    assert not two_countries.ask("and what about its gas?", history=[unknown]).abstained  # an unknown id is ignored


def test_the_server_own_answers_make_a_thread(two_countries: QA) -> None:
    first = two_countries.ask("How large are Kazakhstan's oil reserves?")
    second = two_countries.ask("and what about its gas?", history=[turn_of(first)])
    assert second.citations[0].article_id == SAMPLE_ID
    context = two_countries.context("and what about its gas?", [turn_of(first)])
    assert context.prior.get(SAMPLE_ID) == 1.0 and SAMPLE_ID in context.anchors


def test_a_question_that_stands_alone_abstains_in_a_thread_as_it_would_alone(two_countries: QA) -> None:
    # The conversation's bonus for its own article must not lift an unrelated question over the threshold: it
    # answered the cake question from the Kazakhstan article before (found in the browser).
    question = "What is the recipe for chocolate cake?"
    assert two_countries.ask(question).abstained
    first = two_countries.ask("How large are Kazakhstan's oil reserves?")
    assert two_countries.ask(question, history=[turn_of(first)]).abstained
    # ... while a follow-up that leans on the thread is still answered from it
    assert not two_countries.ask("and what about its gas?", history=[turn_of(first)]).abstained


def test_a_single_question_is_untouched_by_an_empty_history(sample_qa: QA) -> None:
    question = "What does Nurly Zhol mean?"
    alone = sample_qa.ask(question)
    assert alone == sample_qa.ask(question, history=[])
    assert alone.query == question


def test_history_limits_name_the_field(sample_qa: QA) -> None:
    settings = sample_qa.settings
    too_many = [KAZAKHSTAN_OIL] * (settings.max_history_turns + 1)
    with pytest.raises(InvalidQuestion, match=r"^history: 21 turns.*QA_MAX_HISTORY_TURNS"):
        sample_qa.ask("Why?", history=too_many)
    too_long = [Turn(question="Why?", answer="x" * settings.max_history_chars)]
    with pytest.raises(InvalidQuestion, match=r"QA_MAX_HISTORY_CHARS"):
        sample_qa.ask("Why?", history=too_long)
    with pytest.raises(InvalidQuestion, match=r"^history\.1\.question: the question is empty"):
        sample_qa.ask("Why?", history=[KAZAKHSTAN_OIL, Turn(question="  ")])
    with pytest.raises(InvalidQuestion, match=r"^history\.0\.answer: not valid Unicode"):
        sample_qa.ask("Why?", history=[Turn(question="Why?", answer="\ud800")])
