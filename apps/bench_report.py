"""The benchmark's figures per variant, its verdict, and its report: bench.json, report.md and
PNG plots in one folder.

The verdict is derived from the figures alone: among the variants whose answers do not differ
significantly from torch-fp32's (exact McNemar p >= ALPHA, or at least torch's accuracy), the
smallest file ships; ties go to the faster. A variant that loses significantly is named with
what it loses. On probes, every form whose accuracy falls by DROP or more below the same
problems' originals is reported as a finding.
"""

from __future__ import annotations

from pathlib import Path

from .stats import greedy_agreement, mcnemar_p, wilson

KEYS = ("accuracy", "accuracy_ci", "checked_accuracy", "step_validity", "kl_divergence", "top1_agreement",
        "greedy_identical", "mcnemar_p", "tokens_per_s", "ttft_s", "size_bytes", "peak_rss_bytes")
ALPHA = 0.05
DROP = 0.10  # a probe form this far below its originals is a finding


def _done(d: dict):
    from tracetutor.runtime import Done

    stats = {"n_tokens": d["n_tokens"], **({"corrected_steps": d["corrected_steps"]} if "corrected_steps" in d else {})}
    return Done(text=d["text"], steps=d["steps"], answer=d["answer"], stats=stats)


def _round(x, places: int = 4):
    return None if x is None else round(x, places)


def summarise(problems: list[dict], results: dict[str, dict], reference: str | None, order: list[str],
              samples: int = 1) -> dict:
    """Per variant: score()'s figures, the KEYS, and the comparison with the reference."""
    from tracetutor.trace import answers_match

    from .bench import score

    ref = results.get(reference) if reference else None
    ref_correct = [answers_match(d["answer"], p["answer"]) for d, p in zip(ref["greedy"], problems)] if ref else None
    variants = {}
    for v in order:
        r = results[v]
        greedy = [_done(d) for d in r["greedy"]]
        s = score(problems, greedy)
        correct = [answers_match(d.answer, p["answer"]) for d, p in zip(greedy, problems)]
        s["checked"] = score(problems, [_done(d) for d in r["checked"]])
        tf = r["teacher_forced"]
        agreement = greedy_agreement([d["text"] for d in ref["greedy"]], [d.text for d in greedy]) if ref else {}
        ci = wilson(sum(correct), len(correct))
        s.update({
            "accuracy_ci": [_round(ci[0]), _round(ci[1])] if ci else None,
            "checked_accuracy": s["checked"]["accuracy"],
            "kl_divergence": tf["kl_divergence"], "top1_agreement": _round(tf["top1_agreement"], 6),
            "teacher_forced_traces": tf["compared"],
            "greedy_identical": _round(agreement.get("greedy_identical")),
            "first_departing_step": agreement.get("first_departing_step"),
            "mcnemar_p": _round(mcnemar_p(ref_correct, correct), 6) if ref else None,
            "tokens_per_s": r["tokens_per_s"], "prompt_tokens_per_s": tf["prompt_tokens_per_s"],
            "batch_tokens_per_s": r["seconds"]["batch_tokens_per_s"], "ttft_s": r["ttft_s"],
            "size_bytes": r["size_bytes"], "peak_rss_bytes": r["peak_rss_bytes"],
            "too_long": r["too_long"], "seconds": r["seconds"],
        })
        if samples > 1:
            voted = [answers_match(a, p["answer"]) for a, p in zip(r["votes"], problems)]
            vci = wilson(sum(voted), len(voted))
            s.update({"samples": samples, "vote_accuracy": _round(sum(voted) / len(voted)) if voted else None,
                      "vote_accuracy_ci": [_round(vci[0]), _round(vci[1])] if vci else None})
        variants[v] = s
    return {"reference": reference if ref else None, "samples": samples, "variants": variants,
            "verdict": verdict(variants, reference if ref else None)}


def verdict(variants: dict[str, dict], reference: str | None) -> str:
    """Which variant to ship and why, in words, from the figures."""
    if not variants:
        return "No variant was measured."
    names = list(variants)
    lines = []
    if reference is None:
        best = max(names, key=lambda v: (variants[v]["accuracy"] or 0, -variants[v]["size_bytes"]))
        tied = sum(variants[v]["accuracy"] == variants[best]["accuracy"] for v in names) > 1
        lines.append(f"Ship {best}: the most accurate variant measured ({_pct(variants[best]['accuracy'])})"
                     + (", and the smallest of those as accurate" if tied else "")
                     + "; torch-fp32 is not on disk, so no variant is compared with full precision.")
    else:
        ref = variants[reference]
        kept = [v for v in names if v == reference or (variants[v]["mcnemar_p"] or 0) >= ALPHA
                or (variants[v]["accuracy"] or 0) >= (ref["accuracy"] or 0)]
        best = min(kept, key=lambda v: (variants[v]["size_bytes"], -(variants[v]["tokens_per_s"] or 0)))
        b = variants[best]
        why = (f"Ship {best}: the smallest file ({_mb(b['size_bytes'])}) whose answers do not differ "
               f"significantly from {reference}'s: {_pct(b['accuracy'])} {_ci(b)} against {_pct(ref['accuracy'])}")
        if best != reference:
            why += f" (McNemar p = {b['mcnemar_p']:.3g})"
            if b["tokens_per_s"] and ref["tokens_per_s"]:
                why += f", decoding at {b['tokens_per_s'] / ref['tokens_per_s']:.1f}x {reference}'s speed"
            if b["kl_divergence"] is not None:
                why += f", mean KL {b['kl_divergence']:.2g} and {_pct(b['top1_agreement'])} top-1 agreement"
        lines.append(why + ".")
        lost = [v for v in names if v not in kept]
        for v in lost:
            x = variants[v]
            lines.append(f"{v} loses significantly: {_pct(x['accuracy'])} against {_pct(ref['accuracy'])} "
                         f"(McNemar p = {x['mcnemar_p']:.3g}, mean KL {_num(x['kl_divergence'])}).")
        if not lost and len(names) > 1:
            lines.append(f"No variant's answers differ significantly from {reference}'s on these "
                         f"{ref['n']} problems (McNemar p >= {ALPHA}).")
    forms = variants[best].get("by_form")
    if forms:
        drops = [(f, x) for f, x in forms.items() if f != "original" and x["original_accuracy"] - x["accuracy"] >= DROP]
        for f, x in drops:
            lines.append(f"Finding: on the {f} probes ({_FORM_WORDS.get(f, f)}) {best} answers "
                         f"{_pct(x['accuracy'])} of {x['n']} against {_pct(x['original_accuracy'])} for the same "
                         "problems as written.")
        if not drops:
            lines.append(f"On every probe form {best} stays within {int(DROP * 100)} points of the originals.")
    return " ".join(lines)


_FORM_WORDS = {"symbolic": "the same words with other numbers and names",
               "noop": "one irrelevant sentence with a number added",
               "reorder": "the same facts in another order",
               "paraphrase": "the same question in words the templates never use"}


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ci(r: dict) -> str:
    ci = r.get("accuracy_ci")
    return f"[{100 * ci[0]:.1f}-{100 * ci[1]:.1f}]" if ci else ""


def _mb(n) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def _num(x, fmt: str = ".2g") -> str:
    return "-" if x is None else format(x, fmt)


def table_rows(report: dict) -> list[list[str]]:
    """The summary table: a header and a row per variant."""
    head = ["variant", "accuracy [95% CI]", "checked", "steps ok", "mean KL", "top-1", "greedy same",
            "McNemar p", "decode tok/s", "TTFT ms", "size", "peak RSS"]
    if report.get("samples", 1) > 1:
        head.insert(3, f"vote x{report['samples']}")
    rows = [head]
    for v, r in report["variants"].items():
        row = [v, f"{_pct(r['accuracy'])} {_ci(r)}", _pct(r["checked_accuracy"]), _pct(r["step_validity"]),
               _num(r["kl_divergence"]), _pct(r["top1_agreement"]), _pct(r["greedy_identical"]),
               _num(r["mcnemar_p"], ".3g"), _num(r["tokens_per_s"], ".0f"),
               _num(None if r["ttft_s"] is None else 1000 * r["ttft_s"], ".1f"), _mb(r["size_bytes"]),
               _mb(r["peak_rss_bytes"])]
        if report.get("samples", 1) > 1:
            row.insert(3, _pct(r.get("vote_accuracy")))
        rows.append(row)
    return rows


def format_summary(report: dict) -> str:
    rows = table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + ["| " + " | ".join(r) + " |" for r in rows[1:]]


def write_report(report: dict, out: Path) -> list[Path]:
    """bench.json, report.md and the plots in `out`; the files written."""
    from tracetutor.files import write_json, write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "bench.json", report)
    plots, note = plot(report, out)
    variants = report["variants"]
    lines = [f"# Benchmark of {Path(report['model']).name}", "",
             f"{report['n']} problems ({report['problem_set']}: `{report['problems']}`), greedy decoding; "
             f"every variant ran in a process of its own and is compared with "
             f"{report['reference'] or 'no full-precision reference (torch-fp32 is not on disk)'} on the same "
             f"problems. The bench took {report['seconds']:.0f} s.", "",
             "## Verdict", "", report["verdict"], "", "## Variants", ""]
    lines += _markdown(table_rows(report))
    lines += ["", "*accuracy*: final answers that match, with the Wilson 95% interval; *checked*: the same "
              "model with checked arithmetic; *steps ok*: generated steps whose arithmetic verifies; "
              "*mean KL* and *top-1*: KL(torch ‖ variant) and agreement of the most likely next token, "
              "teacher-forced over the reference traces; *greedy same*: completions identical to torch's; "
              "*McNemar p*: exact test of the paired answers against torch's; *decode tok/s* and *TTFT*: one "
              "question at a time; *peak RSS*: the variant's own process.", ""]
    levels = sorted({lv for r in variants.values() for lv in r["by_difficulty"]})
    if levels:
        rows = [["variant"] + [f"level {lv}" for lv in levels]]
        rows += [[v] + [_pct(r["by_difficulty"].get(lv, {}).get("accuracy")) for lv in levels] for v, r in variants.items()]
        lines += ["## Accuracy by difficulty", ""] + _markdown(rows) + [""]
    forms = [f for f in ("original", "symbolic", "noop", "reorder", "paraphrase")
             if any(f in r.get("by_form", {}) for r in variants.values())]
    if forms:
        rows = [["variant"] + forms]
        for v, r in variants.items():
            bf = r.get("by_form", {})
            rows.append([v] + [f"{_pct(bf[f]['accuracy'])} ({_pct(bf[f]['original_accuracy'])}, n={bf[f]['n']})"
                               if f in bf else "-" for f in forms])
        lines += ["## Robustness probes", "", "Accuracy per form, and in brackets the accuracy of the same "
                  "problems as written (the original form).", ""] + _markdown(rows) + [""]
    if any("gsm8k" in r for r in variants.values()):
        rows = [["variant", "strict-match", "flexible-extract", "our answer match"]]
        rows += [[v, _pct(r["gsm8k"]["strict_match"]), _pct(r["gsm8k"]["flexible_extract"]), _pct(r["accuracy"])]
                 for v, r in variants.items()]
        lines += ["## GSM8K", "", "Extraction as lm-evaluation-harness does it (zero-shot through the chat "
                  "template, not its 5-shot prompt).", ""] + _markdown(rows) + [""]
    departing = {v: r["first_departing_step"] for v, r in variants.items() if r.get("first_departing_step")}
    if departing:
        lines += ["## Where greedy completions depart from torch's", ""]
        lines += [f"- {v}: " + ", ".join(f"step {k}: {n}" for k, n in d.items()) for v, d in departing.items()]
        lines.append("")
    lines += ["## Plots", ""] + ([f"![{p.stem}]({p.name})" for p in plots] or [note]) + [""]
    write_text(out / "report.md", "\n".join(lines))
    return [out / "bench.json", out / "report.md", *plots]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (higher is better)."""
    return [i for i, (x, y) in enumerate(points)
            if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)]


def plot(report: dict, out: Path) -> tuple[list[Path], str]:
    """The PNG plots; ([], why) where matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return [], "The plots need matplotlib: pip install matplotlib."
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = report["variants"]
    names = list(variants)
    acc = [100 * (variants[v]["accuracy"] or 0) for v in names]
    err = [[100 * ((variants[v]["accuracy"] or 0) - c[0]) for v in names for c in [variants[v]["accuracy_ci"] or [0, 0]]],
           [100 * (c[1] - (variants[v]["accuracy"] or 0)) for v in names for c in [variants[v]["accuracy_ci"] or [0, 0]]]]
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(out / name)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    sizes = [variants[v]["size_bytes"] / 1e6 for v in names]
    ax.errorbar(sizes, acc, yerr=err, fmt="o", capsize=3)
    for x, y, v in zip(sizes, acc, names):
        ax.annotate(v, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xscale="log", xlabel="file size (MB, log scale)", ylabel="accuracy (%)", title="Accuracy against file size")
    save(fig, "accuracy_vs_size.png")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    speed = [variants[v]["tokens_per_s"] or 0 for v in names]
    ax.errorbar(speed, acc, yerr=err, fmt="o", capsize=3)
    front = sorted(pareto_front(list(zip(speed, acc))), key=lambda i: speed[i])
    ax.plot([speed[i] for i in front], [acc[i] for i in front], "r--", marker="s", label="Pareto front")
    for x, y, v in zip(speed, acc, names):
        ax.annotate(v, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel="decode tokens/s", ylabel="accuracy (%)", title="Accuracy against speed")
    ax.legend()
    save(fig, "accuracy_vs_speed.png")

    levels = sorted({lv for r in variants.values() for lv in r["by_difficulty"]})
    if levels:
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.8 / len(names)
        for k, v in enumerate(names):
            ys = [100 * (variants[v]["by_difficulty"].get(lv, {}).get("accuracy") or 0) for lv in levels]
            ax.bar([i + k * width for i in range(len(levels))], ys, width, label=v)
        ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(levels))], [f"level {lv}" for lv in levels])
        ax.set(ylabel="accuracy (%)", ylim=(0, 100), title="Accuracy by difficulty")
        ax.legend(fontsize=7)
        save(fig, "accuracy_by_difficulty.png")

    measured = [v for v in names if variants[v]["kl_divergence"] is not None]
    if measured:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ax.bar(measured, [max(variants[v]["kl_divergence"], 1e-12) for v in measured])
        ax.set(yscale="log", ylabel="mean KL(torch ‖ variant), log scale", title="Distance from torch-fp32")
        ax.tick_params(axis="x", rotation=30)
        save(fig, "kl_by_variant.png")

    forms = [f for f in ("original", "symbolic", "noop", "reorder", "paraphrase")
             if any(f in variants[v].get("by_form", {}) for v in names)]
    if forms:
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.8 / len(names)
        for k, v in enumerate(names):
            bf = variants[v].get("by_form", {})
            ax.bar([i + k * width for i in range(len(forms))], [100 * bf.get(f, {}).get("accuracy", 0) for f in forms],
                   width, label=v)
        ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(forms))], forms)
        ax.set(ylabel="accuracy (%)", ylim=(0, 100), title="Accuracy by probe form")
        ax.legend(fontsize=7)
        save(fig, "accuracy_by_form.png")
    return written, ""
