import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from tracetutor.runtime import Answer, Done, Settings, Step, Token, load
from tracetutor.runtime.variants import VariantError

from scripted import FIXED, SLIP, ScriptedBackend


def test_stream_yields_tokens_steps_answer_and_stats(trained_micro):
    recipe, _ = trained_micro
    engine = load(recipe.dir)
    events = list(engine.stream("Mia has 7 apples and buys 5 more. How many apples does she have now?",
                                Settings(max_new_tokens=64)))
    done = events[-1]
    assert isinstance(done, Done)
    text = "".join(e.text for e in events if isinstance(e, Token))
    assert text == done.text and done.stats["n_tokens"] > 0
    assert set(done.stats) >= {"ttft_s", "tokens_per_s", "n_tokens", "peak_rss_bytes"}
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.index for s in steps] == list(range(1, len(steps) + 1))
    assert [s.text for s in steps] == done.steps
    answers = [e for e in events if isinstance(e, Answer)]
    assert [a.text for a in answers] == ([done.answer] if done.answer is not None else [])


def test_engine_is_loaded_once_per_process(trained_micro):
    recipe, _ = trained_micro
    assert load(recipe.dir) is load(recipe.dir)


def test_greedy_stream_and_batch_agree(trained_micro):
    recipe, _ = trained_micro
    engine = load(recipe.dir)
    qs = ["Ben has 12 marbles and loses 4. How many are left?", "A pen costs 3 dollars. How much do 4 pens cost?"]
    batch = engine.answer_batch(qs, Settings(max_new_tokens=48))
    for q, b in zip(qs, batch):
        assert engine.ask(q, Settings(max_new_tokens=48)).text == b.text


def test_unknown_variant_lists_the_variants_on_disk(trained_micro):
    recipe, _ = trained_micro
    with pytest.raises(VariantError, match=r"'gguf-q8_0' is not in .*variants on disk: torch-fp32"):
        load(recipe.dir, "gguf-q8_0")
    with pytest.raises(VariantError, match="unknown variant 'fp64'"):
        load(recipe.dir, "fp64")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tracetutor.cli", *args], capture_output=True, text=True)


def test_chat_json_and_bench_json(trained_micro):
    recipe, _ = trained_micro
    out = cli("chat", str(recipe.dir), "--json", "--max-tokens", "40", "What is 3 + 4?")
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert set(reply) == {"answer", "steps", "corrected_from", "stats"} and reply["stats"]["tokens_per_s"] > 0
    out = cli("bench", str(recipe.dir), "--variants", "torch-fp32", "--problems", "heldout", "--json", "--limit", "12")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)["variants"]["torch-fp32"]
    # the bench scores the model's own greedy answers to the first 12 held-out problems (micro
    # gets them all wrong, so the failures it lists are checked one by one)
    from tracetutor.trace import answers_match, load_traces

    problems = load_traces(recipe.dir / "data" / "heldout.jsonl")[:12]
    answers = load(recipe.dir).answer_batch([p.question for p in problems])
    right = [answers_match(a.answer, p.answer) for a, p in zip(answers, problems)]
    assert (r["n"], r["correct"], r["accuracy"]) == (12, sum(right), round(sum(right) / 12, 4))
    wrong = [(p.id, p.answer, a.answer, a.text) for p, a, ok in zip(problems, answers, right) if not ok]
    assert [(w["id"], w["expected"], w["got"], w["completion"]) for w in r["wrong"]] == wrong[:10]
    by_level = {}
    for p, ok in zip(problems, right):
        by_level.setdefault(str(p.difficulty), []).append(ok)
    assert r["by_difficulty"] == {lv: {"accuracy": round(sum(oks) / len(oks), 4), "n": len(oks)}
                                  for lv, oks in sorted(by_level.items())}


def test_bench_problems_file_errors_name_the_line(trained_micro, tmp_path):
    recipe, _ = trained_micro
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"question": "1 + 1?", "answer": 2}\n{"question": "no answer"}\n')
    out = cli("bench", str(recipe.dir), "--problems", str(bad))
    assert out.returncode == 2 and f"{bad}:2: missing field 'answer'" in out.stderr


def test_self_consistency_votes_over_sampled_traces(trained_micro):
    recipe, _ = trained_micro
    engine = load(recipe.dir)
    sol = engine.solve("Ben has 12 marbles and loses 4. How many are left?", samples=5,
                       settings=Settings(max_new_tokens=48, seed=3))
    assert len(sol.traces) == 5 and sum(sol.votes.values()) == 5
    winner, n_winner = next(iter(sol.votes.items()))  # votes are ranked, winner first
    assert sol.share == n_winner / 5
    # a real answer beats "no answer" (None); among real answers the most votes win
    real = {k: v for k, v in sol.votes.items() if k != "None"}
    if real:
        assert winner != "None" and n_winner == max(real.values())
    assert len({t.text for t in sol.traces}) > 1, "sampled traces should differ"
    assert len(sol.trace.step_confidence) == len(sol.trace.steps)
    assert all(c is None or c <= 0 for c in sol.trace.step_confidence)
    again = engine.solve("Ben has 12 marbles and loses 4. How many are left?", samples=5,
                         settings=Settings(max_new_tokens=48, seed=3))
    assert [t.text for t in again.traces] == [t.text for t in sol.traces]  # seeded: reproducible


def test_a_conversation_continues_the_previous_turn(trained_micro):
    recipe, _ = trained_micro
    engine = load(recipe.dir)
    first = engine.ask("Ben has 12 marbles and loses 4. How many are left?", Settings(max_new_tokens=32))
    turns = [{"role": "user", "content": "Ben has 12 marbles and loses 4. How many are left?"},
             {"role": "assistant", "content": first.text},
             {"role": "user", "content": "And if he then finds 3?"}]
    one = engine.backend.encode_prompt(turns[0]["content"])
    both = engine.backend.encode_prompt(turns)
    assert both[:len(one) - 3] == one[:-3]  # the second prompt extends the first conversation
    assert engine.ask(turns, Settings(max_new_tokens=16)).stats["n_prompt_tokens"] == len(both)


def test_checked_arithmetic_corrects_a_false_result_and_the_model_goes_on():
    from tracetutor.runtime import Engine

    engine = Engine(ScriptedBackend([SLIP, FIXED]), "scripted")
    assert engine.ask("q").text == SLIP  # unchecked, the slip stands
    events = list(engine.stream("q", Settings(check=True)))
    done = events[-1]
    assert done.text == FIXED and done.answer == "15" and done.stats["corrected_steps"] == [1]
    shown = [e.text for e in events if isinstance(e, Token)]
    assert "".join(shown) == FIXED and not any("29" in t or "25" in t for t in shown)  # never shown
    assert [e.text for e in events if isinstance(e, Step)] == ["8 + 11 = 19", "19 - 4 = 15"]
    # the model went on from the corrected line, not from the slip
    assert engine.backend.prompts[-1].endswith("A: Step 1: 8 + 11 = 19\n")
    batch = engine.answer_batch(["q", "r"], Settings(check=True))
    assert [d.text for d in batch] == [FIXED, FIXED] and batch[0].stats["corrected_steps"] == [1]


def test_checked_arithmetic_corrects_every_slip_and_the_last_line():
    from tracetutor.runtime import Engine

    slips = ["Step 1: 3 x 4 = 13", "Step 1: 3 x 4 = 12\nStep 2: 12 + 5 = 18",
             "Step 1: 3 x 4 = 12\nStep 2: 12 + 5 = 17\nStep 3: 17 - 7 = 11"]
    fixed = "Step 1: 3 x 4 = 12\nStep 2: 12 + 5 = 17\nStep 3: 17 - 7 = 10\nAnswer: 10"
    engine = Engine(ScriptedBackend([*slips, fixed]), "scripted")
    for done in [engine.ask("q", Settings(check=True)), *engine.answer_batch(["q"], Settings(check=True))]:
        assert done.text == fixed and done.stats["corrected_steps"] == [1, 2, 3]
    # the token budget counts every token generated, across the corrections
    short = engine.ask("q", Settings(check=True, max_new_tokens=len("Step 1: 3 x 4 = 13")))
    assert short.text == "Step 1: 3 x 4 = 12" and short.stats["n_tokens"] == len("Step 1: 3 x 4 = 13")


@pytest.mark.parametrize("flags", [[], ["--check"]])
def test_chat_checks_by_default_and_marks_each_correction(flags, monkeypatch, capsys):
    from tracetutor.cli import main
    from tracetutor.runtime import Engine, engine as engine_module

    monkeypatch.setattr(engine_module, "load", lambda *a, **kw: Engine(ScriptedBackend([SLIP, FIXED]), "scripted"))
    assert main(["chat", "any-model", *flags, "q"]) == 0
    out, err = capsys.readouterr()
    assert out == ("Step 1: 8 + 11 = 19\n   (corrected: the model wrote 'Step 1: 8 + 11 = 29')\n"
                   "Step 2: 19 - 4 = 15\nAnswer: 15\n")
    assert "corrected step 1" in err
    assert main(["chat", "any-model", "--json", *flags, "q"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["answer"] == "15" and reply["corrected_from"] == {"1": "Step 1: 8 + 11 = 29"}


def test_chat_without_checking_shows_what_the_model_wrote(monkeypatch, capsys):
    from tracetutor.cli import main
    from tracetutor.runtime import Engine, engine as engine_module

    monkeypatch.setattr(engine_module, "load", lambda *a, **kw: Engine(ScriptedBackend([SLIP, FIXED]), "scripted"))
    assert main(["chat", "any-model", "--no-check", "q"]) == 0
    assert capsys.readouterr().out == SLIP + "\n"
