"""The hand-written test set: textbook problems written by a person, never by the templates.

Every reference trace verifies and reaches its answer; no question is, even with its numbers and
names changed, a question the curriculum generates for a shipped recipe, so no recipe trains on
it (recipes train only on generated traces).
"""

import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from tracetutor.apps.bench import HANDWRITTEN, problems_path, read_problems
from tracetutor.recipe import load_recipe
from tracetutor.trace import load_traces, parse_number
from tracetutor.train.curriculum import FAMILIES, NAMES, make_splits
from tracetutor.verify import find_claims, verify_file

SHIPPED = Path(__file__).resolve().parent.parent / "models"


def test_the_set_holds_at_least_60_problems_of_every_family_and_level():
    traces = load_traces(HANDWRITTEN)
    assert len(traces) >= 60
    assert len({t.id for t in traces}) == len({t.question for t in traces}) == len(traces)
    assert {t.source for t in traces} == {"handwritten"}
    assert {t.family for t in traces} <= set(FAMILIES) and len({t.family for t in traces}) >= 10
    assert set(Counter(t.difficulty for t in traces)) == {1, 2, 3, 4}


def test_every_reference_trace_verifies_and_its_answer_is_what_the_last_step_computes():
    report = verify_file(HANDWRITTEN)
    assert report["failures"] == [] and report["passed"] == report["total"]
    for t in load_traces(HANDWRITTEN):
        claims = find_claims(t.steps[-1])
        if claims:  # a step without arithmetic (a trick question) names its answer instead
            assert claims[-1].values[-1] == parse_number(t.answer) == Fraction(int(t.answer)), t.id
        else:
            assert re.search(rf"\b{t.answer}\b", t.steps[-1]), t.id


def test_bench_reads_it_as_handwritten(tmp_path):
    assert problems_path(tmp_path, "handwritten") == HANDWRITTEN
    problems = read_problems(problems_path(tmp_path, "handwritten"))
    assert len(problems) >= 60 and all(p["steps"] and p["difficulty"] for p in problems)


_NUMBER = re.compile(r"[$£€]?\d[\d,]*(?:\.\d+)?")
_NAME = re.compile(r"\b(?:" + "|".join(map(re.escape, NAMES)) + r")\b")


def skeleton(question: str) -> str:
    """A question with its numbers and names masked, lowercase, punctuation and spacing dropped:
    two questions from one template with other numbers or names have the same skeleton."""
    text = _NAME.sub("@", _NUMBER.sub("#", question))
    return " ".join(re.sub(r"[^\w@#]+", " ", text.lower()).split())


def test_skeleton_masks_numbers_and_names():
    assert skeleton("Zara has 1,200 beads.") == skeleton("Omar  has $7 BEADS!") == "@ has # beads"


@pytest.mark.parametrize("recipe", sorted(p.stem for p in SHIPPED.glob("*.toml")))
def test_no_handwritten_question_is_in_the_training_data_of_a_shipped_recipe(recipe):
    d = load_recipe(SHIPPED / f"{recipe}.toml").data
    train, _ = _splits(d.n_train, d.n_heldout, d.seed, tuple(d.levels), tuple(d.families or ()))
    generated = {skeleton(t.question) for t in train}
    # the check finds a generated question whose numbers were changed, so it is not vacuous
    assert skeleton(re.sub(r"\d+", "7", train[0].question)) in generated
    same = [t.question for t in load_traces(HANDWRITTEN) if skeleton(t.question) in generated]
    assert same == []


_SPLITS: dict = {}


def _splits(n_train, n_heldout, seed, levels, families):
    # tiny-tutor and its answer-only ablation share their data: generated once
    key = (n_train, n_heldout, seed, levels, families)
    if key not in _SPLITS:
        _SPLITS[key] = make_splits(n_train, n_heldout, seed, levels=levels, families=families or None)
    return _SPLITS[key]
