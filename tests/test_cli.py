"""The `qa` command, driven through click's runner on the real model and a temporary index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures import CORPUS, SAMPLE_ID
from qa.cli import EXIT_SKIPPED, cli

COMMANDS = ["ingest", "ask", "search", "list", "delete", "rebuild", "serve", "mcp", "watch", "eval"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(runner: CliRunner, command: str) -> None:
    code, output = run(runner, command, "--help")
    assert code == 0, output
    assert "Example:" in output and f"qa {command}" in output


def test_ingest_ask_search_list_delete(runner: CliRunner) -> None:
    code, output = run(runner, "ingest", "--quiet", str(CORPUS))
    assert code == 0, output
    assert "1 added" in output
    code, output = run(runner, "ingest", "--quiet", str(CORPUS))
    assert code == 0 and "1 unchanged" in output

    code, output = run(runner, "ask", "What does Nurly Zhol mean?")
    assert code == 0, output
    assert "lighted path" in output and "[1]" in output

    code, output = run(runner, "ask", "--json", "How large are Kazakhstan's oil reserves?")
    assert code == 0, output
    answer = json.loads(output)
    assert "30 billion barrels" in answer["answer"] and answer["citations"][0]["n"] == 1

    code, output = run(runner, "search", "--json", "--top-k", "2", "natural gas")
    assert code == 0, output
    assert len(json.loads(output)["results"]) == 2

    code, output = run(runner, "list", "--json")
    assert code == 0 and json.loads(output)["articles"][0]["id"] == SAMPLE_ID

    code, output = run(runner, "delete", SAMPLE_ID)
    assert code == 0 and SAMPLE_ID in output
    code, output = run(runner, "ask", "--json", "What does Nurly Zhol mean?")
    assert json.loads(output)["abstained"] is True


def test_errors_are_one_line_with_a_non_zero_exit(runner: CliRunner) -> None:
    run(runner, "ingest", "--quiet", str(CORPUS))
    for args, message in [
        (["delete", "nope"], "no article with id 'nope'"),
        (["ask", ""], "the question is empty"),
        (["ask", "--top-k", "0", "oil"], "top_k"),
    ]:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
        assert "Traceback" not in result.output


def test_ingest_reports_skipped_files_and_goes_on(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good headline\n\nThe river ferry resumed service on Monday.")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    result = runner.invoke(cli, ["ingest", "--quiet", str(tmp_path)])
    assert result.exit_code == EXIT_SKIPPED
    assert "1 added" in result.output and "3 skipped" in result.output
    for name in ("empty.txt", "broken.json", "image.png"):
        assert any(name in line and line.startswith("skipped:") for line in result.output.splitlines())


def test_prune_removes_articles_whose_files_are_gone(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A\n\nThe bakery sells rye bread.")
    (tmp_path / "b.txt").write_text("B\n\nThe library opens at nine.")
    run(runner, "ingest", "--quiet", str(tmp_path))
    (tmp_path / "b.txt").unlink()
    code, output = run(runner, "ingest", "--quiet", "--prune", str(tmp_path))
    assert code == 0 and "1 removed" in output
    code, output = run(runner, "list", "--json")
    # A folder outside the corpus folder gives its files ids under its own name.
    assert [a["id"] for a in json.loads(output)["articles"]] == [f"{tmp_path.name}/a.txt"]


def test_the_installed_script_runs(tmp_path: Path) -> None:
    qa = Path(sys.executable).with_name("qa")
    result = subprocess.run([str(qa), "list"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "0 articles" in result.stderr


def test_prune_never_removes_articles_added_through_the_api(runner: CliRunner, tmp_path: Path) -> None:
    from qa import QA, Article, Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("A\n\nThe bakery sells rye bread.")
    run(runner, "ingest", "--quiet", str(corpus))
    QA(Settings()).add(Article(id="api-1", text="Uploaded through the API."))
    code, output = run(runner, "ingest", "--quiet", "--prune", str(corpus))
    assert code == 0 and "0 removed" in output
    code, output = run(runner, "list", "--json")
    assert sorted(a["id"] for a in json.loads(output)["articles"]) == ["api-1", "corpus/a.txt"]
