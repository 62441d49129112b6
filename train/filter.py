"""Which traces to train on (`tracetutor data filter IN --out OUT`).

A trace is kept when its answer matches the gold answer, no claim in its steps is false, the
answer follows from what its steps conclude, its length is within bounds, its question is not
one of the held-out or test questions (exactly or nearly: no contamination), and it is neither
a copy nor a near copy of a trace kept before it. Every trace rejected is counted under the
first reason that rejects it, printed, and written with the settings to `OUT.filter.json`
beside the output, which `data card` reads.

The gold answer is the trace's `gold` field (importers and the teacher write it); a trace
without one (synthetic or hand-written) is its own gold. A `gold` of null (a teacher asked a
question with no known answer) cannot be checked and is rejected.

Near copies are found by Jaccard similarity of word 3-grams (`near`, 0.8 by default, and
`near_test`, 0.5, against held-out questions), all pairs above it exactly, with prefix filtering: two sets that similar share a shingle among the
rarest few of each, so only traces that do are compared.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tracetutor.files import write_json
from tracetutor.trace import Trace, TraceFileError, answers_match, iter_records, iter_trace_lines, render_completion, save_traces
from tracetutor.verify import OUTCOMES, review_trace

REASONS = (
    "unreadable line", "no steps", "no gold answer", "answer is not the gold answer", "false claim",
    "answer does not follow from the steps", "too few steps", "too many steps", "too long",
    "test question", "near a test question", "duplicate", "near duplicate",
)


@dataclass
class FilterSettings:
    """The bounds a kept trace keeps."""

    min_steps: int = 1
    max_steps: int = 16
    max_chars: int = 2000
    """The longest completion (`Step 1: ...` to `Answer: ...`) in characters."""
    near: float = 0.8
    """Jaccard similarity of word 3-grams from which two traces are near copies."""
    near_test: float = 0.5
    """The same for a question and a held-out one: lower, since a test question told again with
    other names and numbers (GSM8K has some) is still contamination."""
    against: list[str] = field(default_factory=list)
    """Files of held-out or test questions (JSONL with `question`) no kept trace may ask."""

    def __post_init__(self):
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"steps bounds must satisfy 1 <= min ({self.min_steps}) <= max ({self.max_steps})")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {self.max_chars}")
        for name in ("near", "near_test"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


def normalise(text: str) -> str:
    """Text as compared for copies: lowercase words and numbers, nothing else."""
    return " ".join(re.findall(r"\w+(?:[.,]\d+)*", text.lower()))


def shingles(text: str) -> frozenset[int]:
    """Word 3-grams of a normalised text, hashed (a shorter text is its own one shingle)."""
    words = normalise(text).split()
    grams = [" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))]
    return frozenset(zlib.crc32(g.encode("utf-8")) for g in grams)


class NearIndex:
    """Sets of shingles, searched for one at Jaccard similarity `threshold` or more (prefix
    filtering: only sets that share a shingle of their prefix in `rank` order are compared)."""

    def __init__(self, threshold: float, rank: Counter):
        self.threshold, self.rank = threshold, rank
        self.sets: list[tuple[str, frozenset[int]]] = []
        self.postings: dict[int, list[int]] = {}

    def _prefix(self, s: frozenset[int]) -> list[int]:
        ordered = sorted(s, key=lambda h: (self.rank[h], h))  # rarest first
        return ordered[: len(ordered) - math.ceil(self.threshold * len(ordered)) + 1]

    def find(self, s: frozenset[int]) -> str | None:
        """The name of a set in the index this similar to `s`, or None."""
        seen = set()
        for h in self._prefix(s):
            for i in self.postings.get(h, ()):
                if i in seen:
                    continue
                seen.add(i)
                name, other = self.sets[i]
                if len(s & other) >= self.threshold * len(s | other):
                    return name
        return None

    def add(self, name: str, s: frozenset[int]) -> None:
        for h in self._prefix(s):
            self.postings.setdefault(h, []).append(len(self.sets))
        self.sets.append((name, s))


def read_questions(paths) -> list[tuple[str, str]]:
    """(where, question) of every line of the files; a line without a question is an error."""
    found = []
    for path in paths:
        for line, record in iter_records(path):
            if isinstance(record, TraceFileError):
                raise record
            if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                raise TraceFileError("no question to hold out", path=path, line=line, field="question")
            found.append((f"{path}:{line}", record["question"]))
    return found


def _gold(trace: Trace):
    return trace.extra["gold"] if "gold" in trace.extra else trace.answer


def filter_traces(path, settings: FilterSettings) -> tuple[list[Trace], dict]:
    """The traces of `path` to keep, and the report of what was rejected and why."""
    held_out = read_questions(settings.against)
    lines = list(iter_trace_lines(path))
    traces = [t for _, t in lines if isinstance(t, Trace)]
    texts = {id(t): (shingles(t.question), shingles(t.question + "\n" + render_completion(t))) for t in traces}
    held = [(where, shingles(q)) for where, q in held_out]
    rank = Counter(h for q, whole in texts.values() for s in (q, whole) for h in s)
    rank.update(h for _, s in held for h in s)

    tests = NearIndex(settings.near_test, rank)
    exact_tests = {}
    for where, question in held_out:
        exact_tests.setdefault(normalise(question), where)
    for where, s in held:
        tests.add(where, s)
    kept_index, kept_keys = NearIndex(settings.near, rank), {}

    kept, rejections = [], []
    claims = dict.fromkeys(OUTCOMES, 0)
    for line, trace in lines:
        if isinstance(trace, TraceFileError):
            rejections.append({"line": line, "id": None, "reason": "unreadable line", "detail": str(trace)})
            continue
        review = review_trace(trace)
        for outcome, n in review.counts().items():
            claims[outcome] += n
        reason, detail = _reject(trace, review, settings)
        if not reason:
            q, whole = texts[id(trace)]
            key = (normalise(trace.question), normalise(render_completion(trace)))
            if normalise(trace.question) in exact_tests:
                reason, detail = "test question", exact_tests[normalise(trace.question)]
            elif (where := tests.find(q)) is not None:
                reason, detail = "near a test question", where
            elif key in kept_keys:
                reason, detail = "duplicate", kept_keys[key]
            elif (other := kept_index.find(whole)) is not None:
                reason, detail = "near duplicate", other
            else:
                kept_keys[key] = trace.id
                kept_index.add(trace.id, whole)
        if reason:
            rejections.append({"line": line, "id": trace.id, "reason": reason, "detail": detail})
        else:
            trace.checks = review.checks
            kept.append(trace)

    counts = Counter(r["reason"] for r in rejections)
    report = {
        "input": str(path), "total": len(lines), "kept": len(kept),
        "acceptance": round(len(kept) / len(lines), 4) if lines else 0.0,
        "rejected": {reason: counts[reason] for reason in REASONS if counts[reason]},
        "claims": claims, "settings": asdict(settings), "rejections": rejections,
    }
    return kept, report


def _reject(trace: Trace, review, settings: FilterSettings) -> tuple[str, str]:
    """The first reason of the trace's own to reject it, with its detail, or ("", "")."""
    if not trace.steps:
        return "no steps", ""
    gold = _gold(trace)
    if gold is None or not str(gold).strip():
        return "no gold answer", ""
    if not answers_match(trace.answer, gold):
        return "answer is not the gold answer", f"{trace.answer!r} where the gold answer is {gold!r}"
    false = [f for f in review.failures if f.startswith("step ")]
    if false:
        return "false claim", "; ".join(false)
    if review.failures:
        return "answer does not follow from the steps", "; ".join(review.failures)
    if len(trace.steps) < settings.min_steps:
        return "too few steps", f"{len(trace.steps)} steps"
    if len(trace.steps) > settings.max_steps:
        return "too many steps", f"{len(trace.steps)} steps"
    if (n := len(render_completion(trace))) > settings.max_chars:
        return "too long", f"{n} characters"
    return "", ""


def report_path(out) -> Path:
    """Where the report of a filter run that wrote `out` lies: `OUT.filter.json` beside it."""
    out = Path(out)
    return out.with_name(out.stem + ".filter.json")


def filter_file(path, out, settings: FilterSettings) -> dict:
    """Filter `path` into `out` and write the report beside it; return the report."""
    if Path(out).resolve() == Path(path).resolve():
        raise ValueError(f"{out}: the output would replace the input; write it elsewhere")
    kept, report = filter_traces(path, settings)
    save_traces(out, kept)
    report["output"] = str(out)
    write_json(report_path(out), report)
    return report
