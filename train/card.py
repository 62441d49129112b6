"""A data card for a trace file (`tracetutor data card FILE`): what is in it, in Markdown, with
PNG plots of trace lengths and steps per trace.

It counts traces by source, family and difficulty, re-verifies every trace (claims true, false
and unverifiable, and the share of each), and, when FILE was written by `data filter`, reads
the filter's report beside it for the acceptance rate and the rejections by reason.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from tracetutor.files import read_json, write_text
from tracetutor.trace import Trace, TraceFileError, iter_trace_lines, render_completion
from tracetutor.train.filter import report_path
from tracetutor.verify import OUTCOMES, review_trace


def _table(title: str, counts: Counter, total: int, by_key: bool = False) -> list[str]:
    lines = [f"| {title} | traces | share |", "|---|---:|---:|"]
    order = (lambda kv: (kv[0] is None, kv[0] or 0)) if by_key else (lambda kv: (-kv[1], str(kv[0])))
    for key, n in sorted(counts.items(), key=order):
        lines.append(f"| {'—' if key is None else key} | {n:,} | {n / total:.1%} |")
    return lines + [""]


def _spread(values: list[int]) -> str:
    return (f"mean {statistics.fmean(values):.1f}, median {statistics.median(values):g}, "
            f"min {min(values)}, max {max(values)}")


def _plots(traces: list[Trace], out_dir: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise ImportError("the data card's plots need matplotlib: pip install matplotlib") from None
    by_source: dict[str, list[Trace]] = {}
    for t in traces:
        by_source.setdefault(t.source, []).append(t)

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist([[len(render_completion(t)) for t in ts] for ts in by_source.values()], bins=40, stacked=True,
            label=list(by_source))
    ax.set(xlabel="completion length (characters)", ylabel="traces", title="Trace lengths")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "lengths.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    most = max(len(t.steps) for t in traces)
    bottom = [0] * (most + 1)
    for source, ts in by_source.items():
        counts = Counter(len(t.steps) for t in ts)
        heights = [counts[n] for n in range(most + 1)]
        ax.bar(range(most + 1), heights, bottom=bottom, label=source)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set(xlabel="steps", ylabel="traces", title="Steps per trace")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "steps.png", dpi=100)
    plt.close(fig)
    return ["lengths.png", "steps.png"]


def make_card(path, out_dir=None) -> Path:
    """Write `card.md` and its plots into `out_dir` (default `FILE.card/` beside FILE); return
    the card's path."""
    path = Path(path)
    out_dir = Path(out_dir) if out_dir is not None else path.with_name(path.stem + ".card")
    traces, unreadable = [], 0
    for _, item in iter_trace_lines(path):
        if isinstance(item, TraceFileError):
            unreadable += 1
        else:
            traces.append(item)
    if not traces:
        raise TraceFileError(f"holds no readable traces ({unreadable} unreadable lines)", path=path)
    out_dir.mkdir(parents=True, exist_ok=True)

    claims, passing, no_claim_steps = dict.fromkeys(OUTCOMES, 0), 0, 0
    for t in traces:
        review = review_trace(t)
        for outcome, n in review.counts().items():
            claims[outcome] += n
        passing += not review.failures
        no_claim_steps += sum(all(c.outcome == "unverifiable" for c in step) for step in review.claims)
    n, all_claims = len(traces), sum(claims.values())
    n_steps = sum(len(t.steps) for t in traces)

    lines = [f"# Data card: {path.name}", "", f"{n:,} traces"
             + (f" ({unreadable} unreadable lines left out)" if unreadable else "") + ".", ""]
    filtered = report_path(path)
    if filtered.is_file():
        report = read_json(filtered)
        lines += ["## Filter", "", f"Kept {report['kept']:,} of {report['total']:,} traces of `{report['input']}`: "
                  f"acceptance rate {report['acceptance']:.1%}.", ""]
        if report["rejected"]:
            lines += ["| rejected because | traces | share of input |", "|---|---:|---:|"]
            lines += [f"| {reason} | {k:,} | {k / report['total']:.1%} |" for reason, k in report["rejected"].items()]
            lines.append("")
    else:
        lines += [f"No filter report beside it (`{filtered.name}`): this file was not written by `data filter`.", ""]
    lines += ["## Contents", ""]
    lines += _table("source", Counter(t.source for t in traces), n)
    lines += _table("family", Counter(t.family for t in traces), n)
    lines += _table("difficulty", Counter(t.difficulty for t in traces), n, by_key=True)
    lines += ["## Verification", "",
              f"{passing:,} of {n:,} traces pass `data verify` ({passing / n:.1%}).", "",
              "| claims | count | share |", "|---|---:|---:|"]
    lines += [f"| {outcome} | {claims[outcome]:,} | {claims[outcome] / max(all_claims, 1):.1%} |" for outcome in OUTCOMES]
    lines += ["", f"Unverifiable share: {claims['unverifiable'] / max(all_claims, 1):.1%} of claims; "
              f"{no_claim_steps:,} of {n_steps:,} steps ({no_claim_steps / max(n_steps, 1):.1%}) hold no claim the "
              "verifier reads (a sentence, or a form it does not read).", ""]
    lines += ["## Lengths", "",
              f"- steps per trace: {_spread([len(t.steps) for t in traces])}",
              f"- completion characters: {_spread([len(render_completion(t)) for t in traces])}", ""]
    lines += [f"![{name}]({name})" for name in _plots(traces, out_dir)]
    card = out_dir / "card.md"
    write_text(card, "\n".join(lines) + "\n")
    return card
