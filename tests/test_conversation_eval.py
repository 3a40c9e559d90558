"""`qa eval` on conversation sets: the CoQA protocol and its metrics, on a small hand-made set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa import QA, Answer
from qa.cli import cli
from qa.conversation_eval import Conversation, GoldTurn, gold_history, judge, load_conversations, run, select
from qa.records import Citation

CARTER = (
    "Police searched the house of John Carter on Monday. The house is in Springfield, a city in Clark County. "
    "Officers took two computers and a box of letters. Carter, a retired teacher, was not at home. "
    "His lawyer said he would answer every question. The search was ordered by Judge Ann Miles."
)
ETNA = (
    "Mount Etna in Sicily erupted on Sunday night. Ash from the volcano covered the city of Catania. "
    "The airport of Catania closed for two days. Scientists said it was the largest eruption since 2021."
)
CHESS = (
    "Magnus Carlsen won the world chess championship in 2013. He beat Viswanathan Anand in Chennai, India. "
    "The match lasted ten games. Carlsen was 22 years old at the time."
)
ARTICLES = {"carter": CARTER, "etna": ETNA, "chess": CHESS}
# (question, answer, rationale in the article)
DIALOGUES = {
    "carter": [
        ("Whose house was searched by police?", "John Carter's", "the house of John Carter"),
        ("In what city?", "Springfield", "The house is in Springfield"),
        ("County?", "Clark County", "a city in Clark County"),
        ("What did officers take?", "two computers and a box of letters", "two computers and a box of letters"),
        ("Was he at home?", "no", "was not at home"),
        ("Who ordered it?", "Judge Ann Miles", "ordered by Judge Ann Miles"),
    ],
    "etna": [
        ("Which volcano erupted in Sicily?", "Mount Etna", "Mount Etna in Sicily erupted"),
        ("What did its ash cover?", "the city of Catania", "covered the city of Catania"),
        ("What closed?", "the airport", "The airport of Catania closed"),
        ("For how long?", "two days", "closed for two days"),
    ],
    "chess": [
        ("Who won the world chess championship in 2013?", "Magnus Carlsen", "Magnus Carlsen won"),
        ("Whom did he beat?", "Viswanathan Anand", "He beat Viswanathan Anand"),
        ("Where?", "Chennai, India", "in Chennai, India"),
        ("How old was he?", "22", "Carlsen was 22 years old"),
    ],
}


def conversation(article_id: str) -> Conversation:
    text = ARTICLES[article_id]
    turns = []
    for i, (question, answer, rationale) in enumerate(DIALOGUES[article_id], start=1):
        start = text.index(rationale)
        turns.append(
            GoldTurn(turn=i, question=question, answer=answer, span_start=start, span_end=start + len(rationale))
        )
    return Conversation(id=f"c-{article_id}", article_id=article_id, turns=turns)


def write_set(folder: Path) -> Path:
    folder.mkdir(parents=True)
    articles = [{"id": a, "title": a.title(), "text": t} for a, t in ARTICLES.items()]
    (folder / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles))
    lines = [conversation(a).model_dump_json() + "\n" for a in ARTICLES]
    (folder / "conversations.jsonl").write_text("".join(lines))
    return folder


def cited(article_id: str, highlight: tuple[int, int]) -> Citation:
    return Citation(
        n=1,
        article_id=article_id,
        title="",
        url=None,
        published=None,
        passage="",
        start=0,
        end=len(CARTER),
        highlight=highlight,
        score=0.5,
    )


def test_judging_a_turn() -> None:
    talk = conversation("carter")
    city = CARTER.index("The house is in")
    right = Answer(
        question="q",
        query="q",
        answer="The house is in Springfield, a city in Clark County. [1]",
        abstained=False,
        confidence=0.5,
        citations=[cited("carter", (city, city + 50))],
    )
    outcome = judge(talk, 1, right, 0.0)
    assert outcome.article_right and outcome.supported and outcome.answer_in_highlight
    elsewhere = Answer(
        question="q", query="q", answer="x [1]", abstained=False, confidence=0.5, citations=[cited("carter", (0, 10))]
    )
    outcome = judge(talk, 1, elsewhere, 0.0)
    assert outcome.article_right and not outcome.supported and not outcome.answer_in_highlight
    wrong_article = right.model_copy(update={"citations": [cited("etna", (city, city + 50))]})
    assert not judge(talk, 1, wrong_article, 0.0).article_right
    abstained = Answer(
        question="q", query="q", answer="Not found in the articles.", abstained=True, confidence=0.0, citations=[]
    )
    outcome = judge(talk, 1, abstained, 0.0)
    assert not outcome.article_right and not outcome.supported and outcome.abstained
    assert judge(talk, 4, right, 0.0).answer_in_highlight is None  # "no" has no text to find


def test_the_gold_history_is_the_turns_before() -> None:
    talk = conversation("chess")
    assert gold_history(talk, 0) == []
    history = gold_history(talk, 2, article_ids=True)
    assert [t.question for t in history] == ["Who won the world chess championship in 2013?", "Whom did he beat?"]
    assert history[1].answer == "Viswanathan Anand" and history[1].article_ids == ["chess"]


def test_select_splits_by_story() -> None:
    talks = [conversation(a) for a in ARTICLES]
    assert [c.article_id for c in select(talks, (0, 2))] == ["carter", "chess"]
    assert [c.article_id for c in select(talks, (1, 2))] == ["etna"]
    assert select(talks, None) == talks


def test_follow_ups_find_their_story_only_with_the_history(qa: QA, tmp_path: Path) -> None:
    folder = write_set(tmp_path / "talks")
    qa.ingest([folder / "articles.jsonl"])
    report = run(qa, load_conversations(folder), ["history", "alone", "paste"])
    history, alone = report.modes["history"], report.modes["alone"]
    assert history["first"] == alone["first"]  # a first turn has no history: the same question either way
    assert history["first"]["article@1"] == 1.0 and history["first"]["turns"] == 3
    assert history["later"]["turns"] == 11
    assert history["later"]["article@1"] == 1.0
    assert alone["later"]["article@1"] is not None and alone["later"]["article@1"] < 1.0  # "Where?", "County?"
    assert history["later"]["support@1"] is not None and history["later"]["support@1"] >= 0.7
    assert set(report.topic_change) == {"history", "alone", "paste"}
    assert report.topic_change["history"] == 1.0  # each next story's first question names its subject


def test_the_eval_command_reads_a_conversation_set(tmp_path: Path) -> None:
    folder = write_set(tmp_path / "talks")
    result = CliRunner().invoke(cli, ["eval", str(folder), "--json", "--modes", "history,alone", "--part", "1/2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["conversations"] == 1 and report["turns"] == 4 and set(report["modes"]) == {"history", "alone"}
    result = CliRunner().invoke(cli, ["eval", str(folder), "--modes", "history"])
    assert result.exit_code == 0, result.output
    assert "with history" in result.output and "article@1: the article of the answer's first citation" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--modes", "guess"], "unknown mode 'guess'"),
        (["--part", "2/2"], "I must be between 0 and N-1"),
        (["--offtopic", "."], "--offtopic measures abstention on question sets"),
    ],
)
def test_bad_conversation_eval_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    folder = write_set(tmp_path / "talks")
    result = CliRunner().invoke(cli, ["eval", str(folder), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
