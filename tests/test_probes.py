"""Robustness probes (apps/probes.py): every form keeps a reference trace the verifier accepts."""

import re
from pathlib import Path

import pytest

from tracetutor.apps import probes
from tracetutor.trace import Trace
from tracetutor.train.curriculum import NAMES, normalise, synth_traces
from tracetutor.verify import trace_failures

CURRICULUM = Path(probes.__file__).resolve().parent.parent / "train" / "curriculum"


@pytest.fixture(scope="module")
def held():
    return [t.to_dict() for t in synth_traces(88, seed=5)]  # two of every family and level


@pytest.fixture(scope="module")
def made(held):
    return probes.build_probes(held, seed=0)


def test_every_probe_keeps_a_reference_trace_the_verifier_accepts(made):
    failures = {p["id"]: trace_failures(Trace.from_dict(p)) for p in made}
    assert {k: v for k, v in failures.items() if v} == {}


def test_every_form_is_made_and_each_problem_keeps_its_original(held, made):
    forms = {p["form"] for p in made}
    assert forms == set(probes.FORMS)
    by_form = {f: [p for p in made if p["form"] == f] for f in probes.FORMS}
    assert [p["question"] for p in by_form["original"]] == [h["question"] for h in held]
    assert len(by_form["noop"]) == len(held)  # a sentence can always be added
    assert len(by_form["symbolic"]) >= 0.8 * len(held)
    assert all(p["probe_of"] == p["id"].split("#")[0] for p in made)


def test_noop_reorder_and_paraphrase_ask_the_same_question_in_other_words(held, made):
    original = {h["id"]: h for h in held}
    for p in made:
        o = original[p["probe_of"]]
        if p["form"] in ("noop", "reorder", "paraphrase"):
            assert (p["answer"], p["steps"]) == (o["answer"], o["steps"])
            assert p["question"] != o["question"]
        if p["form"] == "noop":  # one more sentence, holding one number
            added = [s for s in probes.sentences(p["question"]) if s not in probes.sentences(o["question"])]
            assert len(added) == 1 and len(re.findall(r"\d+", added[0])) == 1
            assert probes.sentences(p["question"])[-1] == probes.sentences(o["question"])[-1]
        if p["form"] == "reorder":  # the same sentences, the question still last
            assert sorted(probes.sentences(p["question"])) == sorted(probes.sentences(o["question"]))
            assert probes.sentences(p["question"])[-1] == probes.sentences(o["question"])[-1]


def test_symbolic_probes_are_new_questions_of_the_same_family_and_level(held, made):
    original = {h["id"]: h for h in held}
    symbolic = [p for p in made if p["form"] == "symbolic"]
    assert any(p["match"] == "words" for p in symbolic)
    for p in symbolic:
        o = original[p["probe_of"]]
        assert normalise(p["question"]) != normalise(o["question"])
        assert (p["family"], p["difficulty"]) == (o["family"], o["difficulty"])
        if p["match"] == "words":  # the original's words with other numbers or names
            assert probes._masked(p["question"], NAMES) == probes._masked(o["question"], NAMES)


def test_a_symbolic_probe_is_never_a_training_question(held):
    first = probes.symbolic(held[0], 0, set())
    assert first is not None
    again = probes.symbolic(held[0], 0, {normalise(first["question"])})
    assert again is None or again["question"] != first["question"]


def test_reorder_keeps_facts_in_place_where_one_refers_back():
    base = {"id": "p", "steps": ["a: 2 x 3 = 6"], "answer": "6", "family": "groups", "difficulty": 1}
    free = probes.reorder({**base, "question": "A box holds 3 pens. Ana has 2 boxes. How many pens does Ana have?"})
    assert free["question"] == "Ana has 2 boxes. A box holds 3 pens. How many pens does Ana have?"
    tied = {**base, "question": "Ana has 2 boxes. Each of them holds 3 pens. How many pens does Ana have?"}
    assert probes.reorder(tied) is None
    in_sequence = {**base, "family": "arithmetic", "question": "Ana has 2 pens. Ana finds 4 pens. How many pens?"}
    assert probes.reorder(in_sequence) is None
    operations = {**base, "family": "equation", "question": "I think of a number and add 5. The result is 16. What is my number?"}
    assert probes.reorder(operations) is None


def test_paraphrases_are_kept_apart_from_the_curriculum_templates():
    templates = " ".join(p.read_text(encoding="utf-8") for p in [*CURRICULUM.glob("*.py"), *CURRICULUM.glob("words/*.json")])
    for pattern, replacement in probes.WORDS["paraphrase"]:
        words = re.sub(r"\\\d", " ", replacement).replace("?", " ").split()
        phrase = r"\b" + r"\s+".join(map(re.escape, words)) + r"\b"
        assert not re.search(phrase, templates, re.IGNORECASE), replacement


def test_training_questions_come_from_the_data_on_disk_or_from_the_recipe_a_folder_keeps(tmp_path):
    import json
    import shutil

    from tracetutor.train.curriculum import make_splits

    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "data" / "train.jsonl").write_text(json.dumps({"question": "What is  2 + 2?"}) + "\n")
    assert probes.training_questions(run) == {"what is 2 + 2?"}
    release = tmp_path / "micro"  # a release: its recipe, no training data
    release.mkdir()
    shutil.copy(Path(probes.__file__).resolve().parents[1] / "models" / "micro.toml", release)
    train, _ = make_splits(400, 40, 1, levels=(1, 2))
    assert probes.training_questions(release) == {normalise(t.question) for t in train}
    assert probes.training_questions(tmp_path / "empty") == set()
