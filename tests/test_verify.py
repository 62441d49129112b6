import json
import re
from pathlib import Path

import pytest

from tracetutor.trace import Trace, TraceFileError
from tracetutor.verify import (correct_step, find_claims, main_verify, review_trace, step_claims, trace_failures,
                              verify_file, verify_step, verify_trace)

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"


def trace(steps, answer, id="t"):
    return Trace(id=id, question="q?", steps=steps, answer=answer)


# Each claim form, true and false.
@pytest.mark.parametrize(
    "step, ok",
    [
        ("3 + 4 = 7", True),
        ("3 + 4 = 8", False),
        ("10 - 4 = 6", True),
        ("10 - 4 = 5", False),
        ("3 x 4 = 12", True),
        ("3 x 4 = 13", False),
        ("3 X 4 = 12", True),
        ("3x4=12", True),
        ("3 * 4 = 12", True),
        ("3 * 4 = 11", False),
        ("7 × 8 = 56", True),
        ("7 × 8 = 54", False),
        ("12 / 4 = 3", True),
        ("12 / 4 = 4", False),
        ("12 ÷ 4 = 3", True),
        ("12 ÷ 4 = 2", False),
        ("16 - 3 - 4 = 9", True),  # left to right
        ("16 - 3 - 4 = 10", False),
        ("2 + 3 x 4 = 14", True),  # precedence
        ("2 + 3 x 4 = 20", False),
        ("(2 + 3) x 4 = 20", True),
        ("(2 + 3) x 4 = 14", False),
        ("-3 + 5 = 2", True),
        ("25% of 40 = 10", True),
        ("25% of 40 = 12", False),
        ("40 * 25% = 10", True),
        ("40 * 25 / 100 = 10", True),
        ("10% of $200 = $20", True),
        ("$12.50 / 5 = $2.50", True),
        ("$12.50 / 5 = $2.60", False),
        ("1,200 + 300 = 1,500", True),
        ("1,200 + 300 = 1,600", False),
        ("1/2 of 30 = 15", True),
        ("1/2 of 30 = 16", False),
        ("1/2 = 50%", True),
        ("2 x 3 = 6 x 1 = 6", True),  # every side of a chain has the same value
        ("2 * 3 = 7 * 4 = 28", False),
        ("10 / 3 = 3.33", True),  # a rounded decimal for a value with no finite expansion
        ("2.45 + 0.01 = 2.5", False),  # but not for one that has one
        ("3 times 4 = 12", True),
        ("20 divided by 4 = 5", True),
    ],
)
def test_claims_true_and_false(step, ok):
    claims = find_claims(step)
    assert len(claims) == 1, claims
    assert claims[0].ok is ok
    assert verify_step(step).ok is ok


def test_false_claim_reason_gives_the_true_value():
    check = verify_step("so 3 x 4 = 13 apples")
    assert not check.ok
    assert check.reason == "3 x 4 = 13 is false (3 x 4 = 12)"


def test_division_by_zero_is_false_with_a_reason():
    check = verify_step("48 / 0 = 5")
    assert not check.ok
    assert check.reason == "48 / 0 = 5 divides by zero"
    assert not verify_step("<<48/(2-2)=0>>").ok


def test_gsm8k_annotations_are_the_claims():
    step = "Natalia sold 48/2 = <<48/2=24>>24 clips in May."
    claims = find_claims(step)
    assert [(c.text, c.ok) for c in claims] == [("48/2=24", True)]
    assert verify_step("She sold 48/2 = <<48/2=25>>25 clips.").ok is False
    assert verify_step("Each costs <<.25*40=10>>10 dollars").ok


@pytest.mark.parametrize(
    "step",
    [
        "She puts the apples in a box.",
        "There are 12 apples.",
        "x = 5",
        "Let x be the number of boxes, so x = 5.",
        "2 hours = 120 minutes",
        "The train leaves at 2:30 and arrives at 4:15.",
        "1:30 + 2 = 3:30",
        "On 2024-03-05 she paid 12/25 of it.",
        "3x + 4 = 10",
        "",
    ],
)
def test_steps_without_claims_pass(step):
    assert find_claims(step) == []
    assert verify_step(step).ok


def test_words_around_claims_are_ignored():
    step = "She has 16 eggs and eats 3, so 16 - 3 = 13 eggs are left."
    assert [c.text for c in find_claims(step)] == ["16 - 3 = 13"]
    step = "Step 2: 3 + 4 = 7 and 7 x 2 = 14."
    assert [c.text for c in find_claims(step)] == ["3 + 4 = 7", "7 x 2 = 14"]
    assert [c.result for c in find_claims("The total is 8 - 2 = 6.")] == [6]


def test_x_is_an_operator_only_between_numbers():
    assert [c.text for c in find_claims("The box holds 3 + 4 = 7 toys")] == ["3 + 4 = 7"]
    assert verify_step("6 boxes x 4 = 24").ok
    assert not verify_step("6 boxes x 4 = 25").ok
    assert verify_step("5 apples + 3 apples = 8 apples").ok
    assert not verify_step("5 apples + 3 apples = 9 apples").ok


# --- traces ---------------------------------------------------------------------------------


def test_answer_follows_the_last_claim():
    good = trace(["3 x 4 = 12 apples", "12 + 12 = 24", "So she has 24 apples."], "24")
    assert verify_trace(good) == {"answer": True, "steps": [True, True, True]}
    assert trace_failures(good) == []
    bad = trace(["3 x 4 = 12 apples", "12 + 12 = 24"], "25")
    assert verify_trace(bad) == {"answer": False, "steps": [True, True]}
    assert trace_failures(bad) == ["answer '25' does not match the last claim (12 + 12 = 24)"]


def test_answer_is_compared_after_canonicalisation():
    assert verify_trace(trace(["$12.50 x 4 = $50.00"], "$50"))["answer"]
    assert verify_trace(trace(["3 / 4 = 0.75"], "3/4"))["answer"]
    assert verify_trace(trace(["30 / 40 = 75%"], "75%"))["answer"]
    assert verify_trace(trace(["<<48/2=24>>24 clips"], "24 clips"))["answer"]


def test_false_step_is_reported_with_its_number():
    t = trace(["3 x 4 = 12", "12 + 12 = 25"], "25")
    assert verify_trace(t) == {"answer": True, "steps": [True, False]}
    assert trace_failures(t) == ["step 2: 12 + 12 = 25 is false (12 + 12 = 24)"]


def test_answer_without_claims_must_appear_in_the_last_step():
    assert verify_trace(trace(["Count the apples.", "There are 7 apples."], "7"))["answer"]
    assert not verify_trace(trace(["Count the apples.", "There are 7 apples."], "8"))["answer"]
    assert verify_trace(trace(["The day after Monday is Tuesday."], "Tuesday"))["answer"]


def test_a_trace_with_no_steps_is_rejected():
    assert verify_trace(trace([], "24")) == {"answer": False, "steps": []}
    assert trace_failures(trace([], "24")) == ["no steps: a trace shows at least one step"]


def test_non_numeric_answer_fails_when_steps_compute():
    t = trace(["3 + 4 = 7"], "seven")
    assert verify_trace(t)["answer"] is False
    assert trace_failures(t) == ["answer 'seven' is not a number the steps reach"]


# --- files ----------------------------------------------------------------------------------


@pytest.fixture
def mixed_file(tmp_path):
    good = {"id": "good", "question": "q?", "steps": ["3 x 4 = 12", "12 + 12 = 24"], "answer": "24"}
    bad = {"id": "bad", "question": "q?", "steps": ["3 x 4 = 13"], "answer": "13"}
    path = tmp_path / "traces.jsonl"
    lines = [json.dumps(good), "", json.dumps(bad), "{not json", json.dumps(dict(good, id="good2"))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_verify_file_counts_and_locates_failures(mixed_file):
    report = verify_file(mixed_file)
    assert report["total"] == 4
    assert report["passed"] == 2
    assert [(f["id"], f["line"]) for f in report["failures"]] == [("bad", 3), (None, 4)]
    assert report["failures"][0]["reason"] == "step 1: 3 x 4 = 13 is false (3 x 4 = 12)"
    assert "invalid JSON" in report["failures"][1]["reason"]


def test_main_verify_text_and_json(mixed_file, capsys):
    assert main_verify(mixed_file, as_json=False) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{mixed_file}:3 bad: step 1: 3 x 4 = 13 is false (3 x 4 = 12)"
    assert out[1].startswith(f"{mixed_file}:4: invalid JSON")
    assert out[-1] == "2/4 traces passed (claims: 4 true, 1 false, 0 unverifiable)"

    assert main_verify(mixed_file, as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 4 and report["passed"] == 2
    assert report["claims"] == {"true": 4, "false": 1, "unverifiable": 0} and report["unverifiable"] == 0


@pytest.mark.parametrize("content", ["", "\n  \n\n", "\ufeff\n"])
def test_a_file_without_traces_fails(tmp_path, capsys, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TraceFileError, match=f"^{re.escape(str(path))}: holds no traces"):
        verify_file(path)
    assert main_verify(path, as_json=True) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{path}: holds no traces") and len(captured.err.splitlines()) == 1


def test_main_verify_all_good(tmp_path, capsys):
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q", "steps": ["2 + 2 = 4"], "answer": "4"}) + "\n")
    assert main_verify(path, as_json=False) == 0
    assert capsys.readouterr().out.strip() == "1/1 traces passed (claims: 1 true, 0 false, 0 unverifiable)"


@pytest.mark.parametrize("step, fixed", [
    ("after winning: 61 + 9 = 79", "after winning: 61 + 9 = 70"),
    ("8 + 11 = 29", "8 + 11 = 19"),
    ("16 - 3 - 4 = 7", "16 - 3 - 4 = 9"),
    ("5 - 8 = 3", "5 - 8 = -3"),
    ("25% of 40 = 12", "25% of 40 = 10"),
    ("each: $12.50 / 5 = $2.00 each", "each: $12.50 / 5 = $2.50 each"),
    ("1.5 x 3 = 4.0 kg", "1.5 x 3 = 4.5 kg"),
    ("total: 3 x 4 = 12, then 12 + 1 = 14", "total: 3 x 4 = 12, then 12 + 1 = 13"),
    ("3 x 4 = 11 and 11 + 1 = 13", "3 x 4 = 12 and 11 + 1 = 12"),
])
def test_correct_step_replaces_only_the_false_results(step, fixed):
    assert not verify_step(step).ok
    assert correct_step(step) == fixed
    assert verify_step(fixed).ok


@pytest.mark.parametrize("step", [
    "change: 20 - 12 = 8",  # true: nothing to correct
    "no claim here, 5 apples",
    "2 * 3 = 6 * 4 = 24",  # the sides disagree among themselves: no single result to replace
    "10 / 3 = 4",  # the exact value has no finite decimal
    "12 = 3 x 5",  # the result is not on the right
    "<<48/2=25>>25",  # annotations repeat their result outside
    "2(3 + 4) = 15",  # implicit multiplication is not read, so not "corrected" to 7
])
def test_correct_step_leaves_what_it_cannot_correct(step):
    assert correct_step(step) is None


# --- three outcomes: forms the verifier does not read are unverifiable, never false ----------


@pytest.mark.parametrize("step, reason", [
    ("2(3) = 6", "implicit multiplication"),
    ("2(3 + 4) = 14", "implicit multiplication"),
    ("Rodney:8(20)-14=146 pounds", "implicit multiplication"),
    ("8 people eat 1 1/2 rolls each, 8 x 1 1/2 = 12 rolls.", "a mixed number"),
    ("12 x 1 and 1/4 = 15", "a mixed number"),
    ("17/3 = 5 and 2/3 loads", "a mixed number"),
    ("60g * 4/5 = 240g/5 = 48", "a word inside the expression"),
    ("3N + 3 = 18", "a variable in the expression"),
    ("We know that e - 20 = 1/5e", "a variable in the expression"),
    ("120% = 1.2", "a change of units or form"),
    ("2 hours = 120 minutes", "no arithmetic"),
    ("9 teaspoons / 21 teaspoons * 100% = 42.857", "a percentage read as a plain number"),
    ("she was able to sell 50/ 1/2 = 100 half dozens", "a division whose spacing groups it otherwise"),
    ("600 miles / 50 miles per hour = 12 hours * 60 minutes per hour = 720 minutes", "a running computation"),
    ("2 * 3 = 6 * 4 = 24", "a running computation"),
    ("100 stickers / 3 friends = 33 stickers for each friend, with 1 remaining", "a quotient with a remainder"),
    ("He spends 50 cents because $1 / 2 = 50 cents", "a change of units"),
    ("Lazlo = 4 pounds - 6 ounces = 58 ounces", "numbers of different units added"),
    ("He has to leave 0900-0130 = 0730 hours", "a number with a leading zero"),
    ("Over 50:40-4-24=12 Judges", "a number glued to the expression"),
    ("Let N be the smallest number.", "no arithmetic"),
])
def test_forms_it_does_not_read_are_unverifiable(step, reason):
    claims = step_claims(step)
    assert {c.outcome for c in claims} == {"unverifiable"}, claims
    assert claims[0].reason.startswith(reason) and claims[0].ok
    assert find_claims(step) == [] and verify_step(step).ok
    assert correct_step(step) is None  # nothing is "corrected" that was not read


@pytest.mark.parametrize("step, text", [
    ("so S + 143 = 200 - 16 = 184.", "200 - 16 = 184"),  # the variable cuts the first side only
    ("Middle Tree:150(2/3)=300/3=100 feet", "300/3=100"),
    ("Week 1:600/2=300", "600/2=300"),  # `1:60` is no time of day
    ("6 desks/row * 2 students / 3 desks = 4 students/row", "6 desks/row * 2 students / 3 desks = 4"),
    ("Remaining 10 = 62,300/10 = $6230", "62,300/10 = $6230"),  # a number labelling the claim
    ("5/5 – 1/5 = 4/5 for other things", "5/5 – 1/5 = 4/5"),  # an en dash subtracts
    ("20 minutes / 240 minutes x 100% = 8.333...%, about 8%", "20 minutes / 240 minutes x 100% = 8.333...%"),
])
def test_what_is_read_around_such_forms_is_checked(step, text):
    claims = find_claims(step)
    assert [(c.text, c.outcome) for c in claims] == [(text, "true")]


@pytest.mark.parametrize("step", [
    "29 + 24 decorations already up = 83 total decorations",  # a sentence is not a unit
    "Juwan is 1/3 of Solomon = 66/3 = 22",
    "Therefore X = 9 because - 18/-2 = 9",
    "Trisha's pay is 15 dollars an hour x 40 hours per week x 52 weeks = 31,200 dollars",
    "10 pages per day on day 1 * 2 = 20 pages per day for days 2 through 7",
    "Subtract Weeks 3-4 from Weeks 1-2 = 96 - 70 = 26",
    "he has to make a total of $100+($100*(10/100) = $110 from sales",
    "The proportions total 2.46 because .8 + . 84 + .82 = 2.46",
])
def test_words_of_a_sentence_are_not_units(step):
    assert all(c.outcome != "false" for c in step_claims(step))


def test_unverifiable_steps_never_fail_a_trace_and_are_counted():
    t = trace(["Let x be the number of apples.", "2(3 + 4) = 14", "x = 14"], "14")
    review = review_trace(t)
    assert review.failures == [] and review.checks == {"answer": True, "steps": [True, True, True]}
    assert review.counts() == {"true": 0, "false": 0, "unverifiable": 3}


def test_the_answer_follows_what_the_trace_concludes():
    assert verify_trace(trace(["12 + 12 = 24", "24 - 16 = 8", "Thus he has 8 left"], "8"))["answer"]
    assert verify_trace(trace(["3x + 4 = 58", "3x = 54", "so x = 18"], "18"))["answer"]
    assert verify_trace(trace(["24 / 2 = 12 sodas.", "12 / 2 = 6 sodas. It takes 3 weeks."], "3"))["answer"]
    assert verify_trace(trace(["17 000 / 5 = 3 400 people a year."], "3400"))["answer"]
    assert verify_trace(trace(["4 + 3 = 7:00 pm"], "7"))["answer"]
    assert verify_trace(trace(["12 + 12 = 24", "That is all."], "24"))["answer"]  # the last step with a number
    bad = trace(["12 + 12 = 24", "Thus he has 8 left"], "24")
    assert trace_failures(bad) == ["answer '24' does not appear in the last step"]


@pytest.mark.skipif(not (GSM8K / "train.jsonl").is_file(), reason=f"GSM8K is not in {GSM8K}")
def test_gsm8k_reference_errors_are_false_and_the_rest_is_not():
    lines = (GSM8K / "train.jsonl").read_text(encoding="utf-8").splitlines()

    def solution(n):
        return json.loads(lines[n - 1])["answer"].split("\n")

    # real errors in the reference solutions (line numbers in train.jsonl)
    assert not verify_step(solution(4692)[0]).ok  # 2*8 = 24 hours
    assert not verify_step(solution(6257)[1]).ok  # 10 x 1,248 = 11,480
    assert not verify_step(solution(6701)[1]).ok  # 2 / 12 = .125
    # forms that read false word by word but are not errors
    for n, k in [(9, 2), (3401, 7), (198, 1), (809, 1), (3072, 0), (4380, 0), (875, 1), (4560, 1), (658, 3)]:
        assert all(c.outcome != "false" for c in step_claims(solution(n)[k])), (n, solution(n)[k])
