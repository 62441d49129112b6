"""A LoRA adapter is merged in full precision before export; its variants match the adapter."""

import numpy as np
import pytest

pytest.importorskip("peft")
pytest.importorskip("llama_cpp")
torch = pytest.importorskip("torch")

from tiny_models import build_tiny_llama


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("lora")
    base = build_tiny_llama(root / "base")
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(1)
    lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                                            init_lora_weights=False))  # random B: the adapter changes outputs
    out = root / "adapter"
    lora.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return base, out


def test_variants_of_an_adapter_match_the_adapter_not_the_base(adapter):
    from tracetutor.export.build import export_model
    from tracetutor.runtime.engine import load

    base, adapter_dir = adapter
    report = export_model(adapter_dir, ["gguf-f16", "onnx-fp32"], n_prompts=4, log=lambda m: None)
    assert (adapter_dir / "merged" / "model.safetensors").is_file()
    for variant in ("gguf-f16", "onnx-fp32"):
        assert report["variants"][variant]["tokenizer"]["rate"] == 1.0
    ids = load(adapter_dir).backend.encode_prompt("A pen costs 3 dollars. How much do 7 pens cost?")
    with_adapter = load(adapter_dir).backend.logits(ids)
    without = load(base).backend.logits(ids)
    merged_onnx = load(adapter_dir, "onnx-fp32").backend.logits(ids)
    assert np.abs(with_adapter - without).max() > 0.5  # the adapter matters
    np.testing.assert_allclose(merged_onnx, with_adapter, atol=2e-3)
