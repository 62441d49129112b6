"""The engine over every backend: the micro model exported, then asked through each."""

import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("onnxruntime")

from tracetutor.runtime import Answer, Done, Settings, Step, Token, load, unload
from tracetutor.trace import read_traces

FULL_PRECISION = ["torch-fp32", "gguf-f16", "onnx-fp32"]


@pytest.fixture(scope="module")
def exported(trained_micro, tmp_path_factory):
    from tracetutor.export.build import export_model

    recipe, _ = trained_micro
    model_dir = tmp_path_factory.mktemp("exported") / "micro"
    shutil.copytree(recipe.dir, model_dir, ignore=shutil.ignore_patterns("checkpoints"))
    report = export_model(model_dir, ["gguf-f16", "gguf-q8_0", "onnx-fp32", "onnx-int8"], n_prompts=6, log=lambda m: None)
    return model_dir, report


@pytest.mark.parametrize("variant", ["torch-fp32", "gguf-f16", "gguf-q8_0", "onnx-fp32", "onnx-int8"])
def test_every_backend_streams_the_text_steps_and_answer_it_ends_with(exported, variant):
    model_dir, _ = exported
    question = "Mia has 7 apples and buys 5 more. How many now?"
    events = list(load(model_dir, variant).stream(question, Settings(max_new_tokens=48)))
    done = events[-1]
    assert isinstance(done, Done) and done.stats["variant"] == variant and done.stats["n_tokens"] > 0
    assert "".join(e.text for e in events if isinstance(e, Token)) == done.text
    assert [e.text for e in events if isinstance(e, Step)] == done.steps and done.steps
    assert [e.text for e in events if isinstance(e, Answer)] == ([done.answer] if done.answer is not None else [])
    if variant in FULL_PRECISION:  # micro barely reads after 30 steps, but every backend reads it alike
        assert done.text == load(model_dir).ask(question, Settings(max_new_tokens=48)).text


def test_full_precision_backends_give_the_same_greedy_answers(exported):
    model_dir, report = exported
    for v in ("gguf-f16", "onnx-fp32"):
        assert report["variants"][v]["tokenizer"]["rate"] == 1.0
    traces, _ = read_traces(model_dir / "data" / "heldout.jsonl")
    questions = [t.question for t in traces[:12]]
    answers = {v: [d.text for d in load(model_dir, v).answer_batch(questions, Settings(max_new_tokens=64))]
               for v in FULL_PRECISION}
    for v in FULL_PRECISION[1:]:
        same = sum(a == b for a, b in zip(answers["torch-fp32"], answers[v]))
        assert same >= len(questions) - 1, f"{v}: {same}/{len(questions)} identical greedy completions"


@pytest.mark.parametrize("variant, damaged", [("gguf-f16", "micro-f16.gguf"), ("onnx-fp32", "onnx-fp32/model.onnx")])
def test_a_truncated_variant_is_a_clear_error(exported, tmp_path, variant, damaged):
    model_dir, _ = exported
    copy = tmp_path / "micro"
    shutil.copytree(model_dir, copy)
    f = copy / damaged
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ValueError, match=str(f.name)):
        load(copy, variant)
    unload(copy)


@pytest.mark.parametrize("variant", FULL_PRECISION)
def test_chat_rejects_an_over_long_question_in_one_line(exported, variant, capsys):
    from tracetutor.cli import main

    model_dir, _ = exported
    n_ctx = load(model_dir, variant).backend.context_length
    question = " ".join(str(i % 10) for i in range(n_ctx))
    assert main(["chat", str(model_dir), "--variant", variant, question]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"reads at most {n_ctx} tokens" in err, err


@pytest.mark.parametrize("flags, message", [
    (["--max-tokens", "0"], "max_new_tokens must be an integer of at least 1"),
    (["--samples", "0"], "--samples must be at least 1"),
    (["--temperature", "-1"], "temperature must be a number from 0"),
    (["--temperature", "nan"], "temperature must be a number from 0"),
    (["--top-p", "0"], "top_p must be a number in (0, 1]"),
])
def test_chat_rejects_bad_settings_before_loading(exported, flags, message, capsys):
    from tracetutor.cli import main

    model_dir, _ = exported
    assert main(["chat", str(model_dir), *flags, "What is 2 + 3?"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tracetutor: error: {message}" or (len(err.splitlines()) == 1 and message in err), err


@pytest.mark.parametrize("question", ["", "   "])
def test_chat_rejects_an_empty_question(exported, question, capsys):
    from tracetutor.cli import main

    model_dir, _ = exported
    assert main(["chat", str(model_dir), question]) == 2
    assert capsys.readouterr().err.strip() == "tracetutor: error: the question is empty"


def test_llama_cpp_runs_with_torch_and_transformers_blocked(exported):
    """The laptop path: a GGUF variant streams with no torch, transformers or onnx importable,
    and gives the tokens torch gives."""
    model_dir, _ = exported
    question = "Mia has 7 apples and buys 5 more. How many now?"
    script = f"""
import json, sys
for name in ("torch", "transformers", "onnx", "optimum"):
    sys.modules[name] = None  # importing any of them now raises ImportError
from tracetutor.runtime import load, Settings
done = load({str(model_dir)!r}, "gguf-f16").ask({question!r}, Settings(max_new_tokens=48))
print(json.dumps([done.text, sorted(m for m in sys.modules if m.startswith("tracetutor"))]))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    text, modules = json.loads(run.stdout.strip().splitlines()[-1])
    assert text == load(model_dir).ask(question, Settings(max_new_tokens=48)).text
    assert "tracetutor.runtime.torch_backend" not in modules and "tracetutor.train" not in modules


@pytest.mark.parametrize("variant, damage", [
    ("gguf-q8_0", "truncate micro-q8_0.gguf"),
    ("onnx-fp32", "truncate onnx-fp32/model.onnx"),
    ("torch-fp32", "delete tokenizer.model"),
    ("onnx-int8", "delete onnx-int8/tokenizer.json"),
])
def test_a_damaged_model_is_one_line_naming_the_file(exported, tmp_path, variant, damage, capsys):
    from tracetutor.cli import main

    model_dir, _ = exported
    copy = tmp_path / "micro"
    shutil.copytree(model_dir, copy)
    how, *names = damage.split()
    for name in names:
        f = copy / name
        if how == "truncate":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        else:
            f.unlink()
    assert main(["chat", str(copy), "--variant", variant, "What is 2 + 3?"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tracetutor: error: ") and "Traceback" not in err, err
    assert str(copy) in err, err
    unload(copy)
