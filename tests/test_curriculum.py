"""The synthetic curriculum: verified, deterministic, learnable, varied, split without leaks."""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter, defaultdict

import pytest

from tracetutor.cli import main
from tracetutor.train.curriculum import CAP, FAMILIES, NAMES, make_splits, normalise, split_heldout, synth_traces
from tracetutor.trace import LEVELS, Trace
from tracetutor.verify import verify_trace

PER_CELL = 60
STEP = re.compile(r"^(?P<label>[^:=]+): (?P<expr>[^:]+) = (?P<result>\d+)$")
PERCENT = re.compile(r"^(?P<p>\d+)% of (?P<base>\d+)$")
NAME = re.compile(r"\b(" + "|".join(NAMES) + r")\b")
# the one label with numbers in it: an age step restates the relation it uses, in the
# direction it is used ("Hiro is 7 years younger than Quinn", whichever way the question says it)
_N = "(?:" + "|".join(NAMES) + ")"
RELATION = re.compile(rf"^{_N} is (?:\d+ years (?:older|younger) than|(?:twice|\d+ times|half) as old as) {_N}$"
                      rf"|^{_N} (?:in \d+ years|\d+ years ago)$")


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    return synth_traces(PER_CELL * len(FAMILIES) * len(LEVELS), seed=1)


def claim(step: str) -> tuple[str, str, list[int], int]:
    """(label, operator, operands, result) of a step, checked by hand, without the verifier."""
    m = STEP.match(step)
    assert m, f"not a `label: a op b = c` step: {step!r}"
    expr, result = m["expr"], int(m["result"])
    if pct := PERCENT.match(expr):
        p, base = int(pct["p"]), int(pct["base"])
        assert base * p == result * 100, step
        return m["label"], "%", [p, base], result
    parts = expr.split(" ")
    numbers, ops = [int(x) for x in parts[::2]], set(parts[1::2])
    assert len(ops) == 1 and ops <= {"+", "-", "x", "/"}, f"one operator a step: {step!r}"
    op = ops.pop()
    if op == "+":
        assert 2 <= len(numbers) <= 3 and sum(numbers) == result, step
    else:
        assert len(numbers) == 2, f"only sums chain: {step!r}"
        a, b = numbers
        value = {"-": a - b, "x": a * b, "/": a / b}[op]
        assert value == result, step
    return m["label"], op, numbers, result


def test_every_family_verifies_at_every_level(traces):
    cells = Counter((t.family, t.difficulty) for t in traces)
    assert set(cells) == {(f, d) for f in FAMILIES for d in LEVELS}
    assert set(cells.values()) == {PER_CELL}
    assert len(FAMILIES) >= 10
    for t in traces:
        assert t.source == "synth" and t.id.startswith(f"synth/{t.family}/") and re.fullmatch(r"\d{6}", t.id[-6:])
        checks = verify_trace(t)
        assert checks == t.checks, t.id
        assert checks["answer"] and checks["steps"] and all(checks["steps"]), (t.id, t.steps)


def test_every_claim_keeps_the_learnability_bounds(traces):
    for t in traces:
        assert t.question.endswith("?"), t.question
        assert not re.search(r"^step\s*\d", "\n".join(t.steps), re.I | re.M)
        for step in t.steps:
            label, op, numbers, result = claim(step)
            if t.family == "ages" and RELATION.match(label):
                assert str(numbers[-1]) in label or not re.search(r"\d", label), f"relation and step disagree: {step!r}"
            else:
                assert not re.search(r"\d", label), f"numbers belong in the expression: {step!r}"
                assert 1 <= len(label.split()) <= 4, f"label too long: {step!r}"
                assert NAME.sub("", label) == NAME.sub("", label).lower(), f"label not lowercase: {step!r}"
            cap = CAP[t.difficulty]
            assert 1 <= result < cap, (t.id, step)
            if op == "%":  # the percent names the operation; its base is a number of the step
                assert numbers[0] in (10, 20, 25, 50, 75) and 1 <= numbers[1] < cap, (t.id, step)
                continue
            assert all(1 <= n < cap for n in numbers), (t.id, step)
            if op == "x":
                assert 2 <= min(numbers) <= 12, f"multiplication needs a factor of 2..12: {step!r}"
            if op == "/":
                assert 2 <= numbers[1] <= 12 and numbers[0] % numbers[1] == 0, step
        assert t.answer == str(claim(t.steps[-1])[3]), "the last step's result is the answer"


def test_same_seed_same_traces_other_seed_other_traces():
    a = synth_traces(300, seed=7)
    assert a == synth_traces(300, seed=7)
    b = synth_traces(300, seed=8)
    assert len({t.question for t in a} & {t.question for t in b}) < 10
    # a family's draws depend only on (seed, family, level), not on which other families run
    only = synth_traces(40, seed=7, families=["ratio"])
    assert {t.question for t in only} <= {t.question for t in synth_traces(40 * len(FAMILIES), seed=7)}


def test_levels_and_families_can_be_chosen():
    some = synth_traces(30, seed=0, levels=(2, 3), families=["equation", "ages", "geometry"])
    assert Counter((t.family, t.difficulty) for t in some) == {
        (f, d): 5 for f in ("equation", "ages", "geometry") for d in (2, 3)}
    with pytest.raises(ValueError, match="unknown family 'astrology'; the families are arithmetic, shopping"):
        synth_traces(10, seed=0, families=["astrology"])
    with pytest.raises(ValueError, match="unknown level 5; the levels are 1, 2, 3, 4"):
        synth_traces(10, seed=0, levels=(5,))
    # a level or family named twice is drawn once
    assert make_splits(10, 4, seed=0, levels=(1, 1), families=["ages", "ages"]) == \
        make_splits(10, 4, seed=0, levels=(1,), families=["ages"])


def test_the_levels_are_the_trace_records_levels():
    assert tuple(CAP) == LEVELS


ALL = "arithmetic, shopping, groups, rates, percent, interest, average, ratio, equation, geometry, ages"


@pytest.mark.parametrize("args, message", [
    (["--levels", "9"], "unknown level 9; the levels are 1, 2, 3, 4"),
    (["--levels", "2,0"], "unknown level 0; the levels are 1, 2, 3, 4"),
    (["--levels", ""], "no level chosen; the levels are 1, 2, 3, 4"),
    (["--families", "nope"], f"unknown family 'nope'; the families are {ALL}"),
    (["--families", "ages,nope"], f"unknown family 'nope'; the families are {ALL}"),
    (["--families", ","], f"no family chosen; the families are {ALL}"),
])
def test_data_synth_names_an_unknown_level_or_family_in_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "traces.jsonl"
    assert main(["data", "synth", "--n", "10", *args, "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"tracetutor: error: {message}\n"
    assert not out.exists()


def test_data_synth_draws_a_level_named_twice_once(tmp_path, capsys):
    out = tmp_path / "traces.jsonl"
    assert main(["data", "synth", "--n", "10", "--levels", "1,1", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 10


def test_difficulty_grows_in_steps_and_in_number_size(traces):
    steps = defaultdict(list)
    biggest = defaultdict(list)
    for t in traces:
        steps[t.family, t.difficulty].append(len(t.steps))
        biggest[t.family, t.difficulty].append(max(claim(s)[3] for s in t.steps))
    for family in FAMILIES:
        means = [statistics.mean(steps[family, d]) for d in LEVELS]
        assert means == sorted(means) and means[-1] > means[0], (family, means)
        assert min(steps[family, 4]) >= 4 and max(steps[family, 4]) <= 5, family
        assert max(steps[family, 1]) <= 2 and max(steps[family, 3]) == 3, family
    for d in (2, 3, 4):
        assert statistics.mean(x for (_, level), v in biggest.items() if level == d for x in v) > \
            statistics.mean(x for (_, level), v in biggest.items() if level == d - 1 for x in v)
    # the numbers use the room below each level's cap rather than cluster at small values
    for d in LEVELS:
        tops = [x for (_, level), v in biggest.items() if level == d for x in v]
        assert sum(x >= CAP[d] // 2 for x in tops) > 0.35 * len(tops), d


def skeleton(question: str) -> str:
    return re.sub(r"\d+", "#", NAME.sub("N", question))


def test_wording_varies(traces):
    sample = random.Random(0).sample(traces, 1000)
    assert len({skeleton(t.question) for t in sample}) >= 600
    assert len({" ".join(skeleton(t.question).split()[:4]) for t in sample}) >= 100
    for family in FAMILIES:
        asked = {skeleton(t.question).rsplit(". ", 1)[-1] for t in traces if t.family == family}
        assert len(asked) >= 8, (family, asked)
    # the numbers are not always told in the order the steps use them
    reordered = 0
    for t in traces:
        told = [int(x) for x in re.findall(r"\d+", t.question)]
        used = [n for s in t.steps for n in map(int, re.findall(r"\d+", s.split(": ", 1)[1].split(" = ")[0]))]
        used = [n for n in dict.fromkeys(used) if n in told]
        reordered += [n for n in dict.fromkeys(told) if n in used] != used
    assert reordered > 0.3 * len(traces)


def test_no_duplicate_questions(traces):
    assert len({normalise(t.question) for t in traces}) == len(traces)
    assert len({t.id for t in traces}) == len(traces)


def test_heldout_is_disjoint_from_train_and_balanced():
    cells = len(FAMILIES) * len(LEVELS)
    train, heldout = make_splits(500, 2 * cells, seed=3)
    assert len(train) == 500 and len(heldout) == 2 * cells
    assert not {normalise(t.question) for t in train} & {normalise(t.question) for t in heldout}
    assert set(Counter((t.family, t.difficulty) for t in heldout).values()) == {2}
    assert (train, heldout) == make_splits(500, 2 * cells, seed=3)


def test_split_heldout_keeps_every_copy_of_a_heldout_question_out_of_train():
    base = synth_traces(40, seed=5, families=["groups"])
    copies = [Trace(id=f"copy/{i}", question="  " + t.question.upper() + " ", steps=t.steps, answer=t.answer,
                    family=t.family, difficulty=t.difficulty) for i, t in enumerate(base)]
    train, heldout = split_heldout(base + copies, 8, seed=0)
    assert len(heldout) == 8 and len({normalise(t.question) for t in heldout}) == 8
    assert set(Counter(t.difficulty for t in heldout).values()) == {2}
    assert not {normalise(t.question) for t in train} & {normalise(t.question) for t in heldout}
    assert len(train) == 2 * (40 - 8)


def test_family_functions_take_any_rng():
    for name, generate in FAMILIES.items():
        for level in LEVELS:
            question, steps, answer = generate(random.Random(level), level)
            assert isinstance(question, str) and steps and answer.isdigit(), name
    with pytest.raises(ValueError):
        FAMILIES["ages"](random.Random(0), 0)
