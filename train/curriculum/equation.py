"""equation: linear equations in one unknown, written with symbols or in words."""

from __future__ import annotations

import random

from .core import Work, factors, family, num
from .wording import NAMES, words

# per form: the equation with symbols, the same in words; the questions that ask for the unknown
WORDS = words("equation")


@family
def equation(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Linear equations in one unknown, undone one operation a step; at 4, then evaluated."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    v = rng.choice("xyn")
    form = {1: rng.choice(["x+b", "x-b", "ax", "x/a"]),
            2: rng.choice(["ax+b", "ax-b", "x/a+b", "a(x+b)"]),
            3: rng.choice(["ax+b=cx+d", "a(x+b)+d"]),
            4: rng.choice(["ax+b", "ax-b", "ax+b=cx+d"])}[difficulty]
    numbers = _solve(rng, work, form)
    eq = WORDS["equations"][form].format(v=v, **numbers)
    if difficulty < 4:
        if rng.random() < 0.5:
            return rng.choice(WORDS["in_words"][form]).format(name=name, **numbers), work
        return rng.choice(WORDS["asked"]).format(eq=eq, v=v, name=name), work
    k, op, m = _evaluate(rng, work, numbers["x"])
    expr = f"{k}{v} {op} {m}"
    return rng.choice(WORDS["asked_expression"]).format(eq=eq, expr=expr, v=v), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _solve(rng: random.Random, work: Work, form: str) -> dict[str, int]:
    """The equation's numbers (a, b, c, d as its form names them) and the unknown x, drawn so
    that x is whole; the steps that undo it, one operation a step, in `work`."""
    cap = work.cap
    if form == "x+b":
        x = num(rng, 2, cap - 3)
        b = num(rng, 2, cap - 1 - x)
        c = x + b
        work.sub("subtract from both sides", c, b)
        return dict(b=b, c=c, x=x)
    if form == "x-b":
        c = num(rng, 2, cap - 3)
        b = num(rng, 2, cap - 1 - c)
        x = c + b
        work.add("add to both sides", c, b)
        return dict(b=b, c=c, x=x)
    if form == "ax":
        a, x = factors(rng, cap - 1)
        c = a * x
        work.div("divide both sides", c, a)
        return dict(a=a, c=c, x=x)
    if form == "x/a":
        a, c = factors(rng, cap - 1)
        x = a * c
        work.mul("multiply both sides", c, a)
        return dict(a=a, c=c, x=x)
    if form == "ax+b":
        a, x = factors(rng, cap - 3)
        b = num(rng, 2, cap - 1 - a * x)
        c = a * x + b
        work.div("divide both sides", work.sub("subtract from both sides", c, b), a)
        return dict(a=a, b=b, c=c, x=x)
    if form == "ax-b":
        a, x = factors(rng, cap - 1)
        b = num(rng, 2, a * x - 2)
        c = a * x - b
        work.div("divide both sides", work.add("add to both sides", c, b), a)
        return dict(a=a, b=b, c=c, x=x)
    if form == "x/a+b":
        a, q = factors(rng, cap - 1)
        b = num(rng, 2, cap - 1 - q)
        x, c = q * a, q + b
        work.mul("multiply both sides", work.sub("subtract from both sides", c, b), a)
        return dict(a=a, b=b, c=c, x=x)
    if form == "a(x+b)":
        a, inner = factors(rng, cap - 1, least=4)
        x = num(rng, 2, inner - 2)
        b = inner - x
        c = a * (x + b)
        work.sub("subtract from both sides", work.div("divide both sides", c, a), b)
        return dict(a=a, b=b, c=c, x=x)
    if form == "a(x+b)+d":
        a, inner = factors(rng, cap - 3, least=4)
        x = num(rng, 2, inner - 2)
        b = inner - x
        d = num(rng, 2, cap - 1 - a * inner)
        c = a * (x + b) + d
        inner = work.div("divide both sides", work.sub("subtract from both sides", c, d), a)
        work.sub("subtract from both sides", inner, b)
        return dict(a=a, b=b, c=c, d=d, x=x)
    # ax + b = cx + d, with a > c
    coef, x = factors(rng, cap - 3, factor=10)  # a - c: the unknowns collected
    c = num(rng, 2, 12 - coef)
    a = c + coef
    b = num(rng, 2, cap - 1 - coef * x)
    d = (a - c) * x + b
    coef = work.sub("collect the unknowns", a, c)
    work.div("divide both sides", work.sub("collect the numbers", d, b), coef)
    return dict(a=a, b=b, c=c, d=d, x=x)


def _evaluate(rng: random.Random, work: Work, x: int) -> tuple[int, str, int]:
    """Level 4: kx + m or kx - m evaluated at the solution: (k, "+" or "-", m)."""
    cap = work.cap
    k = num(rng, 2, min(12, (cap - 1) // x))
    product = work.mul("evaluate the product", k, x)
    if product <= cap - 3 and (product < 3 or rng.random() < 0.5):
        m = num(rng, 2, cap - 1 - product)
        work.add("evaluate the expression", product, m)
        return k, "+", m
    m = num(rng, 2, product - 1)
    work.sub("evaluate the expression", product, m)
    return k, "-", m
