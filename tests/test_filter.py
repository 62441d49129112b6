"""The trace filter: planted errors, copies and test questions, each rejected for its reason."""

import json
import random

import pytest

from tracetutor.cli import main
from tracetutor.trace import load_traces
from tracetutor.train.filter import FilterSettings, NearIndex, filter_file, filter_traces, report_path, shingles

LONG = ("A baker makes 12 trays of 24 cookies every morning, sells 180 of them before noon and "
        "gives away 30 to the shelter. How many cookies are left at the end of the day?")
STEPS = ["12 x 24 = 288 cookies are baked.", "288 - 180 = 108 are left after noon.",
         "108 - 30 = 78 are left at the end of the day."]


def record(id, question=LONG, steps=STEPS, answer="78", **extra):
    return {"id": id, "question": question, "steps": steps, "answer": answer, "source": "gsm8k", **extra}


PLANTED = [
    record("good", gold="78"),
    record("not-gold", gold="80"),
    record("false-step", question="Q1: " + LONG, steps=STEPS[:1] + ["288 - 180 = 118 are left."] + STEPS[2:],
           gold="78"),
    record("not-concluded", question="Q2: " + LONG, steps=STEPS[:2], gold="78"),  # the steps stop at 108
    record("no-steps", question="Q3: " + LONG, steps=[]),
    record("gold-unknown", question="Q4: " + LONG, gold=None),
    record("long", question="Q5: " + LONG, steps=STEPS + ["So 78 cookies are left."] * 20),
    record("copy", gold="78"),
    record("near-copy", steps=STEPS[:2] + ["108 - 30 = 78 cookies are left at the end of the day."]),
    record("test", question="What is 7 x 8, then 56 + 4?", steps=["7 x 8 = 56", "56 + 4 = 60"], answer="60"),
    record("near-test", question="Ann has 7 boxes of 8 pens and buys 4 more pens. How many pens has she now?",
           steps=["7 x 8 = 56", "56 + 4 = 60"], answer="60"),
    "{not json",
    record("other", question="Tom has 3 bags of 4 apples. How many apples?", steps=["3 x 4 = 12"], answer="12",
           gold="12"),
]
TESTS = [{"question": "what is 7 x 8,   then 56 + 4?", "answer": "60"},
         {"question": "Ben has 7 boxes of 8 pens and buys 4 more pens. How many pens has he now?"}]


@pytest.fixture
def planted(tmp_path):
    path, against = tmp_path / "in.jsonl", tmp_path / "test.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in PLANTED) + "\n", encoding="utf-8")
    against.write_text("".join(json.dumps(x) + "\n" for x in TESTS), encoding="utf-8")
    return path, against


def test_each_planted_fault_is_rejected_for_its_reason(planted, tmp_path):
    path, against = planted
    report = filter_file(path, tmp_path / "out.jsonl", FilterSettings(max_steps=10, against=[str(against)]))
    reasons = {r["id"]: r["reason"] for r in report["rejections"]}
    assert reasons == {
        "not-gold": "answer is not the gold answer", "false-step": "false claim",
        "not-concluded": "answer does not follow from the steps", "no-steps": "no steps",
        "gold-unknown": "no gold answer", "long": "too many steps", "copy": "duplicate",
        "near-copy": "near duplicate", "test": "test question", "near-test": "near a test question", None: "unreadable line",
    }
    kept = load_traces(tmp_path / "out.jsonl")
    assert [t.id for t in kept] == ["good", "other"]
    assert kept[0].checks == {"answer": True, "steps": [True, True, True]}
    on_disk = json.loads(report_path(tmp_path / "out.jsonl").read_text())
    assert on_disk["total"] == 13 and on_disk["kept"] == 2 and on_disk["rejected"]["duplicate"] == 1
    assert sum(on_disk["rejected"].values()) == 11
    assert on_disk["claims"]["false"] == 1
    detail = {r["id"]: r["detail"] for r in on_disk["rejections"]}
    assert detail["near-copy"] == "good" and detail["test"] == f"{against}:1" and detail["near-test"] == f"{against}:2"
    assert "288 - 180 = 118 is false" in detail["false-step"]


def test_length_bounds(planted):
    path, _ = planted
    _, report = filter_traces(path, FilterSettings(max_chars=100))
    assert report["rejected"]["too long"] == 3  # every trace that passed the answer and steps checks
    _, report = filter_traces(path, FilterSettings(min_steps=2))
    assert report["rejected"]["too few steps"] == 1  # "other" has one step


def test_near_index_finds_exactly_the_pairs_a_full_comparison_finds():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choices(words, k=rng.randint(3, 30))) for _ in range(150)]
    texts += [t.replace(t.split()[0], "changed", 1) for t in texts[:60]]  # near copies
    sets = [shingles(t) for t in texts]
    from collections import Counter

    rank = Counter(h for s in sets for h in s)
    for threshold in (0.5, 0.8):
        index = NearIndex(threshold, rank)
        for i, s in enumerate(sets):
            found = index.find(s)
            brute = [j for j in range(i) if len(s & sets[j]) >= threshold * len(s | sets[j])]
            assert (found is None) == (not brute), (threshold, i)
            index.add(str(i), s)


def test_cli_prints_counts_and_a_bad_held_out_file_is_an_error(planted, tmp_path, capsys):
    path, against = planted
    out = tmp_path / "kept.jsonl"
    assert main(["data", "filter", str(path), "--out", str(out), "--against", str(against)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "rejected      1  false claim" in err
    assert err[-1] == f"kept 2 of 13 traces (15.4%) in {out}; every rejection in {tmp_path / 'kept.filter.json'}"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a"}\n{"answer": 3}\n')
    assert main(["data", "filter", str(path), "--out", str(out), "--against", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"tracetutor: error: {bad}:2: field 'question': no question to hold out")
