"""Importers: GSM8K (read from ../shared/data/gsm8k), any JSONL with a field mapping, chat JSONL."""

import json
from pathlib import Path

import pytest

from tracetutor.cli import main
from tracetutor.trace import load_traces
from tracetutor.train.importers import import_chat, import_gsm8k, import_jsonl, parse_mapping
from tracetutor.verify import review_trace

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"
needs_gsm8k = pytest.mark.skipif(not (GSM8K / "train.jsonl").is_file(), reason=f"GSM8K is not in {GSM8K}")


def write_lines(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


@needs_gsm8k
@pytest.mark.parametrize("split, n", [("train", 7473), ("test", 1319)])
def test_every_gsm8k_solution_imports(split, n):
    done = import_gsm8k(GSM8K / f"{split}.jsonl")
    assert done.errors == [] and len(done.traces) == n
    assert all("<<" not in step for t in done.traces for step in t.steps)
    first = done.traces[0]
    assert first.id == f"gsm8k/{split}/000001" and first.source == "gsm8k" and first.extra["gold"] == first.answer
    assert all(1 <= t.difficulty <= 4 and t.steps for t in done.traces)


@needs_gsm8k
def test_gsm8k_steps_are_its_lines_without_annotations(tmp_path):
    line = (GSM8K / "train.jsonl").open(encoding="utf-8").readline()
    (trace,) = import_gsm8k(write_lines(tmp_path / "train.jsonl", [line.strip()])).traces
    assert trace.steps == ["Natalia sold 48/2 = 24 clips in May.",
                           "Natalia sold 48+24 = 72 clips altogether in April and May."]
    assert trace.answer == "72" and trace.difficulty == 1
    assert review_trace(trace).counts() == {"true": 2, "false": 0, "unverifiable": 0}


def test_gsm8k_bad_lines_are_one_error_each_and_counted(tmp_path):
    good = {"question": "Tom has 3 bags of 4 apples. How many?", "answer": "3 x 4 = <<3*4=12>>12 apples\n#### 12"}
    wrong = {"question": "Half of 48?", "answer": "48/2 = <<48/2=25>>25\n#### 25"}
    path = write_lines(tmp_path / "mixed.jsonl", [
        good, "{not json", {"question": "no mark", "answer": "2 + 2 = 4"}, {"answer": "#### 4"}, "", wrong,
        {"question": "no steps", "answer": "#### 4"}])
    done = import_gsm8k(path)
    assert [t.id for t in done.traces] == ["gsm8k/mixed/000001", "gsm8k/mixed/000006"]
    assert done.traces[0].steps == ["3 x 4 = 12 apples"]
    assert done.traces[1].extra["annotation_errors"] == ["48/2=25 is false (48/2 = 24)"]
    assert len(done.errors) == 4
    assert done.errors[0].startswith(f"{path}:2: invalid JSON")
    assert done.errors[1] == f"{path}:3: field 'answer': no '#### answer' line in the solution"
    assert done.errors[2] == f"{path}:4: field 'question': missing"
    assert done.errors[3] == f"{path}:7: no solution steps"


def test_jsonl_with_a_field_mapping(tmp_path):
    path = write_lines(tmp_path / "math.jsonl", [
        {"uid": 7, "problem": "What is 3 x 4 + 1?", "solution": "Step 1: 3 x 4 = 12\nStep 2: 12 + 1 = 13\nAnswer: 13"},
        {"uid": 8, "problem": "What is 2 + 2?", "solution": "2 + 2 = 4\n#### 4"},
        {"uid": 9, "problem": "No answer here", "solution": "2 + 2 = 4"},
    ])
    done = import_jsonl(path, parse_mapping("id=uid,question=problem,solution=solution"), source="math")
    assert [(t.id, t.steps, t.answer, t.source) for t in done.traces] == [
        ("7", ["3 x 4 = 12", "12 + 1 = 13"], "13", "math"), ("8", ["2 + 2 = 4"], "4", "math")]
    assert done.errors == [f"{path}:3: field 'solution': no final answer"]

    steps = write_lines(tmp_path / "steps.jsonl", [{"q": "3 + 4?", "s": ["3 + 4 = 7"], "a": 7}])
    (t,) = import_jsonl(steps, parse_mapping("question=q,steps=s,answer=a")).traces
    assert (t.id, t.steps, t.answer, t.extra["gold"]) == ("jsonl/steps/000001", ["3 + 4 = 7"], "7", "7")


@pytest.mark.parametrize("text, message", [
    ("question", "'question' is not FIELD=NAME"),
    ("prompt=q", "unknown field 'prompt'"),
])
def test_a_bad_mapping_is_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_mapping(text)


def test_chat_drops_the_system_prompt(tmp_path):
    system = {"role": "system", "content": "You are an AI assistant. Think step by step and justify your steps."}
    path = write_lines(tmp_path / "orca.jsonl", [
        {"messages": [system, {"role": "user", "content": "Mia has 7 apples and buys 5. How many?"},
                      {"role": "assistant", "content": "Step 1: 7 + 5 = 12\nAnswer: 12"}], "answer": "12"},
        {"messages": [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "It is 4."}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "Answer: 1"},
                      {"role": "user", "content": "b"}, {"role": "assistant", "content": "Answer: 2"}]},
        {"messages": "hello"},
    ])
    done = import_chat(path)
    (t,) = done.traces
    assert (t.question, t.steps, t.answer, t.extra) == ("Mia has 7 apples and buys 5. How many?", ["7 + 5 = 12"],
                                                        "12", {"gold": "12"})
    assert "AI assistant" not in json.dumps(t.to_dict())  # prompt erasure: the student never sees it
    assert done.system_prompts == 1
    assert done.errors == [
        f"{path}:2: field 'messages': the assistant message has no 'Answer:' line",
        f"{path}:3: field 'messages': expected one user and one assistant message, got 2 and 2",
        f"{path}:4: field 'messages': expected a non-empty list of messages",
    ]


def test_cli_import_writes_traces_and_reports_rejected_lines(tmp_path, capsys):
    src = write_lines(tmp_path / "in.jsonl", [
        {"question": "3 x 4?", "answer": "3 x 4 = <<3*4=12>>12\n#### 12"}, "{oops"])
    out = tmp_path / "out.jsonl"
    assert main(["data", "import", "gsm8k", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{src}:2: invalid JSON")
    assert err[-1] == f"imported 1 traces from {src} to {out} (1 lines rejected)"
    assert [t.steps for t in load_traces(out)] == [["3 x 4 = 12"]]

    assert main(["data", "import", "chat", str(src), "--out", str(out), "--map", "question=q"]) == 2
    assert "--map is for 'jsonl' imports" in capsys.readouterr().err
    empty = write_lines(tmp_path / "bad.jsonl", ["{oops"])
    assert main(["data", "import", "gsm8k", str(empty), "--out", str(out)]) == 2
    assert "no trace imported (1 lines rejected)" in capsys.readouterr().err
