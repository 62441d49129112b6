"""interest: simple and compound growth, and loss of value, a percentage a year."""

from __future__ import annotations

import random
from functools import lru_cache

from .core import CAP, Work, family, pick
from .wording import NAMES, money_style, paragraph, words

WORDS = words("interest")
# how a kind changes each year: +1 grows, -1 falls; and the percents it may change by
CHANGES = {"bank": (+1, (10, 20, 25)), "growth": (+1, (10, 20, 25, 50)), "value": (-1, (10, 20, 25, 50))}


@family
def interest(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """A yearly percentage: one year's interest, a balance, simple interest, compound interest."""
    work, money = Work(difficulty), money_style(rng)
    name = rng.choice(NAMES)
    kind = rng.choice(list(CHANGES))
    sign, percents = CHANGES[kind]
    n = rng.randint(2, 5) if difficulty == 3 else 0  # years of simple interest
    p, start = pick(rng, [(p, start) for p in percents for start in _starts(difficulty, sign, p, n)])
    # `kind` words: what one year adds or takes away, what there is after, and their sentences
    said = WORDS["kinds"][kind]
    value = _years(work, difficulty, sign, p, start, n, said["amount"], said["total"])
    opening = rng.choice(said["opening"]).format(name=name, m=money(start), P=start, p=p)
    if difficulty == 1:
        return paragraph(opening, rng.choice(said["one"])), work
    if difficulty == 2:
        return paragraph(opening, rng.choice(said["after"]).format(n="one year")), work
    if difficulty == 3:
        return paragraph(opening, said["simple"].format(p=p), rng.choice(said["after"]).format(n=WORDS["years"][str(n)])), work
    if kind == "bank" and rng.random() < 0.5:  # some is taken out: drawn once the deposit is told
        taken = rng.randint(2, value - 1)
        work.sub("balance left", value, taken)
        return paragraph(opening, said["compound"],
                         f"After two years {name} takes out {money(taken)}. How much is left in the account?"), work
    return paragraph(opening, said["compound"], rng.choice(said["after"]).format(n="two years")), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


@lru_cache(maxsize=None)
def _starts(difficulty: int, sign: int, p: int, n: int) -> list[int]:
    """The starting amounts whose every step stays whole and below the cap: p percent of it (level
    1), one year's change (2), n years of simple change (3), two years of compound change (4)."""
    cap, starts = CAP[difficulty], []
    for start in range(1, cap):
        if start * p % 100:
            continue
        change = start * p // 100
        if difficulty == 2:
            ok = 1 <= start + sign * change < cap
        elif difficulty == 3:
            ok = change >= 2 and n * change < cap and 1 <= start + sign * n * change < cap
        elif difficulty == 4:
            value = start + sign * change
            ok = 1 <= value < cap and value * p % 100 == 0 and 3 <= value + sign * (value * p // 100) < cap
        else:
            ok = True
        if ok:
            starts.append(start)
    return starts


def _years(work: Work, difficulty: int, sign: int, p: int, start: int, n: int, amount: str, total: str) -> int:
    """The steps (no draws; the starts keep them all whole): p percent of the start at level 1, one
    year at 2, n years of simple change at 3, two years of compound change at 4. Returns the
    last value."""

    def one_year(label_amount: str, label_total: str, value: int) -> int:
        change = work.pct(label_amount, p, value)
        return work.add(label_total, value, change) if sign > 0 else work.sub(label_total, value, change)

    if difficulty == 1:
        return work.pct(amount, p, start)
    if difficulty == 2:
        return one_year(amount, total, start)
    if difficulty == 3:
        yearly = work.pct(f"{amount} each year", p, start)
        change = work.mul(f"total {amount}", yearly, n)
        return work.add(total, start, change) if sign > 0 else work.sub(total, start, change)
    value = one_year(f"year one {amount}", f"{total} after year one", start)
    return one_year(f"year two {amount}", f"{total} after year two", value)
