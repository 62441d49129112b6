"""GSM8K answer extraction as lm-evaluation-harness does it, on real lines of the test set."""

import json

import pytest

from tracetutor.apps import gsm8k

needs_gsm8k = pytest.mark.skipif(not gsm8k.GSM8K.is_file(), reason=f"no GSM8K test set at {gsm8k.GSM8K}")


@needs_gsm8k
def test_the_first_real_records_read_as_problems():
    problems = gsm8k.read_gsm8k(limit=5)
    assert [p["answer"] for p in problems] == ["18", "3", "70000", "540", "20"]
    first = problems[0]
    assert first["question"].startswith("Janet’s ducks lay 16 eggs per day.")
    assert first["steps"] == ["Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.",
                              "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market."]
    assert first["target"].endswith("\n#### 18")


@needs_gsm8k
def test_every_reference_solution_scores_under_both_extractions():
    problems = gsm8k.read_gsm8k()
    assert len(problems) == 1319
    assert gsm8k.score_gsm8k(problems, [p["target"] for p in problems]) == {"strict_match": 1.0, "flexible_extract": 1.0}


@needs_gsm8k
def test_completions_in_our_format_score_only_under_flexible_extraction():
    problems = gsm8k.read_gsm8k(limit=4)  # 18, 3, 70000, 540
    texts = ["Step 1: eggs left: 16 - 3 - 4 = 9\nStep 2: money: 9 x 2 = 18\nAnswer: $18.",
             "Step 1: white: 2 / 2 = 1\nAnswer: 4",  # wrong
             "Step 1: profit: 200,000 - 130,000 = 70,000\nAnswer: 70,000",
             "I cannot say."]  # no number at all
    assert [gsm8k.flexible_answer(t) for t in texts] == ["$18.", "4", "70,000", gsm8k.INVALID]
    assert [gsm8k.strict_answer(t) for t in texts] == [gsm8k.INVALID] * 4
    assert gsm8k.score_gsm8k(problems, texts) == {"strict_match": 0.0, "flexible_extract": 0.5}
    assert gsm8k.score_gsm8k(problems[:1], ["Step 1: 9 x 2 = 18\n#### 18"]) == {"strict_match": 1.0,
                                                                                  "flexible_extract": 1.0}


def test_extraction_rules_of_the_harness():
    assert gsm8k.strict_answer("#### 1,234.\nmore #### 7") == "1,234."  # the first one
    assert gsm8k.exact_match("1,234.", "so #### 1234")  # commas and a final point dropped
    assert gsm8k.flexible_answer("3 apples then -12 left") == "-12"  # the last number
    assert gsm8k.flexible_answer("answer 7") == "7"  # a one-digit number is the second group
    assert not gsm8k.exact_match("18.5", "#### 18")


def test_a_missing_or_damaged_file_is_one_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GSM8K test set"):
        gsm8k.read_gsm8k(tmp_path / "none.jsonl")
    bad = tmp_path / "test.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n" + json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match=f"{bad}:2: not a GSM8K record"):
        gsm8k.read_gsm8k(bad)


@needs_gsm8k
def test_bench_scores_gsm8k_both_ways_beside_its_own_accuracy(tmp_path):
    from tracetutor.apps.bench import load_problems, score
    from tracetutor.runtime.engine import Done

    path, problems = load_problems(tmp_path, "gsm8k", limit=2)
    assert path == gsm8k.GSM8K and [p["answer"] for p in problems] == ["18", "3"]
    outputs = [Done(text="Step 1: 9 x 2 = 18\nAnswer: 18", steps=["9 x 2 = 18"], answer="18", stats={}),
               Done(text="Answer: 4", steps=[], answer="4", stats={})]
    r = score(problems, outputs)
    assert (r["accuracy"], r["gsm8k"]) == (0.5, {"strict_match": 0.0, "flexible_extract": 0.5})
