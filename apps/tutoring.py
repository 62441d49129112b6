"""What the web and terminal tutors share, with no UI in it: the three ways to learn from a
model (Solve, Hint, Check my work) and self-consistency, the catalog of models a learner can
pick, and conversations kept as plain data (JSON on disk, Markdown to export).

    tutor = Tutor(load("models/tiny-tutor", "gguf-q8_0"), model="tiny-tutor")
    tutor.ask("Mia has 7 apples and buys 5 more. How many now?")
    for event in tutor.solve():        # Token, Step, Answer, Done, as the engine streams them
        ...
    tutor.hint()                       # one more step per call, the answer last
    tutor.check_work("12", "7 + 5 = 12")

Checked arithmetic is on by default: a step whose result the model got wrong is shown with the
exact result and marked with what the model wrote. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Iterator

from tracetutor.runtime import Answer, Done, Settings, Solution, Step, Token
from tracetutor.trace import answers_match, parse_completion
from tracetutor.verify import correct_step, find_claims

# ---------------------------------------------------------------------------------------
# the tutor


@dataclass
class Worked:
    """The model's solution to one question: its steps (each Step keeps `corrected_from`,
    the line as the model wrote it when checked arithmetic replaced its result)."""

    steps: list[Step]
    answer: str | None
    text: str
    stats: dict


@dataclass
class Hint:
    number: int
    """Which hint of this question, from 1."""
    step: Step | None
    """The step this hint reveals; None when it reveals the answer."""
    answer: str | None = None
    last: bool = False
    """This hint is the answer: nothing is left to reveal."""


@dataclass
class WorkCheck:
    """The verdict on a learner's answer and steps."""

    answer: str
    expected: str | None
    """The answer of the model's checked solution (None: the model reached no answer)."""
    right: bool | None
    """None when there is no answer to compare with."""
    wrong_step: int | None = None
    """The first of the learner's steps (from 1) whose arithmetic is false."""
    step_note: str | None = None
    """What is wrong with that step and what it should be: `Step 2: 46 - 44 = 12 is wrong: 46 - 44 = 2`."""

    @property
    def message(self) -> str:
        if self.right is None:
            verdict = "The tutor reached no answer to compare yours with."
        elif self.right:
            verdict = f"Right: {self.answer} is the answer."
        else:
            verdict = f"Not quite: {self.answer} is not the answer."
        return verdict if self.step_note is None else f"{verdict}\n{self.step_note}"


class Tutor:
    """One learner with one model. A question's solution is generated once (greedy, checked
    arithmetic by default) and then streamed, revealed hint by hint or used to check the
    learner's work; each exchange is recorded in `conversation`."""

    def __init__(self, engine, check: bool = True, settings: Settings | None = None, model: str = "",
                 conversation: Conversation | None = None):
        self.engine = engine
        self.settings = replace(settings or Settings(), check=check)
        self.conversation = conversation or Conversation.start(model, engine.variant)
        self.question: str | None = None
        self.worked: Worked | None = None
        self.revealed = 0  # hints given for this question: steps, then the answer

    def ask(self, question: str) -> None:
        """A new question: the previous one's solution and hints are forgotten."""
        if not question or not question.strip():
            raise ValueError("the question is empty")
        self.question, self.worked, self.revealed = question.strip(), None, 0
        self.conversation.add("learner", "question", self.question)

    def solve(self) -> Iterator[Token | Step | Answer | Done]:
        """The whole solution as the engine streams it; a question already solved (for hints or
        a check) is replayed, not generated again. Every step counts as revealed after it.
        The solution is kept when Done is yielded, so a caller may stop reading there."""
        for event in self._generate() if self.worked is None else self._replay():
            if isinstance(event, Done):
                w = self.worked
                self.revealed = len(w.steps) + 1
                self.conversation.add("tutor", "solution", solution_text(w),
                                      {"steps": [asdict(s) for s in w.steps], "answer": w.answer, "stats": w.stats})
            yield event

    def solution(self) -> Worked:
        """The model's solution to the question, generated on first use (nothing is shown)."""
        if self.worked is None:
            for _ in self._generate():
                pass
        return self.worked

    def _generate(self) -> Iterator[Token | Step | Answer | Done]:
        steps = []
        for event in self.engine.stream(self._question(), self.settings):
            if isinstance(event, Step):
                steps.append(event)
            if isinstance(event, Done):
                self.worked = Worked(steps=steps, answer=event.answer, text=event.text, stats=event.stats)
            yield event

    def _replay(self) -> Iterator[Token | Step | Answer | Done]:
        w = self.worked
        yield Token(w.text)
        yield from w.steps
        if w.answer is not None:
            yield Answer(w.answer)
        yield Done(text=w.text, steps=[s.text for s in w.steps], answer=w.answer, stats=w.stats)

    def hint(self) -> Hint | None:
        """The next step, or the answer after the last step; None once the answer is out."""
        worked = self.solution()
        if self.revealed > len(worked.steps):
            return None
        self.revealed += 1
        if self.revealed <= len(worked.steps):
            hint = Hint(self.revealed, worked.steps[self.revealed - 1])
        else:
            hint = Hint(self.revealed, None, answer=worked.answer, last=True)
        self.conversation.add("tutor", "hint", hint_text(hint),
                              {"number": hint.number, "step": asdict(hint.step) if hint.step else None,
                               "answer": hint.answer})
        return hint

    def check_work(self, answer: str, steps: str | list[str] = "") -> WorkCheck:
        """Judge the learner's answer against the model's checked solution, and name the first
        of their steps (one per line) whose arithmetic is false, with what it should be."""
        if not answer or not answer.strip():
            raise ValueError("your answer is empty")
        answer = answer.strip()
        lines = learner_steps(steps)
        wrong_step, note = first_wrong_step(lines)
        self.conversation.add("learner", "work", work_text(answer, lines), {"answer": answer, "steps": lines})
        expected = self.solution().answer
        right = None if expected is None else answers_match(answer, expected)
        result = WorkCheck(answer, expected, right, wrong_step, note)
        self.conversation.add("tutor", "check", result.message, asdict(result))
        return result

    def vote(self, samples: int = 5, temperature: float = 0.7) -> Solution:
        """Self-consistency: `samples` sampled solutions and the share that agree on the answer."""
        settings = replace(self.settings, temperature=temperature)
        sol = self.engine.solve(self._question(), samples=samples, settings=settings)
        self.conversation.add("tutor", "vote", vote_text(sol),
                              {"answer": sol.answer, "votes": sol.votes, "share": sol.share,
                               "samples": samples, "temperature": temperature})
        return sol

    def _question(self) -> str:
        if self.question is None:
            raise ValueError("ask a question first")
        return self.question


def first_wrong_step(steps: list[str]) -> tuple[int | None, str | None]:
    """(number, note) of the first step with a false claim, e.g.
    (2, "Step 2: 46 - 44 = 12 is wrong: 46 - 44 = 2"); (None, None) when all hold."""
    for n, step in enumerate(steps, 1):
        for claim in find_claims(step):
            if not claim.ok:
                return n, f"Step {n}: {claim.text} is wrong: {_should_be(claim)}"
    return None, None


def _should_be(claim) -> str:
    fixed = correct_step(claim.text)
    if fixed is not None:
        return fixed
    # no single result to replace (`3 + 4 = 8 = 7`): the verifier's reason ends "(3 + 4 = 7)"
    head = f"{claim.text} is false ("
    return claim.reason[len(head):-1] if claim.reason.startswith(head) else claim.reason


def learner_steps(steps: str | list[str]) -> list[str]:
    """A learner's steps, one per line, without blank lines, `Step n:` prefixes or an
    `Answer:` line."""
    lines = steps.splitlines() if isinstance(steps, str) else list(steps)
    return [found[0] for line in lines if (found := parse_completion(line)[0])]


# ---------------------------------------------------------------------------------------
# text of each exchange (the conversation's record, the Markdown export and plain UIs)


def model_wrote(step: Step) -> str | None:
    """What the model wrote in a corrected step, without its `Step n:` prefix."""
    if step.corrected_from is None:
        return None
    written, _ = parse_completion(step.corrected_from)
    return written[0] if written else step.corrected_from


def step_text(step: Step) -> str:
    wrote = model_wrote(step)
    note = f"   (corrected: the model wrote {wrote})" if wrote is not None else ""
    return f"Step {step.index}: {step.text}{note}"


def solution_text(w: Worked) -> str:
    lines = [step_text(s) for s in w.steps]
    lines.append(f"Answer: {w.answer}" if w.answer is not None else "(the model wrote no answer)")
    return "\n".join(lines)


def hint_text(h: Hint) -> str:
    if h.step is not None:
        return f"Hint {h.number}: {step_text(h.step)}"
    return f"Hint {h.number}: Answer: {h.answer}" if h.answer is not None else \
        f"Hint {h.number}: the model wrote no answer"


def work_text(answer: str, steps: list[str]) -> str:
    return "\n".join([f"Step {i}: {s}" for i, s in enumerate(steps, 1)] + [f"My answer: {answer}"])


def vote_text(sol: Solution) -> str:
    n = len(sol.traces)
    agree = round(sol.share * n)
    votes = ", ".join(f"{k}: {v}" for k, v in sol.votes.items())
    return f"Answer: {sol.answer} ({agree} of {n} samples agree, {sol.share:.0%}); votes {votes}"


# ---------------------------------------------------------------------------------------
# conversations


@dataclass
class Entry:
    role: str
    """learner or tutor."""
    kind: str
    """question, solution, hint, work (the learner's answer and steps), check or vote."""
    text: str
    data: dict = field(default_factory=dict)


@dataclass
class Conversation:
    id: str
    started: str
    """ISO time, seconds."""
    model: str
    variant: str
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def start(cls, model: str, variant: str) -> Conversation:
        now = datetime.now().replace(microsecond=0)
        return cls(f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}", now.isoformat(), model, variant)

    def add(self, role: str, kind: str, text: str, data: dict | None = None) -> None:
        self.entries.append(Entry(role, kind, text, data or {}))

    def title(self, width: int | None = None) -> str:
        """The first question, cut to `width` characters."""
        first = next((e.text for e in self.entries if e.kind == "question"), "(no question yet)")
        return first if width is None or len(first) <= width else first[:width - 1] + "…"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Conversation:
        return cls(d["id"], d["started"], d["model"], d["variant"], [Entry(**e) for e in d["entries"]])

    def to_markdown(self) -> str:
        """Every exchange as Markdown that shows each text as written, learner's and model's alike:
        nothing typed or generated renders as an image, a link, HTML, a heading or a list."""
        title = markdown_text(" ".join(self.title().splitlines()))  # a heading is one line
        out = [f"# {title}", "", f"*{self.started.replace('T', ' ')}, {self.model} ({self.variant})*"]
        for e in self.entries:
            if e.kind == "question":
                out += ["", "## Question", "", markdown_text(e.text)]
            else:
                who = "You" if e.role == "learner" else "Tutor"
                out += ["", f"**{who}, {_KIND_TITLES[e.kind]}:**", "", markdown_text(e.text)]
        return "\n".join(out) + "\n"


_KIND_TITLES = {"solution": "solution", "hint": "hint", "work": "my work", "check": "check",
                "vote": "self-consistency"}

# backslash-escaped anywhere: what starts an image, a link, HTML, an entity, emphasis, code,
# a table, strikethrough, math or a heading
_MARKUP = re.compile(r"([\\`*_\[\]<>!&|~$#])")
# escaped at the start of a line only, where they start a list, a rule or a heading underline
_LINE_START = re.compile(r"^(\d+[.)]|[-+=])")


def markdown_text(text: str) -> str:
    """`text` as Markdown that renders as exactly these characters, line for line."""
    lines = []
    for line in text.splitlines():
        # indentation would start a code block, where escapes show; Markdown drops it anyway
        line = _MARKUP.sub(r"\\\1", line.lstrip())
        lines.append(_LINE_START.sub(lambda m: m[0][:-1] + "\\" + m[0][-1], line))
    return "  \n".join(lines)


def data_dir() -> Path:
    """Where conversations are kept: $TRACETUTOR_DATA, else the platform's user data folder."""
    if os.environ.get("TRACETUTOR_DATA"):
        return Path(os.environ["TRACETUTOR_DATA"])
    import platformdirs

    return Path(platformdirs.user_data_dir("tracetutor"))


class History:
    """Conversations as JSON files, one per conversation, newest first."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else data_dir() / "conversations"

    def save(self, conv: Conversation) -> Path:
        from tracetutor.files import write_json

        path = self.root / f"{conv.id}.json"
        write_json(path, conv.to_dict())
        return path

    def load(self, conv_id: str) -> Conversation:
        path = self.root / f"{conv_id}.json"
        try:
            return Conversation.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a saved conversation ({e})") from None

    def list(self) -> list[Conversation]:
        """Every readable conversation, newest first (a damaged file is skipped)."""
        found = []
        for path in sorted(self.root.glob("*.json"), reverse=True):
            try:
                found.append(self.load(path.stem))
            except (ValueError, OSError):
                continue
        return found

    def export(self, conv: Conversation, path: Path | None = None) -> Path:
        """The conversation as Markdown, by default beside the saved conversations."""
        from tracetutor.files import write_text

        path = Path(path) if path is not None else self.root.parent / "exports" / f"{conv.id}.md"
        write_text(path, conv.to_markdown())
        return path


# ---------------------------------------------------------------------------------------
# the model catalog

# the tutors run without torch: a GGUF or ONNX variant is picked before the torch model
PREFERRED = ("gguf-q8_0", "gguf-lora", "gguf-q4_k_m", "gguf-f16", "onnx-int8", "onnx-fp32", "onnx-int4", "torch-fp32")


@dataclass
class VariantChoice:
    name: str
    size_bytes: int
    accuracy: float | None = None
    """Held-out accuracy from models/<name>/bench.json, plain greedy answers."""
    checked_accuracy: float | None = None
    """The same with checked arithmetic (what the tutor does by default)."""


@dataclass
class ModelChoice:
    name: str
    folder: Path
    variants: list[VariantChoice]
    default: bool = False
    """The shipped default model."""

    def preferred_variant(self) -> str | None:
        names = [v.name for v in self.variants]
        ranked = [v for v in PREFERRED if v in names] + [v for v in names if v not in PREFERRED]
        return ranked[0] if ranked else None


def default_model_folder() -> Path | None:
    """The shipped default's folder (models/release/<name>/), or None where there is none."""
    from tracetutor.release import default_model

    try:
        return default_model()
    except (ValueError, OSError):
        return None


def describe_model(folder: Path, default: bool = False) -> ModelChoice:
    """A model folder's variants on disk with their sizes and held-out accuracy."""
    from tracetutor.runtime.variants import TORCH, variant_path, variants_on_disk

    folder = Path(folder)
    bench = _bench(folder)
    choices = []
    for v in variants_on_disk(folder):
        path = variant_path(folder, v)
        if v == TORCH:
            files = [*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")]
        else:
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        result = bench.get(v) if isinstance(bench.get(v), dict) else {}
        checked = result.get("checked") if isinstance(result.get("checked"), dict) else {}
        choices.append(VariantChoice(v, sum(_size(f) for f in files), _fraction(result.get("accuracy")),
                                     _fraction(checked.get("accuracy"))))
    return ModelChoice(folder.name, folder, choices, default)


def model_catalog(also: list[Path] = ()) -> list[ModelChoice]:
    """The models a learner can pick: the shipped default first, then every trained model in
    models/ and the folders in `also`; only folders with a variant on disk."""
    from tracetutor.recipe import models_dir

    default = default_model_folder()
    folders = ([default] if default is not None else []) + list(also)
    root = models_dir()
    if root.is_dir():
        folders += sorted(p for p in root.iterdir() if p.is_dir())
    seen, catalog = set(), []
    for folder in folders:
        key = folder.resolve()
        if key in seen or not folder.is_dir():
            continue
        seen.add(key)
        choice = describe_model(folder, default=default is not None and key == default.resolve())
        if choice.variants:
            catalog.append(choice)
    return catalog


def _bench(folder: Path) -> dict:
    """bench.json's results by variant; an unreadable file gives none (it is only shown)."""
    try:
        variants = json.loads((folder / "bench.json").read_text()).get("variants")
    except (OSError, ValueError, AttributeError):
        return {}
    return variants if isinstance(variants, dict) else {}


def _fraction(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
