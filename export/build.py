"""`tracetutor export`: write the requested variants of a model and verify each one.

GGUF: f16 with our writer, then llama.cpp's own quantizer from it. ONNX: fp32 through
optimum-onnx with the KV cache, then onnxruntime's int8/int4 quantizers. Every variant is
compared with the torch model (export/parity.py); the findings go to export_report.json and a
printed table. A variant that fails parity is reported, not hidden, and `tracetutor export`
exits 1: every variant's next-token distributions must stay within its BOUNDS of torch's, and
full-precision variants must also match torch's greedy tokens.

A quantized variant is made from a full-precision file only if that file records the weights
the model holds now (tracetutor.runtime.variants.check_fresh); otherwise it is written again
first, so a retrained model never ships variants of its old weights.
"""

from __future__ import annotations

import time
from pathlib import Path

from tracetutor.files import atomic_path, read_json, weights_digest, write_json
from tracetutor.release import is_release
from tracetutor.runtime.variants import LORA, TORCH, Variant, VariantError, check_fresh, variant_path, variants_on_disk

from . import parity

DEFAULT_TARGETS = ("gguf-f16", "gguf-q8_0", "gguf-q4_k_m", "onnx-fp32", "onnx-int8", "onnx-int4")
# (most mean KL(torch || variant), least top-1 agreement with torch), teacher-forced over the
# held-out traces. A fresh export of micro measured KL / top-1: gguf-f16 7e-9 / 1.0, onnx-fp32
# 1e-14 / 1.0, gguf-q8_0 4.2e-6 / 1.0, onnx-int8 8.3e-6 / 0.9994, gguf-q4_k_m 3.2e-5 / 0.9988,
# onnx-int4 1.1e-4 / 0.9929; variants of micro's weights before a retrain (another seed) measured
# 0.032-0.034 / 0.87. A real model's outputs move more under rounding than micro's near-uniform
# ones: SmolLM2-135M with a LoRA merged (30 layers) measured gguf-f16 2.6e-6 / 1.0, gguf-q8_0
# 1.5e-3 / 0.994 and gguf-q4_k_m 2.7e-2 / 0.965, so the quantized KL bounds leave room for a
# deep model's rounding and top-1 agreement is what tells other weights apart (0.87); since
# every variant records the weights it came from, a stale one is also refused by its hash.
BOUNDS = {"gguf-f16": (1e-4, 0.99), "gguf-f32": (1e-4, 0.99), "onnx-fp32": (1e-4, 0.99),
          "gguf-q8_0": (5e-3, 0.98), "onnx-int8": (5e-3, 0.98),
          "gguf-q4_k_m": (5e-2, 0.95), "onnx-int4": (5e-2, 0.95)}
OTHER_QUANTIZED = "gguf-q4_k_m"  # any other llama.cpp type is held to the 4-bit bounds


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
    from transformers import AutoTokenizer

    from tracetutor.runtime.bases import load_adapter

    out = adapter_dir / "merged"
    stamp = out / "adapter_sha256.txt"
    digest = weights_digest(adapter_dir)
    if stamp.is_file() and stamp.read_text() == digest:
        return out
    model, tok_dir = load_adapter(adapter_dir, torch.float32)
    merged = model.merge_and_unload()  # W + B·A·scale, in fp32, before any rounding
    with atomic_path(out) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(str(tok_dir)).save_pretrained(tmp)
        (tmp / "adapter_sha256.txt").write_text(digest)
    return out


def write_variant(model_dir: Path, variant: str) -> dict:
    """Write one variant; a quantized one from its full-precision file, written first when it
    is missing, damaged or from other weights (then "rewrote" names it in the result)."""
    v = Variant.parse(variant)
    path = v.path(model_dir)
    digest = weights_digest(model_dir)  # an adapter's own weights: its variants follow the adapter
    if variant == LORA:
        from .gguf import write_gguf_lora

        if not (model_dir / "adapter_config.json").is_file():
            raise VariantError(f"{LORA} is a LoRA adapter's own variant; {model_dir} holds no adapter")
        return write_gguf_lora(model_dir, path, source_sha256=digest)
    source = merge_lora(model_dir) if (model_dir / "adapter_config.json").is_file() else model_dir
    if v.format == "gguf":
        from .gguf import FTYPES, quantize_gguf, write_gguf

        qtype = v.kind
        if qtype in FTYPES:
            return write_gguf(source, path, ftype=qtype, source_sha256=digest)
        f16 = variant_path(model_dir, "gguf-f16")
        rewrote = not _is_fresh(model_dir, "gguf-f16", f16)
        if rewrote:
            write_gguf(source, f16, ftype="f16", source_sha256=digest)
        return {**quantize_gguf(f16, path, qtype), "rewrote": ["gguf-f16"] if rewrote else []}
    if v.format == "onnx":
        from .onnx import export_onnx, quantize_onnx

        kind = v.kind
        if kind == "fp32":
            return export_onnx(source, path, source_sha256=digest)
        fp32 = variant_path(model_dir, "onnx-fp32")
        rewrote = not _is_fresh(model_dir, "onnx-fp32", fp32)
        if rewrote:
            export_onnx(source, fp32, source_sha256=digest)
        return {**quantize_onnx(fp32, path, kind), "rewrote": ["onnx-fp32"] if rewrote else []}
    raise VariantError(f"cannot export {variant!r}: targets are gguf-<type> and onnx-fp32/int8/int4")


def _check_targets(targets: list[str]) -> None:
    """VariantError for a target that cannot be exported, naming the ones that can."""
    for t in targets:
        v = Variant.parse(t)
        if v.format == "torch":
            raise VariantError(f"{t} is the model itself, not an export; targets are gguf-<type> and "
                               "onnx-fp32/int8/int4")
        if v.format == "gguf":
            from .gguf import FTYPES, quantize_types

            known = [*FTYPES, *quantize_types(), "lora"]
            if v.kind not in known:
                raise VariantError(f"unknown GGUF type {v.kind!r} in {t}; llama.cpp writes "
                                   f"{', '.join(sorted(known))}")


def _is_fresh(model_dir: Path, variant: str, path: Path) -> bool:
    if not path.exists():
        return False
    try:
        check_fresh(model_dir, variant, path)
    except (ValueError, OSError):  # stale, from an older version, or damaged
        return False
    return True


def export_model(model, targets=DEFAULT_TARGETS, *, n_prompts: int = 48, log=print) -> dict:
    from tracetutor.recipe import resolve_model
    from tracetutor.runtime import Settings, load, unload
    from tracetutor.trace import render_completion

    model_dir, _ = resolve_model(model)
    targets = list(targets)
    _check_targets(targets)  # unknown names fail before any work
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
    if not sequences:  # no held-out traces (an adapter folder): torch's own greedy completions
        prompts = [reference.backend.encode_prompt(q) for q in questions]
        completions = reference.backend.generate_batch(prompts, Settings())
        sequences = [(p + c, len(p)) for p, c in zip(prompts, completions) if c]

    report = {"model": str(model_dir), "variants": {}}
    report_path = model_dir / "export_report.json"
    shipped = is_release(model_dir)  # the shipped default: its variants are checked, never written
    if shipped:
        missing = [t for t in targets if not _is_fresh(model_dir, t, variant_path(model_dir, t))]
        if missing:
            raise ValueError(f"{model_dir} is a shipped release and export writes nothing there; it holds "
                             f"{', '.join(variants_on_disk(model_dir))}, not {', '.join(missing)}: train your own "
                             f"run (tracetutor pipeline NAME) to export other variants")
    elif report_path.is_file():  # earlier findings, for the variants still on disk as they were measured
        earlier = read_json(report_path).get("variants", {})
        report["variants"] = {v: e for v, e in earlier.items()
                              if _is_fresh(model_dir, v, variant_path(model_dir, v))}
    for variant in targets:
        log(f"export {variant} ...")
        start = time.perf_counter()
        if shipped:
            path = variant_path(model_dir, variant)
            written = {"path": str(path), "bytes": sum(f.stat().st_size for f in [path, *path.glob("*")] if f.is_file())}
        else:
            written = write_variant(model_dir, variant)
        seconds = time.perf_counter() - start
        unload(model_dir, variant)  # a rewritten file is loaded afresh
        for rewritten in written.get("rewrote", []):  # its findings were of the file replaced
            unload(model_dir, rewritten)
            report["variants"].pop(rewritten, None)
        engine = load(model_dir, variant)
        entry = {"file": written, "export_seconds": round(seconds, 1),
                 "tokenizer": parity.tokenizer_parity(reference.backend, engine.backend, texts),
                 "greedy": parity.greedy_parity(reference, engine, questions),
                 "logits": parity.logit_parity(reference.backend, engine.backend, sequences)}
        entry["bounds"] = dict(zip(("max_mean_kl", "min_top1"), bounds(variant)))
        entry["ok"] = passes(variant, entry)
        report["variants"][variant] = entry
        if not shipped:
            write_json(report_path, report)
        log(format_row(variant, entry))
    return report


def bounds(variant: str) -> tuple[float, float]:
    """(most mean KL, least top-1 agreement) `variant` may have."""
    return BOUNDS.get(variant, BOUNDS[OTHER_QUANTIZED])


def passes(variant: str, entry: dict) -> bool:
    """The parity gate: torch's token ids from the variant's tokenizer, next-token
    distributions within the variant's bounds, and for full precision torch's greedy tokens
    (except where torch itself is at a near-tie)."""
    max_kl, min_top1 = bounds(variant)
    lg, g = entry["logits"], entry["greedy"]
    if entry["tokenizer"]["rate"] != 1.0 or lg["mean_kl"] is None:  # nothing measured is no pass
        return False
    if lg["mean_kl"] > max_kl or lg["top1_agreement"] < min_top1:
        return False
    return not Variant.parse(variant).full_precision or g["identical"] + g["near_ties"] == g["prompts"]


def format_row(variant: str, e: dict) -> str:
    size = e["file"].get("bytes", 0) / 1e6
    lg = e["logits"]
    kl = "-" if lg["mean_kl"] is None else f"{lg['mean_kl']:.1e}"
    top1 = "-" if lg["top1_agreement"] is None else f"{100 * lg['top1_agreement']:.1f}%"
    return (f"{variant:<13} {size:7.1f} MB  tokenizer {100 * e['tokenizer']['rate']:5.1f}%  "
            f"greedy {e['greedy']['identical']}/{e['greedy']['prompts']}"
            + (f" ({e['greedy']['near_ties']} near-ties)" if e["greedy"].get("near_ties") else "")
            + f"  KL {kl}  top-1 {top1}  "
            f"{'ok' if e['ok'] else 'FAILED'}")


def format_table(report: dict) -> str:
    return "\n".join(format_row(v, e) for v, e in report["variants"].items())
