"""`qa eval`: the metric code on a tiny hand-made data set whose right answers are known."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa import QA, Answer
from qa.backends.base import PassageRow
from qa.cli import cli
from qa.evaluation import Question, format_table, judge, load_questions, normalise, run
from qa.retrieval.hybrid import Candidate

ARTICLES = [
    {"id": "bees", "title": "Bees", "text": "Honey bees communicate the direction of flowers with a waggle dance."},
    {
        "id": "volcano",
        "title": "Volcano",
        "text": "Mount Etna in Sicily erupted again in 2021, covering Catania in ash.",
    },
    {"id": "chess", "title": "Chess", "text": "Magnus Carlsen became world chess champion in 2013 by beating Anand."},
]
QUESTIONS = [
    {
        "id": "q1",
        "question": "How do honey bees show where flowers are?",
        "article_id": "bees",
        "answers": ["waggle dance"],
    },
    {"id": "q2", "question": "Which city was covered in ash by Etna?", "article_id": "volcano", "answers": ["Catania"]},
    {
        "id": "q3",
        "question": "Who did Carlsen beat to become chess champion?",
        "article_id": "chess",
        "answers": ["Anand"],
    },
    {"id": "q4", "question": "When did Carlsen become world champion?", "article_id": "chess", "answers": ["1999"]},
]
OFFTOPIC = [
    {"id": "o1", "question": "What is the boiling point of liquid nitrogen?", "article_id": "x", "answers": ["-196"]},
    {"id": "o2", "question": "Who painted the Mona Lisa?", "article_id": "y", "answers": ["Leonardo"]},
]


def write_dataset(
    folder: Path, articles: Sequence[Mapping[str, object]], questions: Sequence[Mapping[str, object]]
) -> Path:
    folder.mkdir(parents=True)
    (folder / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return folder


def candidate(passage_id: int, text: str, article_id: str = "a") -> Candidate:
    row = PassageRow(passage_id, article_id, "T", None, None, 0, len(text), text)
    return Candidate(row, similarity=0.5, fused=1.0 / passage_id)


def test_judge_finds_the_first_hit_after_normalising_case_and_space() -> None:
    question = Question(id="q", question="?", article_id="b", answers=["New  York"])
    ranking = [
        candidate(1, "Paris is big."),
        candidate(2, "It moved to new\nyork city.", "b"),
        candidate(3, "New York"),
    ]
    answer = Answer(
        question="?",
        answer="It moved to new york city. [1] Paris is big. [2]",
        abstained=False,
        confidence=0.9,
        citations=[],
    )
    outcome = judge(question, answer, ranking, 0.01)
    assert outcome.first_hit == 2
    assert outcome.article_in_top5 and outcome.answer_right and not outcome.abstained
    wrong = Answer(
        question="?",
        answer="Paris is big. [1] It moved to New York. [2]",
        abstained=False,
        confidence=0.9,
        citations=[],
    )
    assert not judge(question, wrong, ranking, 0.01).answer_right  # only the first sentence counts
    assert normalise("  A\tB \n C ") == "a b c"


def test_an_abstention_is_never_a_right_answer() -> None:
    question = Question(id="q", question="?", answers=["x"])
    answer = Answer(question="?", answer="x", abstained=True, confidence=0.1, citations=[])
    assert not judge(question, answer, [], 0.0).answer_right


def test_metrics_on_a_tiny_dataset(qa: QA, tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "tiny", ARTICLES, QUESTIONS)
    offtopic = write_dataset(tmp_path / "off", [], OFFTOPIC)
    qa.ingest([dataset / "articles.jsonl"])
    report = run(qa, load_questions(dataset), load_questions(offtopic))
    # Each article is one passage, so every answerable question hits at rank 1 - except q4, whose
    # accepted answer (1999) is in no passage at all.
    assert report.hits == {1: 0.75, 5: 0.75, 20: 0.75}
    assert report.mrr == 0.75
    assert report.article_recall_at_5 == 1.0
    assert report.answer_accuracy == 0.75
    assert report.answered_share == 1.0
    assert report.offtopic_abstained == 1.0 and report.abstention_accuracy == 1.0
    assert report.passages == 3 and report.mean_passage_words == pytest.approx(11.3, abs=0.1)
    # q1 ("How do honey bees show ...") asks for a manner; "When did ..." and the others do not.
    assert report.why_how_questions == 1 and report.why_how_answer_accuracy == 1.0
    assert "why and how      1.000" in format_table(report)


def test_unanswerable_questions_measure_abstention_and_every_answer_counts_for_calibration(
    qa: QA, tmp_path: Path
) -> None:
    unanswerable = {"id": "u1", "question": "Who won the 2022 Tour de France?", "article_id": "chess"}
    dataset = write_dataset(tmp_path / "tiny", ARTICLES, [*QUESTIONS, {**unanswerable, "answerable": False}])
    qa.ingest([dataset / "articles.jsonl"])
    report = run(qa, load_questions(dataset), load_questions(write_dataset(tmp_path / "off", [], OFFTOPIC)))
    assert report.questions == 4 and report.hits[1] == 0.75  # retrieval and answers: answerable questions only
    assert report.unanswerable_questions == 1 and report.abstained_when_unanswerable == 1.0
    assert report.unanswerable_balanced_accuracy == (report.answered_share + 1.0) / 2
    assert sum(b.answers for b in report.reliability) == 4 + 1 + 2  # withheld answers are judged too
    assert 0.0 <= report.ece <= 1.0
    assert report.min_confidence == qa.min_confidence
    printed = format_table(report)
    assert "unanswerable" in printed and "ECE" in printed


def test_the_eval_command_prints_json(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "tiny", ARTICLES, QUESTIONS)
    result = CliRunner().invoke(cli, ["eval", str(dataset), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["questions"] == 4 and report["hits"]["hit@1"] == 0.75


def test_eval_refuses_an_empty_existing_index(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "tiny", ARTICLES, QUESTIONS)
    result = CliRunner().invoke(cli, ["eval", str(dataset), "--index", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "is empty" in result.output
