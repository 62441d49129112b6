"""Traces that people wrote, turned into trace records: GSM8K, any JSONL, chat JSONL.

Every importer reads a file line by line and returns an `Imported`: the traces, and one
error per line it could not use (`file:line: what is wrong`), so nothing is lost silently.
Each trace carries `source` (`gsm8k`, `jsonl`, `chat` unless told otherwise) so a recipe can
weigh sources against each other, and `gold`, the answer the data set gives, which the
filter compares with the trace's own answer.

GSM8K: each line of a solution is a step and `#### n` is the answer. Its calculator
annotations (`48/2 = <<48/2=24>>24`) are checked, then removed from the steps: they repeat
the text around them, a student trained on them would write them to learners, and the text
left (`48/2 = 24`) is what the verifier, the filter and checked arithmetic read. A false
annotation is recorded in the trace as `annotation_errors`. The difficulty is the number of
steps (2 steps is level 1, 5 or more is level 4).

Chat JSONL: `{"messages": [{"role": "system" | "user" | "assistant", "content": ...}]}`. The
system prompt is dropped (prompt erasure: the student learns to answer the bare question),
the user message is the question, and the assistant message is parsed into steps and an
`Answer:` line (or GSM8K's `####`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tracetutor.trace import LEVELS, Trace, TraceFileError, iter_records, parse_completion
from tracetutor.verify import find_claims

KINDS = ("gsm8k", "jsonl", "chat")
MAPPED = ("id", "question", "steps", "answer", "solution", "family", "difficulty")
"""The fields `--map` can fill: `solution` is a whole written solution, split into steps and
an answer as the chat importer does."""

_ANNOTATION = re.compile(r"<<[^<>]*>>")


@dataclass
class Imported:
    """What an importer made of a file."""

    traces: list[Trace] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # `file:line: reason`, one per line not imported
    system_prompts: int = 0  # chat lines whose system prompt was dropped


def _difficulty(n_steps: int) -> int:
    return min(max(n_steps - 1, LEVELS[0]), LEVELS[-1])


def _solution(text: str) -> tuple[list[str], str | None]:
    """Steps and answer of a written solution: GSM8K's `#### n`, else an `Answer:` line."""
    body, mark, answer = text.rpartition("####")
    if mark:
        return [line.strip() for line in body.splitlines() if line.strip()], answer.strip() or None
    return parse_completion(text)


def _check(trace: Trace, path, line: int, out: Imported) -> None:
    if not trace.question.strip():
        raise TraceFileError("the question is empty", path=path, line=line)
    if not trace.steps:
        raise TraceFileError("no solution steps", path=path, line=line)
    if not trace.answer.strip():
        raise TraceFileError("no final answer", path=path, line=line)
    out.traces.append(trace)


def _read(path, make, out: Imported) -> Imported:
    """Run `make(record, line)` on every line; a bad line becomes one error and reading goes on."""
    for line, record in iter_records(path):
        try:
            if isinstance(record, TraceFileError):
                raise record
            if not isinstance(record, dict):
                raise TraceFileError("expected a JSON object", path=path, line=line)
            _check(make(record, line), path, line, out)
        except TraceFileError as e:
            out.errors.append(str(e))
    return out


def _text(record: dict, name: str, path, line: int) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        what = "missing" if value is None else f"expected a string, got {type(value).__name__}"
        raise TraceFileError(what, path=path, line=line, field=name)
    return value


def import_gsm8k(path, source: str = "gsm8k") -> Imported:
    """GSM8K's `{"question", "answer"}` lines; ids are `gsm8k/<file stem>/<line>`."""
    stem = Path(path).stem

    def make(record, line):
        question, solution = _text(record, "question", path, line), _text(record, "answer", path, line)
        body, mark, answer = solution.rpartition("####")
        if not mark:
            raise TraceFileError("no '#### answer' line in the solution", path=path, line=line, field="answer")
        written = [s.strip() for s in body.splitlines() if s.strip()]
        errors = [c.reason for s in written for c in find_claims(s) if _ANNOTATION.search(s) and not c.ok]
        steps = [" ".join(_ANNOTATION.sub("", s).split()) for s in written]
        extra = {"gold": answer.strip()}
        if errors:
            extra["annotation_errors"] = errors
        return Trace(id=f"{source}/{stem}/{line:06d}", question=question.strip(), steps=steps, answer=answer.strip(),
                     source=source, family=source, difficulty=_difficulty(len(steps)), extra=extra)

    return _read(path, make, Imported())


def parse_mapping(text: str) -> dict[str, str]:
    """`question=problem,answer=solution` as {trace field: field of the file}."""
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        ours, eq, theirs = part.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not eq or not theirs:
            raise ValueError(f"--map: {part!r} is not FIELD=NAME (e.g. question=problem)")
        if ours not in MAPPED:
            raise ValueError(f"--map: unknown field {ours!r}; the fields are {', '.join(MAPPED)}")
        mapping[ours] = theirs
    if "question" not in mapping:
        mapping["question"] = "question"
    if not {"answer", "solution"} & mapping.keys():
        mapping["answer"] = "answer"
    return mapping


def import_jsonl(path, mapping: dict[str, str], source: str = "jsonl") -> Imported:
    """Any JSONL whose fields `mapping` names. `steps` may be a list or a text of one step a
    line; `solution` (a whole written solution) gives the steps and answer both."""
    stem = Path(path).stem

    def make(record, line):
        def get(name):
            return record.get(mapping[name]) if name in mapping else None

        steps, answer = get("steps"), get("answer")
        if "solution" in mapping:
            steps, found = _solution(_text(record, mapping["solution"], path, line))
            answer = answer if answer is not None else found
        if isinstance(steps, str):
            steps = [s.strip() for s in steps.splitlines() if s.strip()]
        d = {"id": get("id") if get("id") is not None else f"{source}/{stem}/{line:06d}",
             "question": get("question"), "steps": steps if steps is not None else [], "answer": answer,
             "source": source, "family": get("family"), "difficulty": get("difficulty")}
        if d["question"] is None:
            raise TraceFileError("missing", path=path, line=line, field=mapping["question"])
        if d["answer"] is None:
            raise TraceFileError("no final answer", path=path, line=line,
                                 field=mapping.get("answer", mapping.get("solution")))
        d["id"] = str(d["id"])
        trace = Trace.from_dict(d, path=path, line=line)
        trace.extra["gold"] = trace.answer
        return trace

    return _read(path, make, Imported())


def import_chat(path, source: str = "chat") -> Imported:
    """Chat JSONL: one question and one answer a line; the system prompt is dropped.

    A top-level `answer` (or `gold`) field, when present, is kept as the gold answer; without
    it the assistant's own answer is the gold one.
    """
    stem = Path(path).stem
    out = Imported()

    def make(record, line):
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            raise TraceFileError("expected a non-empty list of messages", path=path, line=line, field="messages")
        turns = {"system": [], "user": [], "assistant": []}
        for k, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in turns or not isinstance(m.get("content"), str):
                raise TraceFileError(f"message {k + 1} is not a system, user or assistant message with text content",
                                     path=path, line=line, field="messages")
            turns[m["role"]].append(m["content"])
        if len(turns["user"]) != 1 or len(turns["assistant"]) != 1:
            raise TraceFileError(f"expected one user and one assistant message, got {len(turns['user'])} and "
                                 f"{len(turns['assistant'])}", path=path, line=line, field="messages")
        steps, answer = _solution(turns["assistant"][0])
        if answer is None:
            raise TraceFileError("the assistant message has no 'Answer:' line", path=path, line=line, field="messages")
        out.system_prompts += bool(turns["system"])
        gold = record.get("answer", record.get("gold", answer))
        return Trace(id=str(record.get("id", f"{source}/{stem}/{line:06d}")), question=turns["user"][0].strip(),
                     steps=steps, answer=answer, source=source, extra={"gold": str(gold)})

    return _read(path, make, out)


def import_file(kind: str, path, *, mapping: dict[str, str] | None = None, source: str | None = None) -> Imported:
    """The importer for `kind` (one of KINDS) run on `path`."""
    if kind == "gsm8k":
        return import_gsm8k(path, source or "gsm8k")
    if kind == "jsonl":
        return import_jsonl(path, mapping or parse_mapping(""), source or "jsonl")
    if kind == "chat":
        return import_chat(path, source or "chat")
    raise ValueError(f"unknown import kind {kind!r}; expected one of: {', '.join(KINDS)}")
