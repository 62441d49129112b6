"""ratio: one side from the other, sharing a total in a ratio, a difference in parts."""

from __future__ import annotations

import random
from math import gcd

from .core import Work, factors, family, num
from .wording import paragraph, words

WORDS = words("ratio")
SCENES = WORDS["scenes"]  # [first things, second things, where]

_COPRIME = [(a, b) for a in range(1, 10) for b in range(1, 10) if a != b and gcd(a, b) == 1]
_RATIOS = {  # the ratios a : b that keep every step's rules, for each kind of question
    "scale": [(a, b) for a, b in _COPRIME if a >= 2 and b >= 2],  # a part from a side, times b
    "share": [(a, b) for a, b in _COPRIME if b >= 2 and a + b <= 12],  # a part from the total, times b
    "difference": [(a, b) for a, b in _COPRIME if 2 <= a < b and a + b <= 12],  # both sides, their difference
    "total": [(a, b) for a, b in _COPRIME if b - a >= 2],  # a part from the difference, times a + b
}


@family
def ratio(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Ratios: one side from the other, shares of a total, a difference in parts."""
    work = Work(difficulty)
    A, B, where = rng.choice(SCENES)
    if rng.random() < 0.5:
        A, B = B, A
    if difficulty == 1:
        return _times_as_many(rng, work, A, B, where), work
    shape = {2: "scale", 3: "share", 4: rng.choice(["difference", "total"])}[difficulty]
    a, b, part = _ratio_and_part(rng, shape, work.cap)
    _steps(work, shape, a, b, part, A, B)
    return _tell(rng, difficulty, shape, a, b, part, A, B, where), work


def _times_as_many(rng: random.Random, work: Work, A: str, B: str, where: str) -> str:
    """Level 1: k times as many B as A, one side asked from the other. Which side is asked is
    drawn after the ratio is worded, so numbers and words take turns here."""
    k, part = factors(rng, work.cap - 1, factor=9)
    fact = rng.choice([f"{where}, there are {k} times as many {B} as {A}.",
                       f"the ratio of {A} to {B} {where} is 1 : {k}.",
                       f"{where}, there are {k} {B} for each one of the {A}."])
    if rng.random() < 0.5:
        work.mul(B, part, k)
        facts = [fact, f"there are {part} {A}."]
        asked = rng.choice([f"How many {B} are there?", f"How many {B} are there {where}?", f"What is the number of {B}?"])
    else:
        work.div(A, part * k, k)
        facts = [fact, f"there are {part * k} {B}."]
        asked = rng.choice([f"How many {A} are there?", f"How many {A} are there {where}?", f"What is the number of {A}?"])
    return paragraph(*(facts if rng.random() < 0.7 else facts[::-1]), asked)


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _ratio_and_part(rng: random.Random, shape: str, cap: int) -> tuple[int, int, int]:
    """(a, b, one part): one part is at most what keeps the biggest number below the cap."""
    a, b = rng.choice(_RATIOS[shape])
    biggest = max(a, b) if shape == "scale" else a + b
    part = num(rng, 2, (cap - 1) // biggest if shape != "total" or a + b <= 12 else min(12, (cap - 1) // biggest))
    return a, b, part


def _steps(work: Work, shape: str, a: int, b: int, part: int, A: str, B: str) -> None:
    """The steps; the ratios and the part drawn keep every one whole, so none redraws."""
    if shape == "scale":  # B from A
        one = work.div("one part", a * part, a)
        work.mul(B, one, b)
    elif shape in ("share", "difference"):  # B, or the difference, from the total
        parts = work.add("total parts", a, b)
        one = work.div("one part", (a + b) * part, parts)
        if shape == "share":
            work.mul(B, one, b)
        else:
            first = work.mul(A, one, a)
            second = work.mul(B, one, b)
            work.sub("difference", second, first)
    else:  # the total from the difference
        diff = work.sub("difference in parts", b, a)
        one = work.div("one part", (b - a) * part, diff)
        parts = work.add("total parts", a, b)
        work.mul("total", one, parts)


# ---------------------------------------------------------------------------------------
# The wording


def _ratio_fact(rng: random.Random, A: str, B: str, a: int, b: int, where: str) -> str:
    return rng.choice([
        f"the ratio of {A} to {B} {where} is {a} : {b}.",
        f"{where}, there are {a} {A} for every {b} {B}.",
        f"for every {a} {A} {where} there are {b} {B}.",
        f"{where}, {A} and {B} are in the ratio {a} : {b}.",
        f"the ratio of {B} to {A} {where} is {b} : {a}.",
    ])


def _tell(rng: random.Random, difficulty: int, shape: str, a: int, b: int, part: int, A: str, B: str,
          where: str) -> str:
    fact = _ratio_fact(rng, A, B, a, b, where)
    if difficulty == 2:
        facts = [fact, f"there are {a * part} {A}."]
        return paragraph(*(facts if rng.random() < 0.7 else facts[::-1]), f"How many {B} are there?")
    together = rng.choice([f"there are {(a + b) * part} {A} and {B} altogether.",
                           f"{A} and {B} together number {(a + b) * part}."])
    if shape == "share":
        facts, asked = [fact, together], f"How many {B} are there?"
    elif shape == "difference":
        asked = rng.choice([f"How many more {B} than {A} are there?", f"How many fewer {A} than {B} are there?"])
        facts = [fact, together]
    else:
        facts = [fact, f"there are {(b - a) * part} more {B} than {A}."]
        asked = rng.choice([f"How many {A} and {B} are there altogether?", f"How many {A} and {B} are there in total?"])
    return paragraph(*(facts if rng.random() < 0.7 else facts[::-1]), asked)
