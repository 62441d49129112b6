"""The benchmark's statistics: how sure an accuracy is, whether two variants differ, and how far
a variant's next-token distributions and greedy completions are from the reference model's.

- `wilson`: the Wilson score interval of a proportion (95% by default), sound at 0% and 100%
  and for small n, where the normal approximation is not;
- `mcnemar_p`: the exact McNemar test of paired answers: only the problems one variant gets
  right and the other wrong count, and under "no difference" each such problem goes either way
  with probability 1/2 (a two-sided binomial test);
- `next_token_logits` / `kl_top1`: teacher-forced over reference traces, through the Backend
  protocol's `logits`: mean KL(reference || variant) and top-1 agreement per position;
- `first_departing_step`: where a greedy completion first differs from the reference's.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials; None when n is 0."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_p(a: list[bool], b: list[bool]) -> float:
    """Two-sided exact McNemar p of paired right/wrong answers; 1.0 when no problem differs."""
    if len(a) != len(b):
        raise ValueError(f"paired answers must be as many: {len(a)} against {len(b)}")
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def log_softmax(logits):
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def next_token_logits(backend, sequences: list[tuple[list[int], int]], vocab: int | None = None) -> list:
    """The logits of the next token at each completion position of every (ids, n_prompt)
    sequence, teacher-forced: a float32 array (positions, vocab) per sequence, as backends give
    them. `vocab` cuts off columns a backend pads past the reference's vocabulary (llama.cpp may)."""
    import numpy as np

    out = []
    for ids, n_prompt in sequences:
        logits = np.asarray(backend.logits(ids), dtype=np.float32)[n_prompt - 1:len(ids) - 1]
        out.append(logits[:, :vocab] if vocab else logits)
    return out


def kl_top1(reference: list, variant: list) -> dict:
    """Mean KL(reference || variant) of the next-token distributions over all positions, and the
    share of positions whose most likely token is the same; both lists hold logit arrays as
    next_token_logits gives them, sequence by sequence (softmax in float64)."""
    import numpy as np

    kl_sum, agree, n = 0.0, 0, 0
    for p, q in zip(reference, variant, strict=True):
        lp, lq = log_softmax(p), log_softmax(q[:, :p.shape[-1]])
        kl_sum += float((np.exp(lp) * (lp - lq)).sum()) if len(lp) else 0.0
        agree += int((lp.argmax(-1) == lq.argmax(-1)).sum())
        n += len(lp)
    return {"positions": n, "kl_divergence": kl_sum / n if n else None,
            "top1_agreement": agree / n if n else None}


def first_departing_step(reference: str, completion: str) -> int | None:
    """The 1-based line (a step, or the answer line) where `completion` first differs from
    `reference`; None when they are the same text."""
    if reference == completion:
        return None
    a, b = reference.splitlines(), completion.splitlines()
    for i, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            return i
    return min(len(a), len(b)) + 1


def greedy_agreement(reference: list[str], completions: list[str]) -> dict:
    """The share of completions identical to the reference's, and how many depart first at each
    step: {"greedy_identical": share, "first_departing_step": {"1": n, ...}}."""
    steps = [first_departing_step(r, c) for r, c in zip(reference, completions, strict=True)]
    departing: dict[str, int] = {}
    for s in sorted(s for s in steps if s is not None):
        departing[str(s)] = departing.get(str(s), 0) + 1
    same = sum(s is None for s in steps)
    return {"greedy_identical": same / len(steps) if steps else None, "first_departing_step": departing}
