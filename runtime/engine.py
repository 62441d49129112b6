"""The engine: one way to ask a model a question, whatever backend runs it.

The engine knows nothing about tensors: a backend turns a question into prompt ids and
streams generated ids; the engine turns those into text, Step and Answer events, and stats.
Its parts: `_Decoder` (ids to text), `_Completion` (text to lines, events and checked
arithmetic) and `_Clock` (time to first token, tokens/s). `Engine.stream` is a loop over
them, and `Engine.check_batch` uses the same `_Completion` on finished texts.
"""

from __future__ import annotations

import codecs
import resource
import sys
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from tracetutor.trace import canonical_answer, parse_completion
from tracetutor.verify import correct_step

from .types import Answer, Backend, Done, Event, Settings, Solution, Step, Token
from .variants import TORCH


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
        prompt = self.prompt(question)
        limit = min(settings.max_new_tokens, backend.context_length - len(prompt))
        decoder, completion, clock = _Decoder(backend), _Completion(settings.check), _Clock()
        while (budget := limit - len(decoder.ids)) > 0:
            ended = True  # the model ended its turn (or its budget) rather than being cut off
            with closing(backend.stream_ids(prompt + decoder.ids, replace(settings, max_new_tokens=budget))) as ids:
                for token, logprob in ids:
                    clock.tick()
                    completion.logprob(logprob)
                    text = decoder.push(token)
                    if text is None:  # half of a multi-byte character: wait for the rest
                        continue
                    yield from completion.update(text)
                    if completion.restart or completion.stop_at(settings.stop):
                        ended = False
                        break
            if ended:
                yield from completion.update(decoder.flush(), end_of_turn=True)
            if not completion.restart:
                break
            # go on from the corrected text; the budget counts its tokens, not those replaced
            decoder.restart(completion.text, backend.tokenize(completion.text))
            completion.restart = False
        yield from completion.finish()
        steps, answer = parse_completion(completion.text)
        stats = {"n_prompt_tokens": len(prompt), "n_tokens": len(decoder.ids), **clock.stats(len(decoder.ids)),
                 "peak_rss_bytes": _peak_rss(), "backend": backend.name, "variant": self.variant}
        if settings.check:
            stats["corrected_steps"] = completion.corrected
        confidence = completion.step_confidence(len(steps)) if settings.logprobs else None
        yield Done(text=completion.text, steps=steps, answer=answer, stats=stats, step_confidence=confidence)

    def prompt(self, question: str | list[dict]) -> list[int]:
        """The prompt's ids; ValueError if the question is empty or leaves no room to answer."""
        if not question or (isinstance(question, str) and not question.strip()):
            raise ValueError("the question is empty")
        prompt = self.backend.encode_prompt(question)
        n_ctx = self.backend.context_length
        if len(prompt) >= n_ctx:
            raise ValueError(f"the question is {len(prompt)} tokens with the chat template, but this model reads at "
                             f"most {n_ctx} tokens, question and answer together; shorten the question")
        return prompt

    def ask(self, question: str | list[dict], settings: Settings | None = None) -> Done:
        """The whole answer at once (the stream's last event)."""
        for event in self.stream(question, settings):
            pass
        return event

    def solve(self, question: str, samples: int = 5, settings: Settings | None = None) -> Solution:
        """Self-consistency: `samples` traces (greedy when 1, else sampled at the settings'
        temperature, 0.7 if unset), majority vote over canonical answers, per-step confidence."""
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be an integer of at least 1, got {samples!r}")
        settings = replace(settings or Settings(), logprobs=True)
        if samples > 1 and settings.temperature <= 0:
            settings = replace(settings, temperature=0.7)
        base_seed = settings.seed if settings.seed is not None else 0
        traces = [self.ask(question, replace(settings, seed=base_seed + i) if samples > 1 else settings)
                  for i in range(samples)]
        votes: dict = {}
        for t in traces:
            votes[_vote(t)] = votes.get(_vote(t), 0) + 1
        ranked = sorted(votes.items(), key=lambda kv: (kv[0] is None, -kv[1]))
        winner = ranked[0][0]
        best = max((t for t in traces if _vote(t) == winner),
                   key=lambda t: _mean([c for c in (t.step_confidence or []) if c is not None]))
        return Solution(answer=best.answer if winner is not None else None, votes={str(k): v for k, v in ranked},
                        share=ranked[0][1] / len(traces), trace=best, traces=traces)

    def answer_batch(self, questions: list[str], settings: Settings | None = None) -> list[Done]:
        """Greedy answers to many questions, batched where the backend can; with
        `settings.check`, then checked as `check_batch` does."""
        settings = settings or Settings()
        backend = self.backend
        prompts = [self.prompt(q) for q in questions]
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
        prompts = [self.prompt(q) for q in questions]
        texts = [a.text for a in answers]
        used = [a.stats["n_tokens"] for a in answers]
        prefix: list[list[int]] = [[] for _ in prompts]  # corrected completion ids so far
        corrected: list[list[int]] = [[] for _ in prompts]
        done: list[Done | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        while todo:
            again = []
            for i in todo:
                checked = _Completion(check=True)
                text = texts[i]
                for _ in checked.update(text, end_of_turn=True):
                    pass
                if checked.restart:
                    text = checked.text
                    corrected[i] += checked.corrected
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


# ---------------------------------------------------------------------------------------
# the engine's parts


class _Decoder:
    """A completion's ids and their text, one token at a time. A backend that knows each
    token's bytes is decoded incrementally (what was shown is never rewritten); any other
    re-decodes the whole sequence."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.ids: list[int] = []
        self.text = ""
        self.utf8 = codecs.getincrementaldecoder("utf-8")("replace")

    def push(self, token: int) -> str | None:
        """The whole text after `token`, or None while it ends inside a character."""
        self.ids.append(token)
        piece = self.backend.token_bytes(token)
        if piece is not None:
            self.text += self.utf8.decode(piece)
            return self.text
        text = self.backend.decode(self.ids)
        if text.endswith("\ufffd"):
            return None
        self.text = text
        return text

    def flush(self) -> str:
        """The text, with the bytes of a character the model never finished."""
        self.text += self.utf8.decode(b"", final=True)
        return self.text

    def restart(self, text: str, ids: list[int]) -> None:
        self.text, self.ids = text, ids
        self.utf8.reset()


class _Completion:
    """A completion's text as it grows: what may be shown, the Step and Answer of each
    finished line, and (with `check`) each step's arithmetic corrected.

    A corrected line ends the text there and sets `restart`: the model must go on from the
    corrected text. While checking, a line is shown only up to its first `=` until it ends.
    """

    def __init__(self, check: bool):
        self.check = check
        self.text = ""
        self.shown = 0  # characters of text already yielded as Tokens
        self.line_start = 0
        self.n_steps = 0
        self.corrected: list[int] = []  # step numbers (from 1) whose result was replaced
        self.wrote: dict[int, str] = {}  # step number -> the line as the model wrote it
        self.restart = False
        self.line_logprobs: list[list[float]] = [[]]

    def logprob(self, value: float | None) -> None:
        if value is not None:
            self.line_logprobs[-1].append(value)

    def update(self, text: str, end_of_turn: bool = False) -> Iterator[Event]:
        """Events for the text so far; at the end of the turn the last line is checked too."""
        self.text = text
        while (end := self.text.find("\n", self.line_start)) >= 0:
            yield from self._line_end(end)
            if self.restart:
                return
        if end_of_turn:
            line = self.text[self.line_start:]
            fixed = self._checked(line)
            if fixed is not None:  # shown after the model goes on
                self.text = self.text[:self.line_start] + fixed
                self._corrected(line)
                return
        hold = len(self.text)
        if self.check and "=" in self.text[self.line_start:]:
            hold = self.text.index("=", self.line_start) + 1
        yield from self._show(hold)

    def _line_end(self, end: int) -> Iterator[Event]:
        line = self.text[self.line_start:end]
        fixed = self._checked(line)
        if fixed is not None:
            self.text = self.text[:self.line_start] + fixed + "\n"
            end = self.line_start + len(fixed)
            self._corrected(line)
        yield from self._show(end + 1)
        yield from self._event(fixed if fixed is not None else line)
        self.line_start = end + 1
        self.line_logprobs.append([])

    def _checked(self, line: str) -> str | None:
        return correct_step(line) if self.check and _is_step(line) else None

    def _corrected(self, line: str) -> None:
        self.corrected.append(self.n_steps + 1)
        self.wrote[self.n_steps + 1] = line
        self.restart = True

    def _show(self, upto: int) -> Iterator[Token]:
        if upto > self.shown:
            yield Token(self.text[self.shown:upto])
            self.shown = upto

    def _event(self, line: str) -> Iterator[Event]:
        steps, answer = parse_completion(line)
        if answer is not None and line.lstrip().startswith("Answer:"):
            yield Answer(answer)
        elif line.strip() and steps:
            self.n_steps += 1
            yield Step(self.n_steps, steps[0], corrected_from=self.wrote.get(self.n_steps))

    def stop_at(self, stops: tuple[str, ...]) -> bool:
        """Cut the text at the first stop string in it, if any."""
        found = [self.text.index(s) for s in stops if s in self.text]
        if found:
            self.text = self.text[:min(found)]
        return bool(found)

    def finish(self) -> Iterator[Event]:
        """The rest of the text and the last line's event."""
        yield from self._show(len(self.text))
        yield from self._event(self.text[self.line_start:])

    def step_confidence(self, n_steps: int) -> list[float | None]:
        """Mean log-probability of each step line's tokens."""
        lines = [(ln, lp) for ln, lp in zip(self.text.split("\n"), self.line_logprobs) if ln.strip()]
        return [round(sum(lp) / len(lp), 4) if lp else None
                for ln, lp in lines if not ln.lstrip().startswith("Answer:")][:n_steps]


class _Clock:
    """Time to the first token and decode speed after it."""

    def __init__(self):
        self.start = time.perf_counter()
        self.ttft: float | None = None

    def tick(self) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.start

    def stats(self, n_tokens: int) -> dict:
        elapsed = time.perf_counter() - self.start
        decode_s = elapsed - (self.ttft or 0.0)
        return {"ttft_s": round(self.ttft or elapsed, 4),
                "tokens_per_s": round((n_tokens - 1) / decode_s, 1) if n_tokens > 1 and decode_s > 0 else None,
                "total_s": round(elapsed, 4)}


def _is_step(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("Answer:")


def _vote(trace: Done) -> str | None:
    return canonical_answer(trace.answer) if trace.answer is not None else None


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("-inf")


def _peak_rss() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


# ---------------------------------------------------------------------------------------
# loading


_LOADED: dict[tuple, Engine] = {}


def load(model, variant: str = TORCH, *, threads: int | None = None) -> Engine:
    """The engine for `model` (recipe name, recipe file or folder) in `variant`, loaded once
    per process."""
    from tracetutor.recipe import resolve_model

    from .variants import Variant, check_fresh, check_variant

    model_dir, _ = resolve_model(model)
    fmt = Variant.parse(variant).format
    path = check_variant(model_dir, variant)
    check_fresh(model_dir, variant, path)  # a variant of other weights than the model's is refused
    key = (str(path.resolve()), variant, threads)
    if key not in _LOADED:
        if fmt == "torch":
            from .torch_backend import TorchBackend

            backend = TorchBackend(path, threads=threads)
        elif fmt == "onnx":
            from .onnx_backend import OnnxBackend

            backend = OnnxBackend(path, threads=threads)
        else:
            from .llama_backend import LlamaCppBackend

            backend = LlamaCppBackend(path, threads=threads)
        _LOADED[key] = Engine(backend, variant)
    return _LOADED[key]


def unload(model=None, variant: str | None = None) -> None:
    """Close and forget loaded engines: all of them, or those of `model` (and `variant`), so
    that a rewritten file is loaded afresh."""
    from tracetutor.recipe import resolve_model

    if model is not None and not Path(model).is_dir():
        try:
            model = resolve_model(model)[0]
        except ValueError:  # no such model: nothing of it is loaded
            return
    folder = str(Path(model).resolve()) if model is not None else None
    for key in list(_LOADED):
        path, v, _ = key
        if (folder is None or path == folder or path.startswith(folder + "/")) and variant in (None, v):
            _LOADED.pop(key).backend.close()
