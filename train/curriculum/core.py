"""The rules every step keeps, the step builder that checks them, and the family registry.

A step is one claim, `short label: a op b = c`, and the last result is the answer. Every claim
keeps to what a tiny model can learn digit by digit:

- operands and results are whole numbers from 1 to just below the level's cap: a model of a few
  million parameters trained for minutes on a CPU learns arithmetic on such numbers reliably,
  and the method (which numbers, which operation, in which order) is what the curriculum teaches;
- a multiplication has a factor from 2 to 12; a division has a divisor from 2 to 12 and no
  remainder;
- a percentage is 10, 20, 25, 50 or 75 percent (the percent names the operation) of a base below
  the cap that it divides exactly (`25% of 80 = 20`);
- a step has one operation, except a sum of three terms (`12 + 7 + 9 = 28`).

Each family draws its numbers from ranges written for the level's cap, most of them chosen so
that every step keeps the rules by construction. `Work` still checks every claim; a draw that
breaks a rule raises `Redraw`, and the family draws again. At level 1 there are few problems
with numbers below 20, so the names, things and sentences make the questions distinct.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tracetutor.trace import LEVELS

VERSION = 2
"""Raise it whenever the same seed starts giving other traces: data made before is then redone."""

CAP = dict(zip(LEVELS, (20, 50, 100, 200), strict=True))  # every number in a step of a level is below its cap
PERCENTS = (10, 20, 25, 50, 75)


# ---------------------------------------------------------------------------------------
# Steps that keep to the rules


class Redraw(Exception):
    """The numbers drawn break a rule of the curriculum; the family draws again."""


class Work:
    """The steps of one solution; every claim is checked against the rules above."""

    def __init__(self, difficulty: int):
        self.cap = CAP[difficulty]
        self.steps: list[str] = []
        self.result = 0

    def _claim(self, label: str, expr: str, operands, result: int) -> int:
        if not all(1 <= v < self.cap for v in operands) or not 1 <= result < self.cap:
            raise Redraw
        self.steps.append(f"{label}: {expr} = {result}")
        self.result = result
        return result

    def add(self, label: str, *terms: int) -> int:
        assert 2 <= len(terms) <= 3
        return self._claim(label, " + ".join(map(str, terms)), terms, sum(terms))

    def sub(self, label: str, a: int, b: int) -> int:
        return self._claim(label, f"{a} - {b}", (a, b), a - b)

    def mul(self, label: str, a: int, b: int) -> int:
        if not 2 <= min(a, b) <= 12:
            raise Redraw
        return self._claim(label, f"{a} x {b}", (a, b), a * b)

    def div(self, label: str, a: int, b: int) -> int:
        if not 2 <= b <= 12 or a % b:
            raise Redraw
        return self._claim(label, f"{a} / {b}", (a, b), a // b)

    def pct(self, label: str, p: int, base: int) -> int:
        if p not in PERCENTS or base * p % 100:
            raise Redraw
        return self._claim(label, f"{p}% of {base}", (base,), base * p // 100)

    def add_up(self, values: list[int], label: str, partial: str = "sum so far") -> int:
        """Sum a list, up to three terms a step (`a + b + c`, then `sum + d + e`, ...)."""
        total, rest = values[0], values[1:]
        while rest:
            take, rest = rest[:2], rest[2:]
            total = self.add(partial if rest else label, total, *take)
        return total


# ---------------------------------------------------------------------------------------
# The family registry

FAMILIES: dict[str, Callable[[random.Random, int], tuple[str, list[str], str]]] = {}
"""Every family by name, in the order registered (an order the cells of a draw follow)."""


def family(draw: Callable[[random.Random, int], tuple[str, Work]]):
    """Register a family under its function's name; retry its draw until every rule holds."""

    def generate(rng: random.Random, difficulty: int) -> tuple[str, list[str], str]:
        if difficulty not in CAP:
            raise ValueError(f"difficulty must be one of {list(LEVELS)}, got {difficulty!r}")
        for _ in range(10_000):
            try:
                question, work = draw(rng, difficulty)
            except Redraw:
                continue
            return question, work.steps, str(work.result)
        raise RuntimeError(f"{draw.__name__}: no draw keeps the rules at difficulty {difficulty}")

    generate.__name__ = draw.__name__
    generate.__doc__ = draw.__doc__
    FAMILIES[draw.__name__] = generate
    return generate


# ---------------------------------------------------------------------------------------
# Drawing numbers


def n_steps(rng: random.Random, difficulty: int) -> int:
    return difficulty if difficulty < 4 else rng.choice((4, 5))


def top(difficulty: int, *tops: int) -> int:
    """The largest number to draw at this difficulty, one value per level."""
    return tops[difficulty - 1]


def num(rng: random.Random, low: int, high: int) -> int:
    """A whole number from `low` to `high`, or a redraw when the range is empty."""
    if high < low:
        raise Redraw
    return rng.randint(low, high)


def pick(rng: random.Random, options):
    """One of the options, or a redraw when there is none."""
    options = list(options)
    if not options:
        raise Redraw
    return rng.choice(options)


def factors(rng: random.Random, most: int, factor: int = 12, least: int = 2) -> tuple[int, int]:
    """(a factor from 2 to `factor`, a number from `least`) whose product is at most `most`.

    The factor is drawn first, then the other number up to what the product allows, so the
    products spread over the whole range up to `most`.
    """
    a = num(rng, 2, min(factor, most // least))
    return a, num(rng, least, most // a)


# round amounts a buyer hands over: fives up to 50, then tens
ROUND_AMOUNTS = tuple(range(5, 50, 5)) + tuple(range(50, 200, 10))


def most_to_pay(cap: int) -> int:
    """The largest total that a round payment below `cap` still covers with change."""
    return max(a for a in ROUND_AMOUNTS if a < cap) - 1


def payment(rng: random.Random, total: int, cap: int) -> int:
    """A round amount above `total` and below `cap` that a buyer might hand over."""
    options = [a for a in ROUND_AMOUNTS if total < a < cap]
    if not options:
        raise Redraw
    return rng.choice(options[:2])
