import json
from fractions import Fraction

import pytest

from tracetutor.trace import (
    Trace,
    TraceFileError,
    answers_match,
    canonical_answer,
    load_traces,
    parse_completion,
    parse_number,
    read_traces,
    render_completion,
    render_messages,
    save_traces,
)

RECORD = {
    "id": "synth/multi_step/000123",
    "question": "Tom has 3 bags of 4 apples and buys 12 more. How many apples?",
    "steps": ["3 x 4 = 12", "12 + 12 = 24"],
    "answer": "24",
    "source": "synth",
    "family": "multi_step",
    "difficulty": 2,
    "checks": {"answer": True, "steps": [True, True]},
}


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the record ---------------------------------------------------------------------------


def test_record_round_trip_keeps_order_and_unknown_keys():
    d = dict(RECORD, teacher="gpt-x", meta={"seed": 7})
    trace = Trace.from_dict(d)
    assert trace.steps == ["3 x 4 = 12", "12 + 12 = 24"]
    assert trace.extra == {"teacher": "gpt-x", "meta": {"seed": 7}}
    out = trace.to_dict()
    assert out == d
    assert list(out) == list(RECORD) + ["teacher", "meta"]


def test_minimal_record_defaults_and_omits_none():
    trace = Trace.from_dict({"id": "a", "question": "q?", "answer": 24})
    assert trace.steps == []
    assert trace.answer == "24"
    assert trace.source == "synth"
    assert trace.to_dict() == {"id": "a", "question": "q?", "steps": [], "answer": "24", "source": "synth"}


def test_save_then_load_round_trip(tmp_path):
    traces = [
        Trace.from_dict(dict(RECORD, note="kept")),
        Trace.from_dict({"id": "b", "question": "Combien font 2 + 2 ?", "steps": [], "answer": "4"}),
    ]
    path = tmp_path / "nested" / "dir" / "traces.jsonl"
    assert save_traces(path, traces) == 2
    assert load_traces(path) == traces
    text = path.read_text(encoding="utf-8")
    assert "Combien" in text and "\\u" not in text  # written as UTF-8, not escaped
    assert [p.name for p in path.parent.iterdir()] == ["traces.jsonl"]  # no temporary left


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "t.jsonl"
    save_traces(path, [Trace.from_dict(RECORD)] * 3)
    save_traces(path, [Trace.from_dict(RECORD)])
    assert len(load_traces(path)) == 1


def test_malformed_json_names_file_and_line_and_reading_goes_on(tmp_path):
    path = tmp_path / "data.jsonl"
    good = json.dumps(RECORD)
    write_lines(path, [good, "", '{"id": "broken", ', json.dumps(dict(RECORD, id="last"))])
    traces, errors = read_traces(path)
    assert [t.id for t in traces] == [RECORD["id"], "last"]
    assert len(errors) == 1
    error = errors[0]
    assert error.line == 3
    assert error.path == str(path)
    assert str(error).startswith(f"{path}:3: ")
    assert "invalid JSON" in str(error)
    with pytest.raises(TraceFileError, match=":3: "):
        load_traces(path)


def test_missing_field_is_named(tmp_path):
    path = tmp_path / "data.jsonl"
    record = dict(RECORD)
    del record["question"]
    write_lines(path, [json.dumps(RECORD), json.dumps(record)])
    with pytest.raises(TraceFileError) as info:
        load_traces(path)
    assert info.value.field == "question"
    assert info.value.line == 2
    assert str(info.value) == f"{path}:2: field 'question': missing"


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("steps", 3, "field 'steps': expected a list of strings, got int"),
        ("steps", ["ok", 4], "field 'steps': expected a list of strings, item 2 is int"),
        ("id", 17, "field 'id': expected a string, got int"),
        ("answer", None, "field 'answer': expected a string or a number, got null"),
        ("answer", True, "field 'answer': expected a string or a number, got bool"),
        ("difficulty", "hard", "field 'difficulty': expected an integer or null, got str"),
        ("checks", [True], "field 'checks': expected an object or null, got list"),
    ],
)
def test_wrong_type_is_named(key, value, expected):
    with pytest.raises(TraceFileError) as info:
        Trace.from_dict(dict(RECORD, **{key: value}), path="data.jsonl", line=7)
    assert info.value.field == key
    assert str(info.value) == f"data.jsonl:7: {expected}"


def test_a_record_must_be_an_object():
    with pytest.raises(TraceFileError, match="expected a JSON object, got list"):
        Trace.from_dict([1, 2])


# --- the text format ------------------------------------------------------------------------


def test_render_both_modes():
    trace = Trace.from_dict(RECORD)
    assert render_completion(trace) == "Step 1: 3 x 4 = 12\nStep 2: 12 + 12 = 24\nAnswer: 24"
    assert render_completion(trace, "answers") == "Answer: 24"
    messages = render_messages(trace, "traces")
    assert messages == [
        {"role": "user", "content": RECORD["question"]},
        {"role": "assistant", "content": render_completion(trace)},
    ]


def test_render_rejects_unknown_mode():
    with pytest.raises(ValueError, match="traces, answers"):
        render_completion(Trace.from_dict(RECORD), "steps")


@pytest.mark.parametrize("mode", ["traces", "answers"])
def test_render_parse_round_trip(mode):
    trace = Trace.from_dict(dict(RECORD, steps=["Add 3 and 4:\n3 + 4 = 7", "Double it: 7 x 2 = 14"], answer="14"))
    steps, answer = parse_completion(render_completion(trace, mode))
    assert answer == "14"
    expected = ["Add 3 and 4: 3 + 4 = 7", "Double it: 7 x 2 = 14"] if mode == "traces" else []
    assert steps == expected


@pytest.mark.parametrize(
    "text, steps, answer",
    [
        ("Step 1: a\r\nStep 2: b\r\nAnswer: 5\r\n", ["a", "b"], "5"),
        ("Step 1: a\n\n\nStep 7: b\nAnswer: 5", ["a", "b"], "5"),  # blank lines, misnumbered
        ("a\nstep 2) b\nAnswer: 5", ["a", "b"], "5"),  # missing and odd prefixes
        ("Step 1: a\nAnswer: 5\nStep 2: junk\nAnswer: 6", ["a"], "5"),  # garbage after
        ("Step 1: 2 + 2 = 4. Answer: 4", ["2 + 2 = 4."], "4"),
        ("Step 1: a\nAnswer:   $1,200  ", ["a"], "$1,200"),
        ("Answer: Answer: 3", [], "3"),
        ("Step 1: a\nStep 2: b", ["a", "b"], None),
        ("Step 1: a\nAnswer:", ["a"], None),
        ("", [], None),
        ("Step back: 3 + 4 = 7\nAnswer: 7", ["Step back: 3 + 4 = 7"], "7"),  # not a prefix
    ],
)
def test_parse_completion_tolerates_messy_text(text, steps, answer):
    assert parse_completion(text) == (steps, answer)


# --- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, canonical",
    [
        ("1,234", "1234"),
        ("$5.00", "5"),
        ("12.0", "12"),
        ("12.", "12"),
        (" 24 ", "24"),
        ("3/4", "3/4"),
        ("6/8", "3/4"),
        ("0.75", "3/4"),
        ("8/2", "4"),
        ("1 1/2", "3/2"),
        ("2.50", "5/2"),
        ("25%", "25"),
        ("25 percent", "25"),
        ("-3", "-3"),
        ("-$5", "-5"),
        ("£1,000,000", "1000000"),
        ("12 apples", "12"),
        ("12 apples.", "12"),
        ("5 and a half", "5 and a half"),
        ("  New   York ", "new york"),
        ("Yes.", "yes"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_canonical_answer(raw, canonical):
    assert canonical_answer(raw) == canonical


def test_answers_match():
    assert answers_match("$1,200.00", "1200")
    assert answers_match("0.5", "1/2")
    assert answers_match("3/4", "6/8")
    assert answers_match("25%", "25")
    assert not answers_match("24", "25")
    assert not answers_match(None, None)
    assert not answers_match("", "")


@pytest.mark.parametrize(
    "text, value",
    [
        ("1,234.5", Fraction(2469, 2)),
        ("$12", Fraction(12)),
        ("-3", Fraction(-3)),
        (".5", Fraction(1, 2)),
        ("3/4", Fraction(3, 4)),
        ("1 1/2", Fraction(3, 2)),
        ("3/0", None),
        ("25%", None),
        ("1,23", None),
        ("twelve", None),
        ("", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_save_to_a_folder_names_it_and_leaves_the_folder(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(IsADirectoryError) as info:
        save_traces(folder, [Trace.from_dict(RECORD)])
    assert str(info.value).startswith(f"{folder}: is a folder")
    assert (folder / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "t.jsonl"
    save_traces(path, [Trace.from_dict(RECORD)])
    before = path.read_bytes()

    def traces():
        yield Trace.from_dict(RECORD)
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        save_traces(path, traces())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]
