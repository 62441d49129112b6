"""The server over every backend: the micro model exported, served, and asked past its context."""

import json
import shutil

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("onnxruntime")
httpx = pytest.importorskip("httpx")

from test_server import serving  # noqa: E402
from tracetutor.runtime import load  # noqa: E402
from tracetutor.runtime.server import build_app  # noqa: E402


@pytest.fixture(scope="module")
def exported(trained_micro, tmp_path_factory):
    from tracetutor.export.build import export_model

    recipe, _ = trained_micro
    model_dir = tmp_path_factory.mktemp("served") / "micro"
    shutil.copytree(recipe.dir, model_dir, ignore=shutil.ignore_patterns("checkpoints"))
    export_model(model_dir, ["gguf-f16", "onnx-fp32"], n_prompts=6, log=lambda m: None)
    return model_dir


@pytest.mark.parametrize("variant", ["torch-fp32", "onnx-fp32", "gguf-f16"])
def test_a_prompt_past_the_models_context_is_a_400(exported, variant):
    engine = load(exported, variant)
    n_ctx = engine.backend.context_length
    assert n_ctx == json.loads((exported / "config.json").read_text())["max_position_embeddings"]
    with serving(build_app(engine, "micro")) as url:
        def ask(question):
            body = {"messages": [{"role": "user", "content": question}], "max_tokens": 8}
            return httpx.post(f"{url}/chat/completions", json=body, timeout=60)

        assert ask("Mia has 7 apples and buys 5 more. How many now?").status_code == 200
        for question, needle in [(" ".join("7" * n_ctx), "the prompt is"),  # a token a digit: tokenized, too long
                                 ("7 " * (200 * n_ctx), "bytes, more than")]:  # refused without tokenizing
            r = ask(question)
            assert r.status_code == 400, r.text[:200]
            error = r.json()["error"]
            assert error["code"] == "context_length_exceeded" and needle in error["message"]
            assert f"context length of {n_ctx} tokens" in error["message"]
