"""The runtime's shared types: generation `Settings`, the `Backend` protocol every backend
implements, and the events the engine streams.

Backends import this module, never the engine; the engine, the server, the apps and the
exporters' parity checks talk to any backend through `Backend` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Protocol

DEFAULT_MAX_NEW_TOKENS = 192
"""How many tokens an answer may take unless asked otherwise (the curriculum's longest trace
is about 120)."""


@dataclass(frozen=True)
class Settings:
    """Generation settings shared by every backend. Invalid values raise ValueError naming the
    setting, so a bad `--temperature` or `max_tokens` fails before any work."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    top_k: int = 0
    """Keep only the k most likely tokens before sampling; 0 keeps all."""
    seed: int | None = None
    stop: tuple[str, ...] = ()
    """Extra strings that end generation (the end-of-turn token always does)."""
    logprobs: bool = False
    """Ask the backend for each generated token's log-probability (per-step confidence)."""
    check: bool = False
    """Checked arithmetic: a step whose claim is false (`8 + 11 = 29`) gets its exact result
    (`19`) and the model continues from the corrected step, like GSM8K's calculator. The
    model chooses every number and operation; only results it got wrong are replaced."""

    def __post_init__(self):
        def need(ok: bool, name: str, what: str, value) -> None:
            if not ok:
                raise ValueError(f"{name} must be {what}, got {value!r}")

        need(_is_int(self.max_new_tokens) and self.max_new_tokens >= 1, "max_new_tokens",
             "an integer of at least 1", self.max_new_tokens)
        need(_is_number(self.temperature) and 0 <= self.temperature <= 100, "temperature",
             "a number from 0 (greedy) to 100", self.temperature)
        need(_is_number(self.top_p) and 0 < self.top_p <= 1, "top_p", "a number in (0, 1]", self.top_p)
        need(_is_int(self.top_k) and self.top_k >= 0, "top_k", "an integer of at least 0 (0 keeps all)", self.top_k)
        need(self.seed is None or _is_int(self.seed), "seed", "an integer", self.seed)
        need(all(isinstance(s, str) and s for s in self.stop), "stop", "non-empty strings", self.stop)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Backend(Protocol):
    """What the engine, the server and the parity checks need of a model runner."""

    name: str
    """torch, onnxruntime or llama.cpp."""
    eos_id: int
    """The end-of-turn token: generation stops before it."""
    context_length: int
    """Tokens the model attends to, prompt and completion together."""
    max_token_bytes: int
    """The most bytes of text one token can stand for: a text of more than
    context_length * max_token_bytes bytes cannot fit, and is refused without tokenizing it."""

    def encode_prompt(self, question: str | list[dict]) -> list[int]:
        """The chat template's prompt for a question or a conversation (list of messages)."""
        ...

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Ids of `text`, no bos added; with `special`, special-token text such as <|end|> is
        that token, otherwise it is ordinary text."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`; special tokens render as nothing."""
        ...

    def token_bytes(self, token: int) -> bytes | None:
        """The bytes one token adds to the text, or None where a token's text depends on its
        neighbours (the engine then re-decodes the whole sequence)."""
        ...

    def stream_ids(self, prompt: list[int], settings: Settings) -> Iterator[tuple[int, float | None]]:
        """(id, log-probability) of each generated token, one at a time, ending before the
        end-of-turn token; the log-probability (under the model, before temperature) only with
        `settings.logprobs`, else None. A generator: the engine closes it to stop early."""
        ...

    def generate_batch(self, prompts: list[list[int]], settings: Settings) -> list[list[int]]:
        """Greedy completions of many prompts (batched where the backend can)."""
        ...

    def logits(self, ids: list[int]):
        """Teacher-forced next-token logits at every position of `ids`: a numpy array
        (len(ids), vocab) where row i predicts ids[i + 1]."""
        ...

    def close(self) -> None:
        """Release the model's memory (files, sessions)."""
        ...


@dataclass
class Token:
    """Text to show, in order; all Token texts together are the completion."""

    text: str


@dataclass
class Step:
    index: int
    """From 1."""
    text: str
    corrected_from: str | None = None
    """With checked arithmetic: the line as the model wrote it, when its result was false and
    `text` is the corrected line."""


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
