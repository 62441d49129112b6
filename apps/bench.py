"""The benchmark: how well variants of a model answer problems, and what quantization costs.

A problems file is JSONL with at least `question` and `answer`, checked as trace records
are; `id`, `family`, `difficulty` and `steps` are used when present. The named sets are the
held-out split, its robustness probes (apps/probes.py), the hand-written test set and GSM8K
(apps/gsm8k.py). Every variant answers every question with greedy decoding; answers are
compared after canonicalisation (`score`).

`benchmark` (the `bench` command) runs each variant in a process of its own
(apps/bench_variant.py) and compares it with torch-fp32 (apps/stats.py, apps/bench_report.py);
`run_bench` is the in-process held-out accuracy the pipeline records in models/<name>/bench.json.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

from tracetutor.trace import Trace, TraceFileError, answers_match, iter_records
from tracetutor.verify import find_claims, verify_step


HANDWRITTEN = Path(__file__).resolve().parent.parent / "tests" / "data" / "handwritten.jsonl"
"""Textbook problems written by hand, not by the curriculum's templates: a test set no recipe
trains on (tests/test_bench_handwritten.py checks that no generated question matches one)."""


class ProblemsError(ValueError):
    """A problems file that cannot be read; the message names the file, line and field."""


def read_problems(path: str | Path, limit: int | None = None) -> list[dict]:
    """The first `limit` problems as trace records, read as `data verify` reads traces (a
    byte order mark is fine); `id` defaults to `FILE-STEM/LINE`. A bad line is a ProblemsError."""
    path = Path(path)
    if not path.is_file():
        raise ProblemsError(f"{path}: no such problems file")
    problems = []
    for n, record in iter_records(path):
        try:
            problems.append(_problem(record, path, n))
        except TraceFileError as e:
            message = f"{path}:{n}: missing field {e.field!r}" if e.detail == "missing" else str(e)
            raise ProblemsError(message) from None
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise ProblemsError(f"{path}: holds no problems (it is empty or holds only blank lines)")
    return problems


def _problem(record, path: Path, n: int) -> dict:
    if isinstance(record, TraceFileError):
        raise record
    if isinstance(record, dict):
        record = {"id": f"{path.stem}/{n}", **record}
    return Trace.from_dict(record, path=path, line=n).to_dict()


def problems_path(model_dir: Path, problems: str) -> Path:
    """`heldout` is the recipe's held-out split, `handwritten` the hand-written test set;
    anything else is a file."""
    if problems == "heldout":
        return model_dir / "data" / "heldout.jsonl"
    if problems == "handwritten":
        return HANDWRITTEN
    return Path(problems)


def load_problems(model_dir: Path, problems: str, limit: int | None = None) -> tuple[Path, list[dict]]:
    """(where the problems come from, the problems): `probes` are the held-out split's first
    `limit` problems in every probe form (apps/probes.py), `gsm8k` GSM8K's test set
    (apps/gsm8k.py); anything else as problems_path says."""
    if problems == "gsm8k":
        from .gsm8k import GSM8K, read_gsm8k

        return GSM8K, read_gsm8k(GSM8K, limit)
    if problems == "probes":
        from .probes import build_probes, training_questions

        path = problems_path(model_dir, "heldout")
        return path, build_probes(read_problems(path, limit), seed=0, train_questions=training_questions(model_dir))
    path = problems_path(model_dir, problems)
    return path, read_problems(path, limit)


def by_form(problems: list[dict], correct: list[bool]) -> dict:
    """Probe accuracy per form beside the accuracy of the same problems' originals:
    {form: {"accuracy", "n", "original_accuracy"}}; {} for problems that are not probes."""
    if not any("form" in p for p in problems):
        return {}
    original = {p["probe_of"]: ok for p, ok in zip(problems, correct) if p.get("form") == "original"}
    forms: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for p, ok in zip(problems, correct):
        if "form" in p and p["probe_of"] in original:
            forms[p["form"]].append((ok, original[p["probe_of"]]))
    return {f: {"accuracy": round(sum(a for a, _ in pairs) / len(pairs), 4), "n": len(pairs),
                "original_accuracy": round(sum(o for _, o in pairs) / len(pairs), 4)}
            for f, pairs in forms.items()}


def score(problems: list[dict], outputs) -> dict:
    """Accuracy overall, by family and by difficulty, and the share of generated steps that
    verify; `outputs` are engine Done results in the order of `problems`. With checked
    arithmetic, also the share of problems where a step's result was corrected."""
    groups = {"by_family": defaultdict(list), "by_difficulty": defaultdict(list)}
    correct, steps_ok, steps_n, wrong = [], 0, 0, []
    for p, out in zip(problems, outputs):
        ok = answers_match(out.answer, p["answer"])
        correct.append(ok)
        if p.get("family") is not None:
            groups["by_family"][p["family"]].append(ok)
        if p.get("difficulty") is not None:
            groups["by_difficulty"][str(p["difficulty"])].append(ok)
        for s in out.steps:  # a step counts as ok when it makes a claim and the claim holds
            steps_n += 1
            steps_ok += bool(find_claims(s)) and verify_step(s).ok
        if not ok and len(wrong) < 10:
            wrong.append({"id": p["id"], "question": p["question"], "expected": p["answer"],
                          "got": out.answer, "completion": out.text})

    def acc(xs):
        return {"accuracy": round(sum(xs) / len(xs), 4) if xs else None, "n": len(xs)}

    return {
        **acc(correct),
        "correct": sum(correct),
        "by_family": {k: acc(v) for k, v in sorted(groups["by_family"].items())},
        "by_difficulty": {k: acc(v) for k, v in sorted(groups["by_difficulty"].items())},
        **({"by_form": forms} if (forms := by_form(problems, correct)) else {}),
        **({"gsm8k": _gsm8k(problems, outputs)} if problems and "target" in problems[0] else {}),
        "step_validity": round(steps_ok / steps_n, 4) if steps_n else None,
        "mean_tokens": round(sum(o.stats.get("n_tokens", 0) for o in outputs) / max(len(outputs), 1), 1),
        **({"corrected_share": round(sum(bool(o.stats["corrected_steps"]) for o in outputs) / len(outputs), 4)}
           if outputs and "corrected_steps" in outputs[0].stats else {}),
        "wrong": wrong,
    }


def _gsm8k(problems: list[dict], outputs) -> dict:
    from .gsm8k import score_gsm8k

    return score_gsm8k(problems, [o.text for o in outputs])


def run_bench(model, variants: list[str], problems: str = "heldout", limit: int | None = None,
              threads: int | None = None, check: bool = False) -> dict:
    """Every variant answers every problem greedily; with `check`, also with checked
    arithmetic (Settings.check), scored under the variant's "checked" key."""
    from tracetutor.recipe import resolve_model
    from tracetutor.runtime import load
    from tracetutor.runtime.variants import variants_on_disk

    model_dir, _ = resolve_model(model)
    if variants == ["all"]:
        variants = variants_on_disk(model_dir)
    path, items = load_problems(model_dir, problems, limit)
    report = {"model": str(model_dir), "problems": str(path), "n": len(items), "variants": {}}
    for variant in variants:
        engine = load(model_dir, variant, threads=threads)
        start = time.perf_counter()
        outputs = engine.answer_batch([p["question"] for p in items])
        seconds = time.perf_counter() - start
        result = score(items, outputs)
        result["seconds"] = round(seconds, 2)
        if check:  # the plain answers are the first round of the checked ones
            start = time.perf_counter()
            checked = score(items, engine.check_batch([p["question"] for p in items], outputs))
            result["checked"] = {**checked, "seconds": round(seconds + time.perf_counter() - start, 2)}
        report["variants"][variant] = result
    return report


def format_table(report: dict) -> str:
    """A plain-text table: one row per variant, columns overall and per difficulty."""
    variants = report["variants"]
    levels = sorted({lv for r in variants.values() for lv in r["by_difficulty"]})
    checked = any("checked" in r for r in variants.values())
    head = (["variant", "accuracy"] + (["checked"] if checked else []) + ["steps ok"]
            + [f"level {lv}" for lv in levels] + ["n", "seconds"])
    rows = [head]
    for name, r in variants.items():
        rows.append([name, _pct(r["accuracy"])] + ([_pct(r.get("checked", {}).get("accuracy"))] if checked else [])
                    + [_pct(r["step_validity"])]
                    + [_pct(r["by_difficulty"].get(lv, {}).get("accuracy")) for lv in levels]
                    + [str(r["n"]), str(r["seconds"])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


# ---------------------------------------------------------------------------------------
# The full benchmark: every variant in a process of its own, compared with torch-fp32


def benchmark(model, variants: list[str], problems: str = "heldout", limit: int | None = None,
              threads: int | None = None, samples: int = 1, log=None) -> dict:
    """Every variant answers every problem (greedy, checked and, with `samples` > 1, by vote) in
    a process of its own (apps/bench_variant.py); each is compared with torch-fp32, which runs
    first as the reference whenever it is on disk, on the same problems. Returns the report that
    apps/bench_report.py writes: per variant the score() figures and the keys of
    bench_report.KEYS."""
    import json
    import subprocess
    import sys
    import tempfile

    from tracetutor.recipe import resolve_model
    from tracetutor.runtime.variants import TORCH, check_variant, variants_on_disk

    from .bench_report import summarise

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"--samples must be an integer of at least 1, got {samples!r}")
    model_dir, _ = resolve_model(model)
    on_disk = variants_on_disk(model_dir)
    if variants == ["all"]:
        variants = on_disk
    path, items = load_problems(model_dir, problems, limit)  # a bad file fails before any model loads
    for v in variants:
        check_variant(model_dir, v)
    reference = TORCH if TORCH in on_disk else None
    order = ([TORCH] if reference else []) + [v for v in variants if v != TORCH]
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="tracetutor-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in items), encoding="utf-8")
        (tmp / "reference").mkdir()
        for k, v in enumerate(order, 1):
            if log:
                log(f"bench {v} ({k}/{len(order)}): {len(items)} problems")
            spec = {"model_dir": str(model_dir), "variant": v, "problems": str(tmp / "problems.jsonl"),
                    "threads": threads, "samples": samples, "reference_dir": str(tmp / "reference"),
                    "is_reference": v == reference, "result": str(tmp / f"{v}.json"),
                    "debug": bool(os.environ.get("TRACETUTOR_DEBUG"))}
            (tmp / f"{v}.spec.json").write_text(json.dumps(spec), encoding="utf-8")
            run = subprocess.run([sys.executable, "-m", "tracetutor.apps.bench_variant", str(tmp / f"{v}.spec.json")])
            result_file = tmp / f"{v}.json"
            if run.returncode or not result_file.is_file():
                raise RuntimeError(f"the bench of {v} stopped (exit code {run.returncode})")
            result = json.loads(result_file.read_text(encoding="utf-8"))
            if "error" in result:
                if result["expected"]:
                    raise ValueError(f"{v}: {result['error']}")
                raise RuntimeError(f"{v}: {result['error']}")
            results[v] = result
    report = summarise(items, results, reference, order, samples)
    return {"model": str(model_dir), "problems": str(path), "problem_set": problems, "n": len(items),
            **report, "seconds": round(time.perf_counter() - start, 1)}


def default_out(model) -> Path:
    """models/<name>/bench/ for a recipe (even when its shipped release answers), else the
    model folder's bench/, or models/<name>/bench/ for a release folder, which is never written."""
    from tracetutor.recipe import models_dir, resolve_model
    from tracetutor.release import is_release

    model_dir, recipe = resolve_model(model)
    if recipe is not None:
        return recipe.dir / "bench"
    return models_dir() / model_dir.name / "bench" if is_release(model_dir) else model_dir / "bench"
