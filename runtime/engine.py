"""The engine: one way to ask a model a question, whatever backend runs it.

The engine knows nothing about tensors: a backend turns a question into prompt ids and
streams generated ids; the engine turns those into text, Step and Answer events, and stats.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from tracetutor.trace import parse_completion

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


class Backend(Protocol):
    name: str

    def encode_prompt(self, question: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def stream_ids(self, prompt: list[int], settings: Settings) -> Iterator[int]:
        """Generated ids, one at a time, ending before the end-of-turn token."""
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


Event = Token | Step | Answer | Done


class Engine:
    def __init__(self, backend: Backend, variant: str = TORCH):
        self.backend = backend
        self.variant = variant

    def stream(self, question: str, settings: Settings | None = None) -> Iterator[Event]:
        settings = settings or Settings()
        prompt = self.backend.encode_prompt(question)
        ids: list[int] = []
        text, line_start, n_steps = "", 0, 0
        start = time.perf_counter()
        ttft = None
        for tok in self.backend.stream_ids(prompt, settings):
            if ttft is None:
                ttft = time.perf_counter() - start
            ids.append(tok)
            new = self.backend.decode(ids)
            if new.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                continue
            delta, text = new[len(text):], new
            if delta:
                yield Token(delta)
            while "\n" in text[line_start:]:
                end = text.index("\n", line_start)
                event = _line_event(text[line_start:end], n_steps)
                line_start = end + 1
                if isinstance(event, Step):
                    n_steps += 1
                if event:
                    yield event
            if any(s in text for s in settings.stop):
                text = text[:min(text.index(s) for s in settings.stop if s in text)]
                break
        elapsed = time.perf_counter() - start
        event = _line_event(text[line_start:], n_steps)
        if event:
            yield event
        steps, answer = parse_completion(text)
        decode_s = elapsed - (ttft or 0.0)
        stats = {
            "n_prompt_tokens": len(prompt),
            "n_tokens": len(ids),
            "ttft_s": round(ttft or elapsed, 4),
            "tokens_per_s": round((len(ids) - 1) / decode_s, 1) if len(ids) > 1 and decode_s > 0 else None,
            "total_s": round(elapsed, 4),
            "peak_rss_bytes": _peak_rss(),
            "backend": self.backend.name,
            "variant": self.variant,
        }
        yield Done(text=text, steps=steps, answer=answer, stats=stats)

    def ask(self, question: str, settings: Settings | None = None) -> Done:
        """The whole answer at once (the stream's last event)."""
        for event in self.stream(question, settings):
            pass
        return event

    def answer_batch(self, questions: list[str], settings: Settings | None = None) -> list[Done]:
        """Greedy answers to many questions, batched where the backend can."""
        settings = settings or Settings()
        prompts = [self.backend.encode_prompt(q) for q in questions]
        out = []
        for ids in self.backend.generate_batch(prompts, settings):
            text = self.backend.decode(ids)
            steps, answer = parse_completion(text)
            out.append(Done(text=text, steps=steps, answer=answer, stats={"n_tokens": len(ids)}))
        return out


def _line_event(line: str, n_steps: int):
    steps, answer = parse_completion(line)
    if answer is not None and line.lstrip().startswith("Answer:"):
        return Answer(answer)
    if line.strip() and steps:
        return Step(n_steps + 1, steps[0])
    return None


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
