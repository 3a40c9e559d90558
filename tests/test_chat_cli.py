"""`qa ask --history` and `qa chat`: the conversation engine from the command line, on the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures import CORPUS, SAMPLE_ID
from qa.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", "--quiet", str(CORPUS)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return runner


def test_ask_with_a_history_file_shows_what_it_searched(runner: CliRunner, tmp_path: Path) -> None:
    history = tmp_path / "turns.json"
    history.write_text(json.dumps([{"question": "Who joined the SCO?", "answer": "India and Pakistan"}]))
    result = runner.invoke(cli, ["ask", "And when was it founded?", "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("searched: And when was it founded? (") and "sco" in result.output.splitlines()[0]
    assert "2001" in result.output and "[1]" in result.output

    result = runner.invoke(
        cli, ["ask", "--json", "And when was it founded?", "--history", "-"], input=history.read_text()
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["query"] != answer["question"] and answer["citations"][0]["article_id"] == SAMPLE_ID


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Invalid JSON"),
        ('[{"answer": "x"}]', "history.0.question: Field required"),
        ('[{"question": "Why?"}, {"question": 3}]', "history.1.question: Input should be a valid string"),
        ('[{"question": " "}]', "history.0.question: the question is empty"),
    ],
)
def test_a_bad_history_file_is_a_one_line_error(runner: CliRunner, tmp_path: Path, content: str, message: str) -> None:
    history = tmp_path / "turns.json"
    history.write_text(content)
    result = runner.invoke(cli, ["ask", "Why?", "--history", str(history)])
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_chat_keeps_the_thread_until_new(runner: CliRunner) -> None:
    script = "Who joined the SCO?\nAnd when was it founded?\n/new\nAnd when was it founded?\n"
    result = runner.invoke(cli, ["chat"], input=script)
    assert result.exit_code == 0, result.output
    assert "India and Pakistan" in result.output and "2001" in result.output
    assert "[1] Kazakhstan, China To Cooperate" in result.output  # citations printed as `qa ask` prints them
    searched = [line for line in result.output.splitlines() if "searched:" in line]
    assert len(searched) == 1 and "sco" in searched[0]  # the follow-up read the thread; after /new, nothing to read
    assert "(new conversation)" in result.output


def test_chat_reports_bad_input_and_goes_on(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["chat"], input="x" * 3000 + "\nWhat does Nurly Zhol mean?\n/quit\nnever asked\n")
    assert result.exit_code == 0, result.output
    assert "Error: the question is 3000 characters long" in result.output
    assert "lighted path" in result.output and "never asked" not in result.output
