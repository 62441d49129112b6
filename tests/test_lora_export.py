"""A LoRA adapter is merged in full precision before export; its variants match the adapter."""

import json
import shutil

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


def test_torch_runs_an_adapter_merged_with_the_logits_of_base_plus_adapter(adapter):
    from tracetutor.runtime.torch_backend import TorchBackend

    base, adapter_dir = adapter
    merged, unmerged = TorchBackend(adapter_dir), TorchBackend(adapter_dir, merge=False)
    assert not any("lora_" in n for n, _ in merged.model.named_parameters())
    assert any("lora_" in n for n, _ in unmerged.model.named_parameters())
    ids = merged.encode_prompt("A pen costs 3 dollars. How much do 7 pens cost?")
    np.testing.assert_allclose(merged.logits(ids), unmerged.logits(ids), atol=1e-4)
    assert np.abs(merged.logits(ids) - TorchBackend(base).logits(ids)).max() > 0.5


def test_variants_of_an_adapter_record_the_adapters_weights(adapter, tmp_path):
    """Provenance is the adapter's own weights (not its merged copy's), so a retrained adapter
    makes its variants stale; without held-out traces, KL is measured on torch's completions."""
    import gguf
    from safetensors.torch import load_file, save_file

    from tracetutor.export.build import export_model
    from tracetutor.files import sha256_files, weights_digest
    from tracetutor.runtime.variants import StaleVariantError, check_fresh, variant_path

    _, adapter_dir = adapter
    report = export_model(adapter_dir, ["gguf-f16", "onnx-fp32"], n_prompts=4, log=lambda m: None)
    digest = weights_digest(adapter_dir)
    assert digest == sha256_files([adapter_dir / "adapter_model.safetensors"])
    f16 = variant_path(adapter_dir, "gguf-f16")
    assert gguf.GGUFReader(f16).get_field("tracetutor.source_sha256").contents() == digest
    meta = json.loads((adapter_dir / "onnx-fp32" / "export_meta.json").read_text())
    assert meta["source_sha256"] == digest != weights_digest(adapter_dir / "merged")
    for variant in ("gguf-f16", "onnx-fp32"):
        assert report["variants"][variant]["logits"]["positions"] > 0
        check_fresh(adapter_dir, variant, variant_path(adapter_dir, variant))

    retrained = shutil.copytree(adapter_dir, tmp_path / "adapter")
    file = retrained / "adapter_model.safetensors"
    save_file({k: 2 * v for k, v in load_file(file).items()}, file)
    with pytest.raises(StaleVariantError, match="gguf-f16 .*other weights"):
        check_fresh(retrained, "gguf-f16", variant_path(retrained, "gguf-f16"))
