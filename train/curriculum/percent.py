"""percent: parts of a group, discounts and price rises."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import lru_cache
from math import gcd

from .core import CAP, PERCENTS, Work, family, most_to_pay, num, payment, pick
from .wording import NAMES, money_style, paragraph, words

WORDS = words("percent")
PART_SCENES = WORDS["part_scenes"]  # [things, where, three kinds that split them]
PRICED = WORDS["priced"]  # [one, many]
_PERCENT_PAIRS = [(p1, p2) for p1 in PERCENTS for p2 in PERCENTS]


@family
def percent(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Percentages: a part of a group and what is left, a discount or a rise in price."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        things, where, kinds = rng.choice(PART_SCENES)
        p1, p2, base = _parts(rng, work, difficulty, kinds)
        return _tell_parts(rng, difficulty, p1, p2, base, things, where, kinds), work

    money = money_style(rng)
    sg, pl = rng.choice(PRICED)
    rise, p, price, new = _new_price(rng, work, difficulty)
    facts = [_tell_new_price(rng, difficulty, rise, p, price, name, sg, money)]
    if difficulty == 1:
        asked = rng.choice(["How much is the discount?", "How much money does the discount save?",
                            f"How much does {name} save?" if "coupon" in facts[0] else "How much is taken off the price?"])
        return paragraph(*facts, asked), work
    if difficulty == 2:
        asked = rng.choice(["What is the new price?", f"How much does the {sg} cost now?"] if rise else
                           ["What is the sale price?", f"How much does the {sg} cost after the discount?",
                            "What is the price after the discount?"])
        return paragraph(*facts, asked), work
    # how many are bought at the new price: drawn once the price is told
    most = work.cap - 1 if difficulty == 3 else most_to_pay(work.cap)
    q = num(rng, 2, min(12, most // new))
    total = work.mul("total cost", q, new)
    if difficulty == 3:
        asked = rng.choice([f"How much do {q} {pl} cost at the new price?" if rise else f"How much do {q} {pl} cost in the sale?",
                            f"{name} buys {q} {pl}. How much does {name} pay?"])
        return paragraph(*facts, asked), work
    paid = payment(rng, total, work.cap)
    work.sub("change", paid, total)
    buys = rng.choice([f"{name} buys {q} {pl} and pays with {money(paid)}.",
                       f"{name} pays for {q} {pl} with {money(paid)}."])
    asked = rng.choice([f"How much change does {name} get?", f"How much money does {name} get back?"])
    return paragraph(*facts, buys, asked), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _multiple_for(p: int) -> int:
    """The smallest base that p percent divides exactly."""
    return 100 // gcd(p, 100)


@lru_cache(maxsize=None)
def _group_sizes(difficulty: int, p1: int, p2: int) -> list[int]:
    """The sizes of a group that keep every part whole and below the cap: p1 percent of it, the
    rest, and from level 3 p2 percent of the rest and what remains."""
    sizes = []
    for base in range(_multiple_for(p1), CAP[difficulty], _multiple_for(p1)):
        rest = base - base * p1 // 100
        if difficulty < 3 or rest * p2 % 100 == 0:
            sizes.append(base)
    return sizes


@lru_cache(maxsize=None)
def _prices(difficulty: int, p: int, rise: bool) -> list[int]:
    """The prices that p percent off (or, with `rise`, p percent on, at most 50) keeps whole and
    below the cap; from level 3 leaving room to buy at least two at the new price (and, at level
    4, to get change from a round payment)."""
    cap = CAP[difficulty]
    most = {1: cap - 1, 2: cap - 1, 3: (cap - 1) // 2, 4: most_to_pay(cap) // 2}[difficulty]
    if rise and p > 50:
        return []
    prices = []
    for price in range(_multiple_for(p), cap, _multiple_for(p)):
        new = price + price * p // 100 if rise else price - price * p // 100
        if (2 if difficulty >= 3 else 1) <= new <= most:  # from level 3 the new price is a factor
            prices.append(price)
    return prices


def _parts(rng: random.Random, work: Work, difficulty: int, kinds: list[str]) -> tuple[int, int, int]:
    """(p1, p2, base): p1 percent of a group of `base` are of the first kind; from level 2 the
    rest, from level 3 p2 percent of the rest, at level 4 what remains. The sizes drawn from keep
    every step whole, so no step after the first redraws."""
    kind1, kind2, kind3 = kinds
    p1, p2 = pick(rng, [pair for pair in _PERCENT_PAIRS if _group_sizes(difficulty, *pair)])
    base = rng.choice(_group_sizes(difficulty, p1, p2))
    part = work.pct(kind1, p1, base)
    if difficulty >= 2:
        rest = work.sub("the rest", base, part)
    if difficulty >= 3:
        second = work.pct(kind2, p2, rest)
    if difficulty == 4:
        work.sub(kind3, rest, second)
    return p1, p2, base


def _new_price(rng: random.Random, work: Work, difficulty: int) -> tuple[bool, int, int, int]:
    """(whether the price rises, by or off what percent, the price, the new price): the change,
    then from level 2 the new price, as steps."""
    rise = difficulty in (2, 3) and rng.random() < 0.3
    p = pick(rng, [p for p in PERCENTS if _prices(difficulty, p, rise)])
    price = rng.choice(_prices(difficulty, p, rise))
    if rise:
        work.pct("increase", p, price)
        new = work.add("new price", price, work.result)
    else:
        work.pct("discount", p, price)
        new = work.sub("sale price", price, work.result) if difficulty > 1 else 0
    return rise, p, price, new


# ---------------------------------------------------------------------------------------
# The wording


def _tell_parts(rng: random.Random, difficulty: int, p1: int, p2: int, base: int, things: str, where: str,
                kinds: list[str]) -> str:
    kind1, kind2, kind3 = kinds
    whole = rng.choice([f"there are {base} {things} {where}.", f"{where}, there are {base} {things}."])
    share = rng.choice([f"{p1}% of them are {kind1}.", f"{p1}% of the {things} are {kind1}.",
                        f"of these, {p1}% are {kind1}."])
    facts = [whole, share] if rng.random() < 0.7 else [f"{p1}% of the {things} {where} are {kind1}.",
                                                       f"there are {base} {things} in all."]
    if difficulty == 1:
        asked = rng.choice([f"How many {things} are {kind1}?", f"How many of the {things} are {kind1}?"])
        return paragraph(*facts, asked)
    if difficulty == 2:
        asked = rng.choice([f"How many {things} are not {kind1}?", f"How many of the {things} are not {kind1}?"])
        return paragraph(*facts, asked)
    facts.append(rng.choice([f"{p2}% of the rest are {kind2}.", f"of the others, {p2}% are {kind2}."]))
    if difficulty == 3:
        asked = rng.choice([f"How many {things} are {kind2}?", f"How many of the {things} are {kind2}?"])
        return paragraph(*facts, asked)
    facts.append(rng.choice([f"the remaining {things} are {kind3}.", f"all the others are {kind3}."]))
    asked = rng.choice([f"How many {things} are {kind3}?", f"How many of the {things} are {kind3}?"])
    return paragraph(*facts, asked)


def _tell_new_price(rng: random.Random, difficulty: int, rise: bool, p: int, price: int, name: str, sg: str,
                    money: Callable[[int], str]) -> str:
    if rise:
        return rng.choice([f"a {sg} costs {money(price)}. Next month the price goes up by {p}%.",
                           f"the price of a {sg} is {money(price)}, and it will rise by {p}%.",
                           f"prices rise by {p}% next month. A {sg} costs {money(price)} now."])
    if difficulty == 1:
        return rng.choice([f"a {sg} costs {money(price)}, and the shop takes {p}% off.",
                           f"in a sale, every {sg} is {p}% off. A {sg} usually costs {money(price)}.",
                           f"{name} has a coupon for {p}% off a {sg} that costs {money(price)}."])
    return rng.choice([f"a {sg} costs {money(price)}. It is on sale with {p}% off.",
                       f"in a sale, every {sg} is {p}% off. A {sg} usually costs {money(price)}.",
                       f"the price of a {sg} is {money(price)}, and the shop gives {p}% off.",
                       f"{name} sees a {sg} priced at {money(price)} with a {p}% discount."])
