"""The tutors' shared logic over a hand-written scripted model: hints, check my work, checked
arithmetic marks, self-consistency, conversations and the model catalog."""

import json
import re

import pytest

from tracetutor.apps.tutoring import Conversation, History, Tutor, first_wrong_step, model_catalog
from tracetutor.runtime import Answer, Done, Engine, Step, Token

from scripted import APPLES, FIXED, PLAIN, SHELLS, SLIP, ScriptedBackend


def tutor(check=True):
    backend = ScriptedBackend({APPLES: [SLIP, FIXED], SHELLS: [PLAIN]})
    return Tutor(Engine(backend, "scripted"), check=check, model="scripted")


def test_solve_streams_every_step_and_marks_the_corrected_one():
    t = tutor()
    t.ask(APPLES)
    events = list(t.solve())
    steps = [e for e in events if isinstance(e, Step)]
    assert [(s.text, s.corrected_from) for s in steps] == [("8 + 11 = 19", "Step 1: 8 + 11 = 29"), ("19 - 4 = 15", None)]
    assert [e.text for e in events if isinstance(e, Answer)] == ["15"]
    assert "".join(e.text for e in events if isinstance(e, Token)) == FIXED
    assert events[-1].stats["corrected_steps"] == [1]
    assert t.conversation.entries[-1].text == ("Step 1: 8 + 11 = 19   (corrected: the model wrote 8 + 11 = 29)\n"
                                               "Step 2: 19 - 4 = 15\nAnswer: 15")
    unchecked = tutor(check=False)
    unchecked.ask(APPLES)
    assert [e.text for e in unchecked.solve() if isinstance(e, Answer)] == ["25"]


def test_a_solution_read_up_to_its_done_event_is_kept():
    t = tutor()
    t.ask(SHELLS)
    for event in t.solve():
        if isinstance(event, Done):
            assert t.worked.answer == "10"  # a UI may render the solution as Done arrives
            break
    assert t.conversation.entries[-1].kind == "solution" and t.hint() is None


def test_hint_reveals_one_more_step_per_call_and_the_answer_last():
    t = tutor()
    t.ask(SHELLS)
    hints = [t.hint() for _ in range(5)]
    assert [h.step.text if h and h.step else None for h in hints] == ["3 x 4 = 12", "12 + 5 = 17", "17 - 7 = 10", None, None]
    assert [h.number for h in hints[:4]] == [1, 2, 3, 4]
    assert hints[3].answer == "10" and hints[3].last and not any(h.last for h in hints[:3])
    assert hints[4] is None  # everything is out
    assert t.engine.backend.calls == 1  # generated once, revealed step by step
    t.ask(APPLES)  # a new question starts over, and its corrected step is marked in the hint
    first = t.hint()
    assert first.number == 1 and first.step.corrected_from == "Step 1: 8 + 11 = 29"
    assert t.conversation.entries[-1].text == "Hint 1: Step 1: 8 + 11 = 19   (corrected: the model wrote 8 + 11 = 29)"


def test_solve_after_hints_replays_the_same_solution():
    t = tutor()
    t.ask(SHELLS)
    t.hint()
    events = list(t.solve())
    assert [e.text for e in events if isinstance(e, Step)] == ["3 x 4 = 12", "12 + 5 = 17", "17 - 7 = 10"]
    assert isinstance(events[-1], Done) and events[-1].answer == "10"
    assert t.engine.backend.calls == 1 and t.hint() is None


def test_check_my_work_judges_the_answer_against_the_checked_solution():
    t = tutor()
    t.ask(APPLES)
    right = t.check_work("15")
    assert right.right and right.expected == "15" and right.wrong_step is None
    assert right.message == "Right: 15 is the answer."
    assert t.check_work("$15.00").right  # compared as numbers, not as text
    # the model's own unchecked answer was 25: the learner is judged against the checked one
    wrong = t.check_work("25")
    assert wrong.right is False and wrong.message == "Not quite: 25 is not the answer."


def test_check_my_work_names_the_first_wrong_step_and_its_correction():
    t = tutor()
    t.ask(APPLES)
    work = "Step 1: 8 + 11 = 19\nStep 2: 19 - 4 = 12\n\nStep 3: 12 + 1 = 14"
    result = t.check_work("12", work)
    assert result.right is False and result.wrong_step == 2
    assert result.step_note == "Step 2: 19 - 4 = 12 is wrong: 19 - 4 = 15"
    assert result.message.splitlines() == ["Not quite: 12 is not the answer.", result.step_note]
    # steps without the `Step n:` prefix are numbered by line; a right answer can hide a slip
    lucky = t.check_work("15", ["8 + 11 = 20", "20 - 5 = 15"])
    assert lucky.right and lucky.wrong_step == 1 and lucky.step_note == "Step 1: 8 + 11 = 20 is wrong: 8 + 11 = 19"
    assert first_wrong_step(["She buys 50 and uses 4", "46 - 44 = 12"]) == (2, "Step 2: 46 - 44 = 12 is wrong: 46 - 44 = 2")
    # a claim with no single result to replace still says what each side is
    assert first_wrong_step(["3 + 4 = 8 = 7"]) == (1, "Step 1: 3 + 4 = 8 = 7 is wrong: 3 + 4 = 7")
    assert first_wrong_step(["8 + 11 = 19", "Answer: 19"]) == (None, None)
    with pytest.raises(ValueError, match="answer is empty"):
        t.check_work("  ", "8 + 11 = 19")


def test_nothing_happens_before_a_question():
    t = tutor()
    with pytest.raises(ValueError, match="ask a question first"):
        t.hint()
    with pytest.raises(ValueError, match="question is empty"):
        t.ask("   ")


def test_self_consistency_reports_the_vote_share():
    backend = ScriptedBackend({APPLES: [FIXED, FIXED, "Step 1: 8 + 11 = 19\nAnswer: 16"]})
    t = Tutor(Engine(backend, "scripted"), check=False)
    t.ask(APPLES)
    sol = t.vote(samples=5, temperature=0.8)
    assert sol.answer == "15" and sol.votes == {"15": 4, "16": 1} and sol.share == 0.8
    assert t.conversation.entries[-1].text == "Answer: 15 (4 of 5 samples agree, 80%); votes 15: 4, 16: 1"


def test_markdown_export_holds_every_exchange(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACETUTOR_DATA", str(tmp_path))
    t = tutor()
    t.ask(APPLES)
    t.hint()
    t.check_work("12", "8 + 11 = 19\n19 - 4 = 12")
    list(t.solve())
    path = History().export(t.conversation)
    assert path == tmp_path / "exports" / f"{t.conversation.id}.md"
    md = path.read_text()
    assert md.startswith(f"# {APPLES}\n")
    expected = [f"## Question\n\n{APPLES}",
                "**Tutor, hint:**", "Hint 1: Step 1: 8 + 11 = 19   (corrected: the model wrote 8 + 11 = 29)",
                "**You, my work:**", "Step 1: 8 + 11 = 19  \nStep 2: 19 - 4 = 12  \nMy answer: 12",
                "**Tutor, check:**", "Not quite: 12 is not the answer.  \nStep 2: 19 - 4 = 12 is wrong: 19 - 4 = 15",
                "**Tutor, solution:**"]
    positions = [md.index(x) for x in expected]
    assert positions == sorted(positions)
    assert md.rstrip().endswith("Step 2: 19 - 4 = 15  \nAnswer: 15")


def test_history_round_trip_newest_first(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACETUTOR_DATA", str(tmp_path))
    history = History()
    assert history.root == tmp_path / "conversations"
    older = Conversation("20250101-000000-aaaaaa", "2025-01-01T00:00:00", "m", "gguf-q8_0")
    history.save(older)
    t = tutor()
    t.ask(APPLES)
    list(t.solve())
    t.check_work("15", "8 + 11 = 19")
    path = history.save(t.conversation)
    assert json.loads(path.read_text())["entries"][1]["data"]["steps"][0]["corrected_from"] == "Step 1: 8 + 11 = 29"
    (history.root / "20240101-000000-bbbbbb.json").write_text("{not json")  # a damaged file is skipped
    listed = history.list()
    assert [c.id for c in listed] == [t.conversation.id, older.id]
    assert listed[0] == t.conversation and listed[0].to_markdown() == t.conversation.to_markdown()
    with pytest.raises(ValueError, match="bbbbbb.json: not a saved conversation"):
        history.load("20240101-000000-bbbbbb")


def test_catalog_lists_trained_models_with_variants_sizes_and_accuracy(models):
    tiny = models / "release" / "tiny-tutor"  # the shipped default
    tiny.mkdir(parents=True)
    (tiny / "release.json").write_text("{}")
    (tiny / "tiny-tutor-q8_0.gguf").write_bytes(b"x" * 2000)
    (tiny / "onnx-int8").mkdir()
    (tiny / "onnx-int8" / "model.onnx").write_bytes(b"x" * 500)
    (tiny / "onnx-int8" / "model.onnx.data").write_bytes(b"x" * 700)
    (tiny / "bench.json").write_text(json.dumps({"variants": {"gguf-q8_0": {"accuracy": 0.5, "checked": {"accuracy": 0.75}}}}))
    other = models / "another"
    other.mkdir()
    (other / "another-f16.gguf").write_bytes(b"x" * 10)
    (other / "bench.json").write_text("{damaged")  # accuracy is only shown: none, not an error
    (models / "untrained").mkdir()
    catalog = model_catalog()
    assert [(m.name, m.default) for m in catalog] == [("tiny-tutor", True), ("another", False)]
    tiny_choice = catalog[0]
    assert [(v.name, v.size_bytes, v.accuracy, v.checked_accuracy) for v in tiny_choice.variants] == [
        ("onnx-int8", 1200, None, None), ("gguf-q8_0", 2000, 0.5, 0.75)]
    assert tiny_choice.preferred_variant() == "gguf-q8_0"  # GGUF first: the tutors need no torch
    assert catalog[1].variants[0].accuracy is None


TYPED = ("![](http://example.com/x.png) costs <b>$3</b> & <img src=http://example.com/y.png> *each*\n"
         "# not a heading\n- not a list\n12. not a list either\n> not a quote\n---\n`3 * 4` | [a](http://example.com) \\")


def rendered(md: str) -> tuple[str, str]:
    """(HTML, its text as a reader sees it) of Markdown rendered as GitHub does (tables, strikethrough)."""
    import html

    markdown_it = pytest.importorskip("markdown_it")
    page = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)
    return page, html.unescape(re.sub(r"<[^>]+>", "", page))


def test_markdown_export_shows_typed_text_as_typed_and_loads_nothing():
    conv = Conversation("20250101-000000-cccccc", "2025-01-01T00:00:00", "m", "gguf-q8_0")
    conv.add("learner", "question", TYPED)
    conv.add("tutor", "solution", "Step 1: 3 x 4 = 12 ![](http://example.com/z.png)<script>x()</script>\nAnswer: 12")
    conv.add("learner", "work", TYPED, {"answer": TYPED, "steps": []})
    page, text = rendered(conv.to_markdown())
    tags = re.findall(r"<(\w+)", page)  # no image, link, HTML, list, quote, rule, code or table
    assert set(tags) <= {"h1", "h2", "p", "br", "strong", "em"} and tags.count("h1") == tags.count("h2") == 1, page
    lines = text.splitlines()
    for line in TYPED.splitlines():  # every line reads as typed, in the title, the question and the work
        assert sum(line in x for x in lines) == 3, (line, text)
    assert "Step 1: 3 x 4 = 12 ![](http://example.com/z.png)<script>x()</script>" in lines
