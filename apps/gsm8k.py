"""GSM8K's test set as bench problems, and its answers extracted as lm-evaluation-harness does.

The harness's gsm8k task (version 3) scores a completion two ways, both reported here:
`strict-match` takes the first `#### n` (the format of its 5-shot examples), `flexible-extract`
the last number anywhere (regex `(-?[$0-9.,]{2,})|(-?[0-9]+)`, the last match); a completion
without one is "[invalid]". Extracted and reference answers are compared as its exact_match
does: case ignored, and commas, `$`, everything up to `#### ` and a final `.` removed. Our
models are asked through their chat template without the harness's few-shot prompt, so they
never write `####`: strict-match measures the format, flexible-extract the answers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
"""The test split beside the repository (../shared/data/gsm8k/test.jsonl)."""
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
INVALID = "[invalid]"
_IGNORE = [re.compile(r","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$")]


def _extract(pattern: re.Pattern, text: str, select: int) -> str:
    found = pattern.findall(text)
    if not found:
        return INVALID
    match = found[select]
    if isinstance(match, tuple):  # the first group that matched
        match = next((m for m in match if m), INVALID)
    return match.strip()


def strict_answer(text: str) -> str:
    return _extract(STRICT, text, 0)


def flexible_answer(text: str) -> str:
    return _extract(FLEXIBLE, text, -1)


def _clean(text: str) -> str:
    for pattern in _IGNORE:
        text = pattern.sub("", text)
    return text.lower()


def exact_match(extracted: str, target: str) -> bool:
    """The harness's exact_match of an extracted answer with the full reference solution."""
    return _clean(extracted) == _clean(target)


def read_gsm8k(path: str | Path = GSM8K, limit: int | None = None) -> list[dict]:
    """GSM8K records as problems: the answer is the number after `####` (commas dropped), the
    steps are the solution's lines before it (with their `<<48/2=24>>` annotations, which the
    verifier reads), and `target` keeps the whole solution for the harness's comparison."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no GSM8K test set (put GSM8K's test.jsonl there to bench on it)")
    problems = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                question, solution = record["question"], record["answer"]
                steps, _, answer = solution.rpartition("####")
            except (ValueError, KeyError, AttributeError) as e:
                raise ValueError(f"{path}:{n}: not a GSM8K record ({type(e).__name__}: {e})") from None
            problems.append({"id": f"gsm8k/{n}", "question": question,
                             "steps": [s.strip() for s in steps.splitlines() if s.strip()],
                             "answer": answer.strip().replace(",", ""), "source": "gsm8k", "target": solution})
            if limit is not None and len(problems) >= limit:
                break
    return problems


def score_gsm8k(problems: list[dict], texts: list[str]) -> dict:
    """Both of the harness's scores over completions: {"strict_match", "flexible_extract"}."""
    strict = [exact_match(strict_answer(t), p["target"]) for p, t in zip(problems, texts)]
    flexible = [exact_match(flexible_answer(t), p["target"]) for p, t in zip(problems, texts)]
    n = len(problems)
    return {"strict_match": round(sum(strict) / n, 4) if n else None,
            "flexible_extract": round(sum(flexible) / n, 4) if n else None}
