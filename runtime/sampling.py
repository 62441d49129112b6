"""The one sampler of the backends that sample in Python (torch, onnxruntime), so the same
Settings and seed draw the same token from the same logits in either; llama.cpp samples with
its own, in C."""

from __future__ import annotations

import numpy as np

from .types import Settings


def log_softmax(logits) -> np.ndarray:
    """Log-probabilities of a logits vector (or rows), in float64."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


class Sampler:
    """Picks the next token from a logits vector: argmax at temperature 0, else temperature,
    top-k, then top-p (the smallest set of likeliest tokens whose probability reaches top_p)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)

    def pick(self, logits) -> int:
        s = self.settings
        logits = np.asarray(logits)
        if s.temperature <= 0:
            return int(logits.argmax())
        x = logits.astype(np.float64) / s.temperature
        if 0 < s.top_k < x.size:
            kth = np.partition(x, -s.top_k)[-s.top_k]
            x = np.where(x < kth, -np.inf, x)
        probs = np.exp(x - x.max())
        probs /= probs.sum()
        if s.top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            sorted_p = probs[order]
            sorted_p[np.cumsum(sorted_p) - sorted_p > s.top_p] = 0  # keep the smallest set over top_p
            probs = np.zeros_like(probs)
            probs[order] = sorted_p
            probs /= probs.sum()
        return int(self.rng.choice(probs.size, p=probs))

    def logprob(self, logits, token: int) -> float | None:
        """The token's log-probability under the model (before temperature), if asked for."""
        return float(log_softmax(logits)[token]) if self.settings.logprobs else None
