import json

import pytest

from tracetutor.apps.bench import ProblemsError, format_table, read_problems, score
from tracetutor.cli import main
from tracetutor.runtime.engine import Done

# --- scoring ---------------------------------------------------------------------------------

PROBLEMS = [
    {"id": "p1", "question": "q1", "answer": "12", "family": "add", "difficulty": 1},
    {"id": "p2", "question": "q2", "answer": "3/4", "family": "add", "difficulty": 1},
    {"id": "p3", "question": "q3", "answer": "7", "family": "mul", "difficulty": 2},
    {"id": "p4", "question": "q4", "answer": "10", "family": "mul", "difficulty": 2},
    {"id": "p5", "question": "q5", "answer": "1"},  # in no family and at no level
]


def done(steps, answer, n_tokens, **stats):
    lines = [f"Step {k}: {s}" for k, s in enumerate(steps, 1)] + ([f"Answer: {answer}"] if answer else [])
    return Done(text="\n".join(lines), steps=steps, answer=answer, stats={"n_tokens": n_tokens, **stats})


OUTPUTS = [
    done(["5 + 7 = 12"], "12", 10),  # right; its step holds
    done(["3 / 4 = 0.75", "so three quarters"], "0.75", 20),  # right after canonicalisation; a step without a claim
    done(["3 x 4 = 13", "13 - 6 = 7"], "7", 30),  # right answer, one false step
    done([], None, 40),  # no answer line
    done([], "1", 50),  # right, answer only
]


def test_score_counts_what_the_outputs_got_right():
    r = score(PROBLEMS, OUTPUTS)
    assert (r["accuracy"], r["n"], r["correct"]) == (0.8, 5, 4)
    assert r["by_difficulty"] == {"1": {"accuracy": 1.0, "n": 2}, "2": {"accuracy": 0.5, "n": 2}}
    assert r["by_family"] == {"add": {"accuracy": 1.0, "n": 2}, "mul": {"accuracy": 0.5, "n": 2}}
    assert r["step_validity"] == 0.6  # 3 of 5 steps make a claim that holds
    assert r["mean_tokens"] == 30.0
    assert r["wrong"] == [{"id": "p4", "question": "q4", "expected": "10", "got": None, "completion": ""}]
    assert "corrected_share" not in r


def test_score_of_checked_outputs_counts_the_corrected_problems():
    checked = [
        done(["5 + 7 = 12"], "12", 10, corrected_steps=[]),
        done(["3 / 4 = 0.75", "so three quarters"], "0.75", 20, corrected_steps=[]),
        done(["3 x 4 = 12", "12 - 6 = 6"], "6", 30, corrected_steps=[1]),  # the correction changed the answer
        done(["4 + 6 = 10"], "10", 40, corrected_steps=[1]),
        done([], "1", 50, corrected_steps=[]),
    ]
    r = score(PROBLEMS, checked)
    assert (r["accuracy"], r["correct"]) == (0.8, 4)
    assert r["by_difficulty"] == {"1": {"accuracy": 1.0, "n": 2}, "2": {"accuracy": 0.5, "n": 2}}
    assert r["step_validity"] == 0.8333  # 5 of 6
    assert r["corrected_share"] == 0.4
    assert [w["id"] for w in r["wrong"]] == ["p3"]


def test_score_of_no_problems_has_no_accuracy():
    r = score([], [])
    assert (r["accuracy"], r["n"], r["step_validity"]) == (None, 0, None)


def test_table_shows_each_variant_and_level():
    report = {"variants": {"torch-fp32": {**score(PROBLEMS, OUTPUTS), "seconds": 1.5}}}
    lines = format_table(report).splitlines()
    assert lines[0].split() == ["variant", "accuracy", "steps", "ok", "level", "1", "level", "2", "n", "seconds"]
    assert lines[2].split() == ["torch-fp32", "80.0%", "60.0%", "100.0%", "50.0%", "5", "1.5"]


# --- the problems file -----------------------------------------------------------------------


def test_read_problems_fills_ids_and_accepts_a_bom_and_numeric_answers(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [json.dumps({"question": "1 + 1?", "answer": 2}), "", json.dumps({"id": "x", "question": "q", "answer": "3"})]
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    problems = read_problems(path)
    assert [(p["id"], p["question"], p["answer"]) for p in problems] == [("p/1", "1 + 1?", "2"), ("x", "q", "3")]
    assert [p["id"] for p in read_problems(path, limit=1)] == ["p/1"]


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":1: not valid UTF-8"),
    (b'{"question": 5, "answer": "5"}\n', ":1: field 'question': expected a string, got int"),
    (b'{"question": "q", "answer": "1"}\n{"question": ["a", "b"], "answer": "1"}\n',
     ":2: field 'question': expected a string, got list"),
    (b'{"question": "q", "answer": [1]}\n', ":1: field 'answer': expected a string or a number, got list"),
    (b'{"question": "q", "answer": "1"}\n{"question": "no answer"}\n', ":2: missing field 'answer'"),
    (b'{"question": "q", "answer": "1", "family": ["a"]}\n', ":1: field 'family': expected a string or null"),
    (b'{"question": "q", "answer": "1"}\n{"question": "q", \n', ":2: invalid JSON"),
    (b'["q", "1"]\n', ":1: expected a JSON object, got list"),
])
def test_a_bad_problems_file_is_one_line_naming_file_and_line(tmp_path, capsys, content, message):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(ProblemsError):
        read_problems(path)
    # the model folder need not hold a model: the problems are read before it is loaded
    assert main(["bench", str(tmp_path), "--problems", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tracetutor: error: {path}{message}")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("content", ["", "\n \n"])
def test_a_problems_file_without_problems_is_an_error(tmp_path, content):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(ProblemsError, match="holds no problems"):
        read_problems(path)


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_limit_below_one_is_refused(tmp_path, capsys, limit):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    assert main(["bench", str(tmp_path), "--problems", str(path), "--limit", limit]) == 2
    err = capsys.readouterr().err
    assert err == f"tracetutor: error: --limit must be at least 1, got {limit}\n"


def test_score_of_probes_gives_each_form_beside_its_originals():
    problems = [
        {"id": "a#original", "question": "qa", "answer": "1", "form": "original", "probe_of": "a"},
        {"id": "b#original", "question": "qb", "answer": "2", "form": "original", "probe_of": "b"},
        {"id": "a#noop", "question": "qa2", "answer": "1", "form": "noop", "probe_of": "a"},
        {"id": "b#noop", "question": "qb2", "answer": "2", "form": "noop", "probe_of": "b"},
        {"id": "b#symbolic", "question": "qb3", "answer": "5", "form": "symbolic", "probe_of": "b"},
    ]
    outputs = [done([], "1", 1), done([], "3", 1), done([], "9", 1), done([], "2", 1), done([], "5", 1)]
    r = score(problems, outputs)
    assert r["by_form"] == {"original": {"accuracy": 0.5, "n": 2, "original_accuracy": 0.5},
                            "noop": {"accuracy": 0.5, "n": 2, "original_accuracy": 0.5},
                            "symbolic": {"accuracy": 1.0, "n": 1, "original_accuracy": 0.0}}
    assert "by_form" not in score(PROBLEMS, OUTPUTS)
