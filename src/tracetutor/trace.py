"""The trace record (DESIGN.md), its JSONL files, and its text format for the student.

A trace file holds one JSON object per line:

    {"id": "synth/multi_step/000123", "question": "...", "steps": ["...", "..."],
     "answer": "24", "source": "synth", "family": "multi_step", "difficulty": 2,
     "checks": {"answer": true, "steps": [true, true]}}

The student sees the question as the user turn and `Step 1: ...\nStep 2: ...\nAnswer: 24`
as the assistant turn (`Answer: 24` alone in answer-only mode).

Answers are compared through `canonical_answer`, never as raw text. Its canonical forms:
integers as integers (`1,234.0` -> `1234`), every other number as an exact reduced fraction
(`0.5`, `1/2`, `2/4` -> `1/2`; `$12.50` -> `25/2`; `1 1/2` -> `3/2`), and a percentage as the
number written before the sign (`25%` -> `25`, so `25%` and `25` match but `0.25` does not).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .files import atomic_path

# The record's own keys, in the order they are written.
FIELDS = ("id", "question", "steps", "answer", "source", "family", "difficulty", "checks")

MODES = ("traces", "answers")
LEVELS = (1, 2, 3, 4)
"""The curriculum's difficulty levels (a trace's `difficulty`): 1 to 5 dependent steps,
numbers up to 20, 50, 100, 200."""


class TraceFileError(ValueError):
    """A record that cannot be read, located as `file:line: field 'name': what is wrong`."""

    def __init__(
        self,
        detail: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
    ):
        self.detail = detail  # what is wrong, without the location
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.field = field
        parts = []
        if self.path is not None and line is not None:
            parts.append(f"{self.path}:{line}")
        elif self.path is not None:
            parts.append(self.path)
        elif line is not None:
            parts.append(f"line {line}")
        if field is not None:
            parts.append(f"field {field!r}")
        parts.append(detail)
        super().__init__(": ".join(parts))


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


@dataclass
class Trace:
    """One problem with its step-by-step solution; the same schema for every source."""

    id: str
    question: str
    steps: list[str]
    answer: str
    source: str = "synth"
    family: str | None = None
    difficulty: int | None = None
    checks: dict | None = None
    extra: dict = field(default_factory=dict)  # unknown keys, kept so nothing is lost

    @classmethod
    def from_dict(cls, d, *, path=None, line=None) -> Trace:
        """Validate one record; raise TraceFileError naming the path, line and field."""

        def fail(name, detail):
            return TraceFileError(detail, path=path, line=line, field=name)

        if not isinstance(d, dict):
            raise TraceFileError(f"expected a JSON object, got {_type_name(d)}", path=path, line=line)

        def required_string(name):
            if name not in d:
                raise fail(name, "missing")
            value = d[name]
            if not isinstance(value, str):
                raise fail(name, f"expected a string, got {_type_name(value)}")
            return value

        trace_id = required_string("id")
        question = required_string("question")

        if "answer" not in d:
            raise fail("answer", "missing")
        answer = d["answer"]
        # Numeric answers are common in imported data; bool is an int in Python but not here.
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        elif not isinstance(answer, str):
            raise fail("answer", f"expected a string or a number, got {_type_name(answer)}")

        steps = d.get("steps", [])
        if not isinstance(steps, list):
            raise fail("steps", f"expected a list of strings, got {_type_name(steps)}")
        for k, step in enumerate(steps, 1):
            if not isinstance(step, str):
                raise fail("steps", f"expected a list of strings, item {k} is {_type_name(step)}")

        source = d.get("source", "synth")
        if not isinstance(source, str):
            raise fail("source", f"expected a string, got {_type_name(source)}")
        family = d.get("family")
        if family is not None and not isinstance(family, str):
            raise fail("family", f"expected a string or null, got {_type_name(family)}")
        difficulty = d.get("difficulty")
        if difficulty is not None and (not isinstance(difficulty, int) or isinstance(difficulty, bool)):
            raise fail("difficulty", f"expected an integer or null, got {_type_name(difficulty)}")
        checks = d.get("checks")
        if checks is not None and not isinstance(checks, dict):
            raise fail("checks", f"expected an object or null, got {_type_name(checks)}")

        extra = {k: v for k, v in d.items() if k not in FIELDS}
        return cls(
            id=trace_id,
            question=question,
            steps=list(steps),
            answer=answer,
            source=source,
            family=family,
            difficulty=difficulty,
            checks=checks,
            extra=extra,
        )

    def to_dict(self) -> dict:
        """The record as written to JSONL: known keys in order, None omitted, extra keys last."""
        d = {}
        for name in FIELDS:
            value = getattr(self, name)
            if name == "steps":
                value = list(value)
            if value is not None:
                d[name] = value
        for key, value in self.extra.items():
            if key not in FIELDS:
                d[key] = value
        return d


# ---------------------------------------------------------------------------------------
# JSONL files


def iter_records(path) -> Iterator[tuple[int, object]]:
    """Yield (1-based line number, the line's JSON value or the TraceFileError it gave);
    blank lines and a UTF-8 byte order mark are skipped."""
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield line_number, TraceFileError(f"not valid UTF-8 ({e.reason})", path=path, line=line_number)
                continue
            if line_number == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                record = TraceFileError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=line_number)
            yield line_number, record


def iter_trace_lines(path) -> Iterator[tuple[int, Trace | TraceFileError]]:
    """Yield (1-based line number, Trace or the error that line gave); blank lines skipped."""
    for line_number, record in iter_records(path):
        if not isinstance(record, TraceFileError):
            try:
                record = Trace.from_dict(record, path=path, line=line_number)
            except TraceFileError as e:
                record = e
        yield line_number, record


def read_traces(path) -> tuple[list[Trace], list[TraceFileError]]:
    """Read every line of a JSONL file; bad lines become errors and reading goes on."""
    traces, errors = [], []
    for _, item in iter_trace_lines(path):
        if isinstance(item, TraceFileError):
            errors.append(item)
        else:
            traces.append(item)
    return traces, errors


def load_traces(path) -> list[Trace]:
    """Read a JSONL file strictly: raise the first TraceFileError."""
    traces, errors = read_traces(path)
    if errors:
        raise errors[0]
    return traces


def save_traces(path, traces: Iterable[Trace]) -> int:
    """Write traces as JSONL, atomically; return how many were written."""
    path = Path(path)
    if path.is_dir():  # atomic_path would replace the folder by the file
        raise IsADirectoryError(f"{path}: is a folder; traces are written to a file such as {path / 'traces.jsonl'}")
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for trace in traces:
            f.write(json.dumps(trace.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


# ---------------------------------------------------------------------------------------
# Text format for the student


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_completion(trace: Trace, mode: str = "traces") -> str:
    """The assistant turn: `Step 1: ...\\nStep 2: ...\\nAnswer: 24`, or `Answer: 24`."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    lines = []
    if mode == "traces":
        # One line per step, so that the text parses back into the same steps.
        lines = [f"Step {k}: {_one_line(step)}" for k, step in enumerate(trace.steps, 1)]
    lines.append(f"Answer: {_one_line(trace.answer)}")
    return "\n".join(lines)


def render_messages(trace: Trace, mode: str = "traces") -> list[dict]:
    """Chat messages for the student, with no system prompt."""
    return [
        {"role": "user", "content": trace.question},
        {"role": "assistant", "content": render_completion(trace, mode)},
    ]


_STEP_PREFIX = re.compile(r"^\s*step\s*(?:\d+\s*[:.)\-]?|[:.)\-])\s*", re.IGNORECASE)
_ANSWER_ANYWHERE = re.compile(r"\bAnswer\s*:")
_ANSWER_AT_START = re.compile(r"^\s*answer\s*:", re.IGNORECASE)


def _answer_marks(line: str) -> list[re.Match]:
    """`Answer:` anywhere in a line, or `answer:` in any case at its start."""
    marks = list(_ANSWER_ANYWHERE.finditer(line))
    start = _ANSWER_AT_START.match(line)
    if start:
        marks.insert(0, start)
    return marks


def _strip_step_prefix(line: str) -> str:
    return _STEP_PREFIX.sub("", line, count=1).strip()


def parse_completion(text: str) -> tuple[list[str], str | None]:
    """Split a generated completion into steps (prefix removed) and the answer (or None).

    The first line holding `Answer:` ends the completion; the answer is the text after the
    last `Answer:` on that line. Lines before it are steps, numbered or not.
    """
    steps: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        marks = _answer_marks(line)
        if marks:
            before = _strip_step_prefix(line[: marks[0].start()])
            if before:
                steps.append(before)
            answer = line[marks[-1].end() :].strip().strip("*").strip()
            return steps, answer or None
        step = _strip_step_prefix(line)
        if step:
            steps.append(step)
    return steps, None


# ---------------------------------------------------------------------------------------
# Numbers and answers

_CURRENCY = "$£€"
_DECIMAL = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMBER = re.compile(
    rf"""
    (?P<sign>[-+]?)\s*[{_CURRENCY}]?\s*(?P<sign2>[-+]?)
    (?:
        (?P<whole>\d+)\s+(?P<num>\d+)/(?P<den>\d+)               # mixed number: 1 1/2
      | (?P<top>{_DECIMAL})(?:\s*/\s*(?P<bottom>{_DECIMAL}))?   # 1,234.5 or 3/4
    )
    """,
    re.VERBOSE,
)


def _decimal(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def parse_number(s: str) -> Fraction | None:
    """The exact value of a number written as `1,234.5`, `$12`, `-3`, `3/4` or `1 1/2`.

    The whole string must be the number (surrounding whitespace aside); percent signs and
    units are left to the caller. None when it is not a number or divides by zero.
    """
    if s is None:
        return None
    m = _NUMBER.fullmatch(s.strip().replace("\u2212", "-"))
    if m is None or (m["sign"] and m["sign2"]):
        return None
    negative = "-" in (m["sign"], m["sign2"])
    if m["whole"] is not None:
        den = int(m["den"])
        if den == 0:
            return None
        value = int(m["whole"]) + Fraction(int(m["num"]), den)
    else:
        value = _decimal(m["top"])
        if m["bottom"] is not None:
            bottom = _decimal(m["bottom"])
            if bottom == 0:
                return None
            value = value / bottom
    return -value if negative else value


# Words after a number that change its value; such answers are compared as text.
_SCALE_WORDS = {
    "half", "halves", "quarter", "quarters", "third", "thirds", "fourth", "fourths",
    "fifth", "fifths", "dozen", "dozens", "hundred", "hundreds", "thousand", "thousands",
    "million", "millions", "billion", "billions", "trillion", "k", "bn",
}
_ANSWER_NUMBER = re.compile(
    rf"""
    (?P<number>[-+]?\s*[{_CURRENCY}]?\s*[-+]?(?:\d+\s+\d+/\d+|(?:{_DECIMAL})(?:\s*/\s*(?:{_DECIMAL}))?))
    \s*%?
    (?P<units>(?:\s*(?:[^\W\d_]+(?![^\W\d_])(?:['’\-][^\W\d_]+(?![^\W\d_]))*|[{_CURRENCY}/]))*)
    \s*\.?
    """,
    re.VERBOSE,
)


def canonical_answer(s) -> str | None:
    """A final answer as a comparison key: see the module docstring for the number forms.

    `$1,234.00` -> `1234`; `12 apples` -> `12`; `6/8`, `0.75` -> `3/4`; `25%` -> `25`.
    Anything that is not a number is lowercased with its whitespace collapsed. None or an
    empty answer gives None.
    """
    if s is None:
        return None
    text = " ".join(str(s).replace("\u2212", "-").split())
    if not text:
        return None
    m = _ANSWER_NUMBER.fullmatch(text)
    if m is not None and not (set(m["units"].lower().split()) & _SCALE_WORDS):
        value = parse_number(m["number"])
        if value is not None:
            return str(value)  # Fraction prints as `12` or as the reduced `3/4`
    text = text.rstrip(".").strip().lower()
    return text or None


def answers_match(a, b) -> bool:
    """Whether two answers are the same after canonicalisation (False if either is empty)."""
    ca, cb = canonical_answer(a), canonical_answer(b)
    return ca is not None and ca == cb
