"""The engine: one way to ask a model a question, whatever backend runs it.

The engine knows nothing about tensors: a backend turns a question into prompt ids and
streams generated ids; the engine turns those into text, Step and Answer events, and stats.
"""

from __future__ import annotations

import codecs
import resource
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Protocol

from tracetutor.trace import parse_completion
from tracetutor.verify import correct_step

from .variants import TORCH, check_variant


@dataclass
class Settings:
    """Generation settings shared by every backend."""

    max_new_tokens: int = 192
    temperature: float = 0.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    """Extra strings that end generation (the end-of-turn token always does)."""
    logprobs: bool = False
    """Ask the backend for each generated token's log-probability (per-step confidence)."""
    check: bool = False
    """Checked arithmetic: a step whose claim is false (`8 + 11 = 29`) gets its exact result
    (`19`) and the model continues from the corrected step, like GSM8K's calculator. The
    model chooses every number and operation; only results it got wrong are replaced."""


class Backend(Protocol):
    name: str

    def encode_prompt(self, question: str | list[dict]) -> list[int]:
        """The chat template's prompt for a question or a conversation (list of messages)."""
        ...

    def decode(self, ids: list[int]) -> str: ...

    def stream_ids(self, prompt: list[int], settings: Settings) -> Iterator[int]:
        """Generated ids, one at a time, ending before the end-of-turn token. With
        `settings.logprobs`, `last_logprob` holds each yielded id's log-probability under the
        model (before temperature) until the next one is yielded."""
        ...

    def generate_batch(self, prompts: list[list[int]], settings: Settings) -> list[list[int]]:
        """Greedy completions of many prompts at once (for benchmarks)."""
        ...


@dataclass
class Token:
    text: str


@dataclass
class Step:
    index: int
    text: str


@dataclass
class Answer:
    text: str


@dataclass
class Done:
    text: str
    steps: list[str]
    answer: str | None
    stats: dict = field(default_factory=dict)
    step_confidence: list[float | None] | None = None
    """Mean log-probability of each step's tokens (with Settings.logprobs)."""


@dataclass
class Solution:
    """Self-consistency over sampled traces: the majority answer and how sure the vote is."""

    answer: str | None
    votes: dict[str, int]
    """Canonical answer → number of traces that reached it (no answer counts as None's)."""
    share: float
    """Votes of the winning answer / samples."""
    trace: Done
    """The most confident trace that reached the winning answer."""
    traces: list[Done]


Event = Token | Step | Answer | Done


class Engine:
    def __init__(self, backend: Backend, variant: str = TORCH):
        self.backend = backend
        self.variant = variant

    def stream(self, question: str | list[dict], settings: Settings | None = None) -> Iterator[Event]:
        """Events of one answer to a question, or to a conversation's last user turn.

        With `settings.check`, each step is checked as its line ends; a false claim's result is
        replaced by its exact value and the model goes on from the corrected text. The text of
        a line from its first `=` on is held back until the line is checked, so a wrong result
        is never shown.
        """
        settings = settings or Settings()
        backend = self.backend
        prompt = backend.encode_prompt(question)
        ids: list[int] = []  # the completion's ids as the model continues from them
        text, shown, line_start, n_steps, n_generated = "", 0, 0, 0, 0
        corrected: list[int] = []  # indices (from 1) of the steps whose arithmetic was corrected
        line_logprobs: list[list[float]] = [[]]  # per line of the completion
        # a backend that knows each token's bytes is decoded token by token; any other re-decodes
        # the sequence (a token's text can depend on its neighbours)
        token_bytes = getattr(backend, "token_bytes", None)
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        start = time.perf_counter()
        ttft = None
        source = backend.stream_ids(prompt, settings)
        while source is not None:
            restart = None
            for tok in source:
                if ttft is None:
                    ttft = time.perf_counter() - start
                ids.append(tok)
                n_generated += 1
                if settings.logprobs and getattr(backend, "last_logprob", None) is not None:
                    line_logprobs[-1].append(backend.last_logprob)
                if token_bytes is not None:
                    new = text + utf8.decode(token_bytes(tok))
                else:
                    new = backend.decode(ids)
                    if new.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                        continue
                text = new
                end = text.find("\n", line_start)
                while end >= 0:  # each finished line is a step or the answer
                    line = text[line_start:end]
                    fixed = _corrected(line) if settings.check else None
                    if fixed is not None:
                        text, line, end = text[:line_start] + fixed + "\n", fixed, line_start + len(fixed)
                        corrected.append(n_steps + 1)
                        restart = text
                    if end + 1 > shown:
                        yield Token(text[shown:end + 1])
                        shown = end + 1
                    event = _line_event(line, n_steps)
                    line_start = end + 1
                    line_logprobs.append([])
                    if isinstance(event, Step):
                        n_steps += 1
                    if event:
                        yield event
                    if restart is not None:
                        break
                    end = text.find("\n", line_start)
                if restart is not None:
                    break
                hold = len(text)
                if settings.check and "=" in text[line_start:]:
                    hold = line_start + text[line_start:].index("=") + 1
                if hold > shown:
                    yield Token(text[shown:hold])
                    shown = hold
                if settings.stop and any(s in text for s in settings.stop):
                    text = text[:min(text.index(s) for s in settings.stop if s in text)]
                    utf8.reset()  # what it still holds comes after the stop
                    break
            else:  # the model ended its turn: check the last line too
                line = text[line_start:]
                fixed = _corrected(line) if settings.check else None
                if fixed is not None:
                    text = text[:line_start] + fixed
                    corrected.append(n_steps + 1)
                    restart = text
            if hasattr(source, "close"):
                source.close()
            source = None
            if restart is not None:  # the budget counts the completion's tokens, not those replaced
                ids = backend.tokenize(restart)
                n_generated = len(ids)
                utf8.reset()
                budget = replace(settings, max_new_tokens=settings.max_new_tokens - n_generated)
                source = backend.stream_ids(prompt + ids, budget) if budget.max_new_tokens > 0 else None
        if token_bytes is not None:  # bytes of a character the model never finished
            text += utf8.decode(b"", final=True)
        elapsed = time.perf_counter() - start
        if len(text) > shown:
            yield Token(text[shown:])
        event = _line_event(text[line_start:], n_steps)
        if event:
            yield event
        steps, answer = parse_completion(text)
        decode_s = elapsed - (ttft or 0.0)
        stats = {
            "n_prompt_tokens": len(prompt),
            "n_tokens": n_generated,
            "ttft_s": round(ttft or elapsed, 4),
            "tokens_per_s": round((n_generated - 1) / decode_s, 1) if n_generated > 1 and decode_s > 0 else None,
            "total_s": round(elapsed, 4),
            "peak_rss_bytes": _peak_rss(),
            "backend": backend.name,
            "variant": self.variant,
        }
        if settings.check:
            stats["corrected_steps"] = corrected
        confidence = None
        if settings.logprobs:
            lines = [(ln, lp) for ln, lp in zip(text.split("\n"), line_logprobs) if ln.strip()]
            confidence = [round(sum(lp) / len(lp), 4) if lp else None
                          for ln, lp in lines if not ln.lstrip().startswith("Answer:")][:len(steps)]
        yield Done(text=text, steps=steps, answer=answer, stats=stats, step_confidence=confidence)

    def ask(self, question: str, settings: Settings | None = None) -> Done:
        """The whole answer at once (the stream's last event)."""
        for event in self.stream(question, settings):
            pass
        return event

    def solve(self, question: str, samples: int = 5, settings: Settings | None = None) -> Solution:
        """Self-consistency: `samples` traces (greedy when 1, else sampled at the settings'
        temperature, 0.7 if unset), majority vote over canonical answers, per-step confidence."""
        from dataclasses import replace

        from tracetutor.trace import canonical_answer

        settings = replace(settings or Settings(), logprobs=True)
        if samples > 1 and settings.temperature <= 0:
            settings = replace(settings, temperature=0.7)
        base_seed = settings.seed if settings.seed is not None else 0
        traces = [self.ask(question, replace(settings, seed=base_seed + i) if samples > 1 else settings)
                  for i in range(max(1, samples))]
        votes: dict = {}
        for t in traces:
            key = canonical_answer(t.answer) if t.answer is not None else None
            votes[key] = votes.get(key, 0) + 1
        ranked = sorted(votes.items(), key=lambda kv: (kv[0] is None, -kv[1]))
        winner = ranked[0][0]
        chosen = [t for t in traces if (canonical_answer(t.answer) if t.answer is not None else None) == winner]
        best = max(chosen, key=lambda t: _mean([c for c in (t.step_confidence or []) if c is not None]))
        return Solution(answer=best.answer if winner is not None else None, votes={str(k): v for k, v in ranked},
                        share=ranked[0][1] / len(traces), trace=best, traces=traces)

    def answer_batch(self, questions: list[str], settings: Settings | None = None) -> list[Done]:
        """Greedy answers to many questions, batched where the backend can; with
        `settings.check`, then checked as `check_batch` does."""
        settings = settings or Settings()
        backend = self.backend
        prompts = [backend.encode_prompt(q) for q in questions]
        answers = []
        for ids in backend.generate_batch(prompts, settings):
            steps, answer = parse_completion(text := backend.decode(ids))
            answers.append(Done(text=text, steps=steps, answer=answer, stats={"n_tokens": len(ids)}))
        return self.check_batch(questions, answers, settings) if settings.check else answers

    def check_batch(self, questions: list[str], answers: list[Done], settings: Settings | None = None) -> list[Done]:
        """Checked arithmetic over greedy answers made without it: each completion with a false
        step goes on from its corrected text, in batched rounds, as `stream` does one at a time."""
        settings = settings or Settings()
        backend = self.backend
        prompts = [backend.encode_prompt(q) for q in questions]
        texts = [a.text for a in answers]
        used = [a.stats["n_tokens"] for a in answers]
        prefix: list[list[int]] = [[] for _ in prompts]  # corrected completion ids so far
        corrected: list[list[int]] = [[] for _ in prompts]
        done: list[Done | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        while todo:
            again = []
            for i in todo:
                text = texts[i]
                fix = _first_correction(text)
                if fix is not None:
                    text, step = fix
                    corrected[i].append(step)
                    prefix[i] = backend.tokenize(text)
                    used[i] = len(prefix[i])  # the budget counts the completion's tokens, not those replaced
                    if used[i] < settings.max_new_tokens:
                        again.append(i)
                        continue
                    text = text.removesuffix("\n")  # out of tokens: end at the corrected step
                steps, answer = parse_completion(text)
                done[i] = Done(text=text, steps=steps, answer=answer,
                               stats={"n_tokens": used[i], "corrected_steps": corrected[i]})
            if again:
                budget = settings.max_new_tokens - min(used[i] for i in again)
                outs = backend.generate_batch([prompts[i] + prefix[i] for i in again],
                                              replace(settings, max_new_tokens=budget))
                for i, out in zip(again, outs):
                    out = out[:settings.max_new_tokens - used[i]]
                    used[i] += len(out)
                    texts[i] = backend.decode(prefix[i] + out)
            todo = again
        return done


def _first_correction(text: str) -> tuple[str, int] | None:
    """(the completion up to its first false step, corrected, and a line end; that step's
    index from 1), or None when every step's arithmetic holds."""
    start, n_steps = 0, 0
    for line in text.split("\n"):
        if _is_step(line):
            n_steps += 1
            fixed = correct_step(line)
            if fixed is not None:
                return text[:start] + fixed + "\n", n_steps
        start += len(line) + 1
    return None


def _corrected(line: str) -> str | None:
    """The line with its false results corrected, if it is a step with any (see correct_step)."""
    return correct_step(line) if _is_step(line) else None


def _is_step(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("Answer:")


def _line_event(line: str, n_steps: int):
    steps, answer = parse_completion(line)
    if answer is not None and line.lstrip().startswith("Answer:"):
        return Answer(answer)
    if line.strip() and steps:
        return Step(n_steps + 1, steps[0])
    return None


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("-inf")


def _peak_rss() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


_CACHE: dict[tuple, Engine] = {}


def load(model: str | Path, variant: str = TORCH, *, threads: int | None = None) -> Engine:
    """The engine for `model` (recipe name, recipe file or folder) in `variant`, loaded once
    per process."""
    from tracetutor.recipe import resolve_model

    model_dir, _ = resolve_model(model)
    path = check_variant(model_dir, variant)
    key = (str(path.resolve()), variant, threads)
    if key not in _CACHE:
        if variant == TORCH:
            from .torch_backend import TorchBackend

            backend = TorchBackend(path, threads=threads)
        elif variant.startswith("onnx-"):
            from .onnx_backend import OnnxBackend

            backend = OnnxBackend(path, threads=threads)
        else:
            from .llama_backend import LlamaCppBackend

            backend = LlamaCppBackend(path, threads=threads)
        _CACHE[key] = Engine(backend, variant)
    return _CACHE[key]
