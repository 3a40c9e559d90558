"""bench/train_scorer.py: the scorer is trained reproducibly (same data and seed, same bytes) and loads."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from fixtures import REPO
from qa.answering.scorer import check_outputs, scorer_from_dict

FACTS = [
    ("Mount Etna", "Mount Etna in Sicily erupted in 2021. Ash covered the city of Catania. Flights were stopped."),
    ("Honey bees", "Honey bees dance to show where flowers are. The waggle dance points to the food. Hives hold wax."),
    ("Chess", "Magnus Carlsen became world champion in 2013. He beat Viswanathan Anand in Chennai. He is Norwegian."),
    (
        "Lighthouses",
        "The Pharos of Alexandria was a lighthouse. It stood about 100 metres tall. Earthquakes ruined it.",
    ),
    ("Tea", "Tea was first drunk in China. Merchants carried it to Europe in the 1600s. Britain taxed it heavily."),
    (
        "Glaciers",
        "Glaciers form where snow outlasts summer. They flow downhill under their own weight. Many are melting.",
    ),
]
QUESTIONS = [  # (article, question, accepted answers, answerable)
    (0, "When did Mount Etna erupt?", ["2021"], True),
    (0, "Which city was covered in ash?", ["Catania"], True),
    (0, "When did Mount Vesuvius last erupt?", [], False),
    (1, "How do honey bees show where flowers are?", ["dance"], True),
    (1, "What points to the food?", ["waggle dance"], True),
    (2, "When did Carlsen become world champion?", ["2013"], True),
    (2, "Whom did Carlsen beat?", ["Anand"], True),
    (2, "Where was Carlsen born?", [], False),
    (3, "How tall was the Pharos of Alexandria?", ["100 metres"], True),
    (3, "What ruined the lighthouse?", ["Earthquakes"], True),
    (4, "Where was tea first drunk?", ["China"], True),
    (4, "When did merchants carry tea to Europe?", ["1600s"], True),
    (4, "Who invented tea bags?", [], False),
    (5, "Where do glaciers form?", ["snow outlasts summer"], True),
    (5, "How do glaciers move?", ["flow downhill"], True),
]


def load_trainer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_scorer", REPO / "bench" / "train_scorer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def write_tiny_set(folder: Path) -> None:
    folder.mkdir(parents=True)
    articles = [{"id": f"a{i}", "title": title, "text": text} for i, (title, text) in enumerate(FACTS)]
    questions = []
    for n, (article, question, answers, answerable) in enumerate(QUESTIONS):
        questions.append(
            {
                "id": f"q{n}",
                "question": question,
                "article_id": f"a{article}",
                "answers": answers,
                "answerable": answerable,
            }
        )
    (folder / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))


def train_once(trainer: Any, data: Path, cache: Path, out: Path) -> bytes:
    source = trainer.Source("tiny", "tiny", trainer.read_questions)
    trainer.collect(source, data, cache, 2, trainer.SEED, None)
    recipe = trainer.replace(trainer.default_recipe(), trees=5)
    weights = trainer.train(trainer.load(cache, ["tiny"]), recipe, lambda message: None, {})
    trainer.write_weights(weights, out)
    return out.read_bytes()


def test_two_training_runs_write_identical_weights(tmp_path: Path) -> None:
    trainer = load_trainer()
    data = tmp_path / "data"
    write_tiny_set(data / "tiny")
    first = train_once(trainer, data, tmp_path / "cache-1", tmp_path / "weights-1.json")
    second = train_once(trainer, data, tmp_path / "cache-2", tmp_path / "weights-2.json")
    assert first == second
    weights = json.loads(first)
    scorer = scorer_from_dict(weights)
    assert max(check_outputs(scorer, weights["check"])) < 1e-9
    assert weights["meta"]["folds"] == 2 and 0.0 <= weights["threshold"] <= 1.0
