"""One variant measured in a process of its own, so that its peak memory is its own.

`python -m tracetutor.apps.bench_variant SPEC.json` reads what to measure from SPEC (written by
apps.bench.benchmark) and writes RESULT.json beside it:

- greedy answers to every problem, batched as the backend allows (Engine.answer_batch), then
  the same answers with checked arithmetic (Engine.check_batch), and with `samples` > 1 the
  majority vote of sampled traces;
- teacher-forced next-token logits over every reference trace: the reference variant (torch)
  saves its own, one .npy per trace; any other compares its logits with them one trace at a
  time (mean KL and top-1 agreement), so no variant holds the whole set in memory;
- decode tokens/s and time to first token on a few questions one at a time (apps.speed), the
  prompt tokens/s of the teacher-forced passes, the file size and the process's peak RSS.

Expected failures (a missing variant, a damaged file) are written to RESULT as `error`, so the
parent reports them as one line; the progress bars go to stderr.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

CHUNK = 32  # problems per progress step; torch batches up to 64 within one
SPEED_QUESTIONS = 8


def _bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="problem", file=sys.stderr, disable=None, leave=False)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def size_bytes(model_dir: Path, variant: str) -> int:
    """The bytes a variant ships as: weight files, an ONNX folder's model files or the GGUF file."""
    from tracetutor.files import weight_files
    from tracetutor.runtime.variants import Variant, variant_path

    v = Variant.parse(variant)
    if v.format == "torch":
        return sum(f.stat().st_size for f in weight_files(model_dir))
    path = variant_path(model_dir, variant)
    files = sorted(path.glob("model.onnx*")) if v.format == "onnx" else [path]
    return sum(f.stat().st_size for f in files)


def peak_rss() -> int:
    """This process's peak resident memory in bytes. Linux's VmHWM belongs to the process image,
    so it starts afresh at exec; ru_maxrss would keep the parent's peak (a bench run from a process
    that holds torch would count torch in every variant), so it is the fallback elsewhere."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _done_dict(d) -> dict:
    return {"text": d.text, "steps": d.steps, "answer": d.answer, "n_tokens": d.stats.get("n_tokens", 0),
            **({"corrected_steps": d.stats["corrected_steps"]} if "corrected_steps" in d.stats else {})}


def answers(engine, questions: list[str], fits: list[bool], variant: str) -> tuple[list, list, dict]:
    """Greedy and checked answers to every question that fits the context (shortest prompts
    first, so batches pad little); a question that does not fit gets no answer."""
    from tracetutor.runtime import Done

    todo = sorted((i for i, ok in enumerate(fits) if ok), key=lambda i: len(questions[i]))
    greedy: list = [None] * len(questions)
    checked: list = [None] * len(questions)
    bar = _bar(len(todo), f"{variant} answers")
    start = time.perf_counter()
    for chunk in _chunks(todo, CHUNK):
        for i, d in zip(chunk, engine.answer_batch([questions[i] for i in chunk])):
            greedy[i] = d
        bar.update(len(chunk))
    greedy_s = time.perf_counter() - start
    bar.close()
    bar = _bar(len(todo), f"{variant} checked")
    start = time.perf_counter()
    for chunk in _chunks(todo, CHUNK):
        for i, d in zip(chunk, engine.check_batch([questions[i] for i in chunk], [greedy[i] for i in chunk])):
            checked[i] = d
        bar.update(len(chunk))
    checked_s = time.perf_counter() - start
    bar.close()
    none = Done(text="", steps=[], answer=None, stats={"n_tokens": 0, "corrected_steps": []})
    greedy = [d or none for d in greedy]
    checked = [d or none for d in checked]
    tokens = sum(d.stats["n_tokens"] for d in greedy)
    return greedy, checked, {"answers_s": round(greedy_s, 2), "checked_s": round(checked_s, 2),
                             "batch_tokens_per_s": round(tokens / greedy_s, 1) if greedy_s > 0 and tokens else None}


def votes(engine, questions: list[str], fits: list[bool], samples: int, variant: str) -> list:
    """The majority answer of `samples` sampled traces per question (None where none fits)."""
    bar = _bar(len(questions), f"{variant} votes x{samples}")
    out = []
    for q, ok in zip(questions, fits):
        out.append(engine.solve(q, samples=samples).answer if ok else None)
        bar.update(1)
    bar.close()
    return out


def sequences(backend, problems: list[dict]) -> dict[int, tuple[list[int], int]]:
    """(ids, n_prompt) of every reference trace that fits the context, by problem index: the
    prompt, the rendered steps and answer, and the end-of-turn token."""
    from tracetutor.trace import Trace, render_completion

    out = {}
    for i, p in enumerate(problems):
        if not p.get("steps"):
            continue
        prompt = backend.encode_prompt(p["question"])
        ids = prompt + backend.tokenize(render_completion(Trace.from_dict(p), "traces")) + [backend.eos_id]
        if len(ids) <= backend.context_length:
            out[i] = (ids, len(prompt))
    return out


def teacher_forced(backend, problems: list[dict], reference_dir: Path, is_reference: bool, variant: str) -> dict:
    """Save (reference) or compare with the reference's logits over every reference trace."""
    import numpy as np

    from .stats import kl_top1, next_token_logits

    seqs = sequences(backend, problems)
    bar = _bar(len(seqs), f"{variant} logits")
    kl_sum, agree, positions, tokens, seconds, compared = 0.0, 0.0, 0, 0, 0.0, 0
    for i, seq in seqs.items():
        start = time.perf_counter()
        saved = reference_dir / f"{i}.npy"
        vocab = None
        if not is_reference:
            if not saved.is_file():  # the reference could not read this trace
                bar.update(1)
                continue
            ref = np.load(saved)
            vocab = ref.shape[-1]
        (logits,) = next_token_logits(backend, [seq], vocab=vocab)
        seconds += time.perf_counter() - start
        tokens += len(seq[0])
        if is_reference:
            np.save(saved, logits)
        elif len(logits) == len(ref):  # another tokenization has no positions to pair
            r = kl_top1([ref], [logits])
            kl_sum += r["kl_divergence"] * r["positions"]
            agree += r["top1_agreement"] * r["positions"]
            positions += r["positions"]
            compared += 1
        bar.update(1)
    bar.close()
    out = {"traces": len(seqs), "prompt_tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None}
    if is_reference:
        return {**out, "compared": len(seqs), "kl_divergence": 0.0 if seqs else None,
                "top1_agreement": 1.0 if seqs else None}
    return {**out, "compared": compared, "kl_divergence": kl_sum / positions if positions else None,
            "top1_agreement": agree / positions if positions else None}


def measure(spec: dict) -> dict:
    from tracetutor.runtime import load
    from tracetutor.runtime.types import DEFAULT_MAX_NEW_TOKENS

    from .speed import measure_engine

    model_dir, variant = Path(spec["model_dir"]), spec["variant"]
    problems = [json.loads(line) for line in open(spec["problems"], encoding="utf-8")]
    start = time.perf_counter()
    engine = load(model_dir, variant, threads=spec.get("threads"))
    load_s = time.perf_counter() - start
    questions = [p["question"] for p in problems]
    fits = [len(engine.backend.encode_prompt(q)) < engine.backend.context_length for q in questions]
    greedy, checked, timing = answers(engine, questions, fits, variant)
    result = {"variant": variant, "greedy": [_done_dict(d) for d in greedy],
              "checked": [_done_dict(d) for d in checked], "too_long": fits.count(False)}
    if spec.get("samples", 1) > 1:
        result["votes"] = votes(engine, questions, fits, spec["samples"], variant)
    result["teacher_forced"] = teacher_forced(engine.backend, problems, Path(spec["reference_dir"]),
                                              spec["is_reference"], variant)
    # the hardest problems give the longest completions, so decode dominates (as apps.speed)
    hardest = sorted((i for i, ok in enumerate(fits) if ok), key=lambda i: -(problems[i].get("difficulty") or 0))
    speed = measure_engine(engine, [questions[i] for i in hardest[:SPEED_QUESTIONS]], DEFAULT_MAX_NEW_TOKENS) \
        if hardest else {"decode_tokens_per_s": None, "ttft_ms": None}
    result.update({
        "tokens_per_s": speed["decode_tokens_per_s"],
        "ttft_s": round(speed["ttft_ms"] / 1000, 5) if speed["ttft_ms"] is not None else None,
        "size_bytes": size_bytes(model_dir, variant),
        "peak_rss_bytes": peak_rss(),
        "seconds": {"load_s": round(load_s, 2), **timing},
    })
    return result


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        result = measure(spec)
    except (ValueError, OSError, ImportError) as e:
        result = {"error": " ".join(str(e).split()) or type(e).__name__, "expected": True}
    except Exception as e:  # a bug: still one line for the parent, which says how to see more
        if spec.get("debug"):
            raise
        result = {"error": f"{type(e).__name__}: {' '.join(str(e).split())}", "expected": False}
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
