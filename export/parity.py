"""Parity of an exported variant with the full-precision torch model.

- tokenizer parity: the same ids from Hugging Face and the variant's own tokenizer on every
  held-out question, every special token and a stress text; must be 100%;
- greedy parity: the same generated tokens as torch on a set of prompts (full-precision
  variants must match exactly);
- for every variant, teacher-forced over reference traces: mean KL(torch || variant) and top-1
  agreement of the next-token distributions, and the first step at which a greedy trace
  diverges from torch's.
"""

from __future__ import annotations

import numpy as np

from tracetutor.runtime.sampling import log_softmax
from tracetutor.runtime.types import DEFAULT_MAX_NEW_TOKENS

STRESS = "Line one\n\n  two  spaces,\tа tab; ünïcødé 日本語 🙂 — 1,234.50 x 12 = 14814\n   "


def tokenizer_texts(questions: list[str], special_tokens: list[str]) -> list[str]:
    return list(questions) + list(special_tokens) + [STRESS, " " + STRESS, "".join(special_tokens)]


def tokenizer_parity(reference, backend, texts: list[str]) -> dict:
    """`reference` and `backend` both have tokenize(text, special=True)."""
    mismatches = []
    for text in texts:
        a, b = reference.tokenize(text, special=True), backend.tokenize(text, special=True)
        if a != b:
            mismatches.append({"text": text[:80], "reference": a[:20], "variant": b[:20]})
    return {"texts": len(texts), "identical": len(texts) - len(mismatches),
            "rate": (len(texts) - len(mismatches)) / len(texts), "mismatches": mismatches[:5]}



def logit_parity(reference, backend, sequences: list[tuple[list[int], int]]) -> dict:
    """Teacher-forced comparison over (ids, n_prompt) sequences, at the completion's positions."""
    kls, agree, n, max_diff = [], 0, 0, 0.0
    for ids, n_prompt in sequences:
        p, q = reference.logits(ids), backend.logits(ids)
        p, q = p[n_prompt - 1:len(ids) - 1], q[n_prompt - 1:len(ids) - 1, :p.shape[-1]]
        max_diff = max(max_diff, float(np.abs(p - q).max()))
        lp, lq = log_softmax(p), log_softmax(q)
        kls.extend((np.exp(lp) * (lp - lq)).sum(-1).tolist())
        agree += int((p.argmax(-1) == q.argmax(-1)).sum())
        n += len(p)
    return {"positions": n, "mean_kl": float(np.mean(kls)) if kls else None,
            "top1_agreement": agree / n if n else None, "max_abs_logit_diff": max_diff}


def greedy_parity(reference_engine, engine, questions: list[str], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                  tie_margin: float = 0.1) -> dict:
    """Greedy completions of torch and the variant: identical tokens, and where steps diverge.

    A divergence where torch's two best logits lie within `tie_margin` of each other is a
    near-tie: any rounding (f16 weights, another summation order) may flip it, so it is counted
    apart from real divergences.
    """
    from tracetutor.runtime import Settings

    ref, var = reference_engine.backend, engine.backend
    prompts = [ref.encode_prompt(q) for q in questions]
    room = min(ref.context_length, var.context_length) - max(map(len, prompts))
    # within the context: llama.cpp stops at its end where torch would go on past its positions
    settings = Settings(max_new_tokens=max(1, min(max_new_tokens, room)))
    ref_ids = ref.generate_batch(prompts, settings)
    var_ids = var.generate_batch([var.encode_prompt(q) for q in questions], settings)
    identical, near_ties, first_steps, examples = 0, 0, [], []
    for q, prompt, a, b in zip(questions, prompts, ref_ids, var_ids):
        if a == b:
            identical += 1
            continue
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        top2 = np.sort(ref.logits(prompt + a[:k])[-1])[-2:]
        margin = float(top2[1] - top2[0])
        near_ties += margin < tie_margin
        ta, tb = ref.decode(a), var.decode(b)
        step = _first_divergent_step(ta, tb)
        first_steps.append(step)
        if len(examples) < 3:
            examples.append({"question": q, "torch": ta, "variant": tb, "first_divergent_step": step,
                             "torch_top2_margin": round(margin, 4)})
    return {"prompts": len(questions), "identical": identical, "rate": identical / len(questions),
            "near_ties": int(near_ties), "tie_margin": tie_margin,
            "first_divergent_step": _histogram(first_steps), "examples": examples}


def _first_divergent_step(a: str, b: str) -> int:
    """1-based index of the first line (step, or the answer line) that differs."""
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb), 1):
        if x != y:
            return i
    return min(len(la), len(lb)) + 1


def _histogram(values: list[int]) -> dict:
    out: dict[str, int] = {}
    for v in sorted(values):
        out[str(v)] = out.get(str(v), 0) + 1
    return out
