"""`tracetutor export`: write the requested variants of a model and verify each one.

GGUF: f16 with our writer, then llama.cpp's own quantizer from it. ONNX: fp32 through
optimum-onnx with the KV cache, then onnxruntime's int8/int4 quantizers. Every variant is
compared with the torch model (export/parity.py); the findings go to export_report.json and a
printed table. A variant that fails parity is reported, not hidden; full-precision variants
must match torch's tokens exactly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tracetutor.runtime.variants import TORCH, VariantError, variant_path

from . import parity

DEFAULT_TARGETS = ("gguf-f16", "gguf-q8_0", "gguf-q4_k_m", "onnx-fp32", "onnx-int8", "onnx-int4")
FULL_PRECISION = ("gguf-f16", "gguf-f32", "onnx-fp32")


def _questions(model_dir: Path, n: int) -> list[dict]:
    from tracetutor.trace import read_traces

    held = model_dir / "data" / "heldout.jsonl"
    if held.is_file():
        traces, _ = read_traces(held)
        return [{"question": t.question, "trace": t} for t in traces[:n]]
    return [{"question": q, "trace": None} for q in (
        "Ana has 12 apples and eats 5. How many apples are left?",
        "A pen costs 3 dollars. How much do 7 pens cost?",
        "Tom reads 9 pages a day for 6 days. How many pages does he read?",
        "What is 25% of 80?")][:n]


def merge_lora(adapter_dir: Path) -> Path:
    """A LoRA adapter folder (peft) merged into its base model in full precision, written to
    adapter_dir/merged; every variant is then exported and quantized from the merged weights."""
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    out = adapter_dir / "merged"
    stamp = out / "adapter_sha256.txt"
    from .gguf import sha256_files

    digest = sha256_files([adapter_dir / "adapter_model.safetensors"])
    if stamp.is_file() and stamp.read_text() == digest:
        return out
    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype=torch.float32)
    merged = model.merge_and_unload()  # W + B·A·scale, in fp32, before any rounding
    tmp = adapter_dir / "merged.tmp"
    merged.save_pretrained(tmp, safe_serialization=True)
    tok_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else model.peft_config["default"].base_model_name_or_path
    AutoTokenizer.from_pretrained(str(tok_dir)).save_pretrained(tmp)
    (tmp / "adapter_sha256.txt").write_text(digest)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


def write_variant(model_dir: Path, variant: str) -> dict:
    """Write one variant (and the full-precision file it is quantized from, if missing)."""
    path = variant_path(model_dir, variant)
    source = merge_lora(model_dir) if (model_dir / "adapter_config.json").is_file() else model_dir
    if variant.startswith("gguf-"):
        from .gguf import quantize_gguf, write_gguf

        qtype = variant[5:]
        if qtype in ("f16", "f32"):
            return write_gguf(source, path, ftype=qtype)
        f16 = variant_path(model_dir, "gguf-f16")
        if not f16.is_file():
            write_gguf(source, f16, ftype="f16")
        return quantize_gguf(f16, path, qtype)
    if variant.startswith("onnx-"):
        from .onnx import export_onnx, quantize_onnx

        kind = variant[5:]
        if kind == "fp32":
            return export_onnx(source, path)
        fp32 = variant_path(model_dir, "onnx-fp32")
        if not (fp32 / "model.onnx").is_file():
            export_onnx(source, fp32)
        return quantize_onnx(fp32, path, kind)
    raise VariantError(f"cannot export {variant!r}: targets are gguf-<type> and onnx-fp32/int8/int4")


def export_model(model, targets=DEFAULT_TARGETS, *, n_prompts: int = 48, log=print) -> dict:
    from tracetutor.recipe import resolve_model
    from tracetutor.runtime.engine import _CACHE, load
    from tracetutor.trace import render_completion

    model_dir, _ = resolve_model(model)
    targets = list(targets)
    for t in targets:
        variant_path(model_dir, t)  # unknown names fail before any work
    reference = load(model_dir, TORCH)
    tok = reference.backend.tokenizer
    items = _questions(model_dir, n_prompts)
    questions = [i["question"] for i in items]
    texts = parity.tokenizer_texts(questions, tok.all_special_tokens)
    sequences = []
    for i in items:
        if i["trace"] is not None:
            prompt = reference.backend.encode_prompt(i["question"])
            completion = reference.backend.tokenize(render_completion(i["trace"], "traces"))
            sequences.append((prompt + completion + [tok.eos_token_id], len(prompt)))

    report = {"model": str(model_dir), "variants": {}}
    report_path = model_dir / "export_report.json"
    if report_path.is_file():
        report["variants"] = json.loads(report_path.read_text()).get("variants", {})
    for variant in targets:
        log(f"export {variant} ...")
        start = time.perf_counter()
        written = write_variant(model_dir, variant)
        seconds = time.perf_counter() - start
        for key in [k for k in _CACHE if k[1] == variant]:  # a rewritten file is loaded afresh
            del _CACHE[key]
        engine = load(model_dir, variant)
        entry = {"file": written, "export_seconds": round(seconds, 1),
                 "tokenizer": parity.tokenizer_parity(reference.backend, engine.backend, texts),
                 "greedy": parity.greedy_parity(reference, engine, questions),
                 "logits": parity.logit_parity(reference.backend, engine.backend, sequences)}
        g = entry["greedy"]
        # full precision must match torch token for token, except where torch itself is at a near-tie
        entry["ok"] = entry["tokenizer"]["rate"] == 1.0 and (
            variant not in FULL_PRECISION or g["identical"] + g["near_ties"] == g["prompts"])
        report["variants"][variant] = entry
        report_path.write_text(json.dumps(report, indent=1))
        log(format_row(variant, entry))
    return report


def format_row(variant: str, e: dict) -> str:
    size = e["file"].get("bytes", 0) / 1e6
    lg = e["logits"]
    kl = "-" if lg["mean_kl"] is None else f"{lg['mean_kl']:.4f}"
    top1 = "-" if lg["top1_agreement"] is None else f"{100 * lg['top1_agreement']:.1f}%"
    return (f"{variant:<13} {size:7.1f} MB  tokenizer {100 * e['tokenizer']['rate']:5.1f}%  "
            f"greedy {e['greedy']['identical']}/{e['greedy']['prompts']}"
            + (f" ({e['greedy']['near_ties']} near-ties)" if e["greedy"].get("near_ties") else "")
            + f"  KL {kl}  top-1 {top1}  "
            f"{'ok' if e['ok'] else 'FAILED'}")


def format_table(report: dict) -> str:
    return "\n".join(format_row(v, e) for v, e in report["variants"].items())
