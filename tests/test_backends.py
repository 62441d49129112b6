"""The engine over every backend: the micro model exported, then asked through each."""

import shutil

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("onnxruntime")

from tracetutor.runtime import Done, Settings, Step, Token, load, unload
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
def test_every_backend_streams_steps_and_an_answer(exported, variant):
    model_dir, _ = exported
    events = list(load(model_dir, variant).stream("Mia has 7 apples and buys 5 more. How many now?",
                                                   Settings(max_new_tokens=48)))
    done = events[-1]
    assert isinstance(done, Done) and done.stats["variant"] == variant and done.stats["n_tokens"] > 0
    assert "".join(e.text for e in events if isinstance(e, Token)) == done.text
    assert [e.text for e in events if isinstance(e, Step)] == done.steps


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
