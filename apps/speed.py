"""Decode speed and time to first token of each variant, and the engine's llama.cpp overhead.

Prints figures; nothing here asserts a speed (machines differ). For every variant the engine
answers the same questions greedily; decode tokens/s counts the tokens after the first over the
time after the first. For GGUF variants the same prompts also go straight through
llama-cpp-python (`Llama.generate`, same file, threads and greedy sampling), so the engine's
share of raw throughput is measured, not assumed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from tracetutor.runtime.types import DEFAULT_MAX_NEW_TOKENS


def _questions(model_dir: Path, n: int) -> list[str]:
    from tracetutor.trace import read_traces

    held = model_dir / "data" / "heldout.jsonl"
    if held.is_file():
        traces, _ = read_traces(held)
        # the hardest problems give the longest completions, so decode dominates
        traces.sort(key=lambda t: -(t.difficulty or 0))
        return [t.question for t in traces[:n]]
    return ["A pen costs 3 dollars. How much do 7 pens cost?"] * n


def measure_engine(engine, questions: list[str], max_new_tokens: int) -> dict:
    from tracetutor.runtime import Settings

    settings = Settings(max_new_tokens=max_new_tokens)
    engine.ask(questions[0], settings)  # warm-up: first-call allocations are not decode speed
    rates, ttfts, tokens = [], [], 0
    for q in questions:
        d = engine.ask(q, settings)
        if d.stats["tokens_per_s"]:
            rates.append(d.stats["tokens_per_s"])
        ttfts.append(d.stats["ttft_s"])
        tokens += d.stats["n_tokens"]
    return {"decode_tokens_per_s": round(statistics.median(rates), 1) if rates else None,
            "ttft_ms": round(1000 * statistics.median(ttfts), 2), "tokens": tokens,
            "peak_rss_mb": round(d.stats["peak_rss_bytes"] / 2**20, 1)}


def measure_raw_llama(path: Path, prompts: list[list[int]], eos_id: int, max_new_tokens: int,
                      threads: int | None, n_ctx: int) -> dict:
    """llama-cpp-python alone: the reference the engine's llama.cpp path is compared with."""
    import llama_cpp

    from tracetutor.runtime.llama_backend import without_extra_buffer_types

    with without_extra_buffer_types(llama_cpp):  # as the engine opens it
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
    rates, ttfts = [], []
    for i, prompt in enumerate([prompts[0]] + prompts):
        start = time.perf_counter()
        first, n = None, 0
        for tok in llm.generate(prompt, reset=True, temp=0.0, repeat_penalty=1.0):
            if tok == eos_id or n >= max_new_tokens:
                break
            n += 1
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        if i and first is not None and n > 1:  # the first run is the warm-up
            rates.append((n - 1) / (end - first))
            ttfts.append(first - start)
    return {"decode_tokens_per_s": round(statistics.median(rates), 1) if rates else None,
            "ttft_ms": round(1000 * statistics.median(ttfts), 2) if ttfts else None}


def run_speed(model, variants: list[str], n: int = 40, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
              threads: int | None = None) -> dict:
    from tracetutor.recipe import resolve_model
    from tracetutor.runtime import load
    from tracetutor.runtime.variants import variants_on_disk

    model_dir, _ = resolve_model(model)
    if variants == ["all"]:
        variants = variants_on_disk(model_dir)
    questions = _questions(model_dir, n)
    out = {"model": str(model_dir), "questions": len(questions), "threads": threads, "variants": {}}
    for v in variants:
        engine = load(model_dir, v, threads=threads)
        r = measure_engine(engine, questions, max_new_tokens)
        if engine.backend.name == "llama.cpp":
            b = engine.backend
            raw = measure_raw_llama(b.path, [b.encode_prompt(q) for q in questions], b.eos_id,
                                    max_new_tokens, threads, b.context_length)
            r["raw_llama_cpp"] = raw
            if raw["decode_tokens_per_s"] and r["decode_tokens_per_s"]:
                r["engine_vs_raw"] = round(r["decode_tokens_per_s"] / raw["decode_tokens_per_s"], 3)
        out["variants"][v] = r
    torch_rate = out["variants"].get("torch-fp32", {}).get("decode_tokens_per_s")
    for v, r in out["variants"].items():
        if torch_rate and r["decode_tokens_per_s"]:
            r["vs_torch"] = round(r["decode_tokens_per_s"] / torch_rate, 2)
    return out


def format_speed(report: dict) -> str:
    def cell(x, fmt):
        return "-" if x is None else format(x, fmt)

    rows = [("variant", "decode tok/s", "TTFT ms", "x torch", "raw llama.cpp", "engine/raw")]
    for v, r in report["variants"].items():
        rows.append((v, cell(r["decode_tokens_per_s"], ".1f"), cell(r["ttft_ms"], ".1f"),
                     cell(r.get("vs_torch"), ".2f"), cell(r.get("raw_llama_cpp", {}).get("decode_tokens_per_s"), ".1f"),
                     cell(r.get("engine_vs_raw"), ".3f")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in rows)
