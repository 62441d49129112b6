"""average: the mean, a total from a mean, a missing value."""

from __future__ import annotations

import random

from .core import Work, family, num
from .wording import NAMES, and_list, paragraph, words

WORDS = words("average")
SCENES = WORDS["scenes"]  # [who did it, what is counted, one slot, slots]
DAYS = WORDS["days"]


@family
def average(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Means: a total from a mean, the mean of a list, a missing value for a target mean."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    who, thing, slot, slots = rng.choice(SCENES)
    who = who.format(name=name)
    missing = difficulty >= 3 and rng.random() < 0.5
    n, mean = _count_and_mean(rng, difficulty, missing, work.cap)
    # drawn for every question, before the values
    mean_q = rng.choice([f"What is the average number of {thing} per {slot}?", "What is the mean?",
                         f"On average, how many {thing} per {slot}?", f"What is the mean number of {thing} per {slot}?"])
    if difficulty == 1:
        work.mul(f"total {thing}", n, mean)
        return _tell_total(rng, who, thing, slot, slots, n, mean), work
    values = _values_with_mean(rng, n, mean)
    if missing:
        needed = work.mul(f"total {thing}", n, mean)
        known = work.add_up(values[:-1], "known total")
        work.sub(f"last {slot}", needed, known)
        return _tell_missing(rng, who, thing, slot, slots, values, mean), work
    total = work.add_up(values, "total")
    work.div("average", total, n)
    return paragraph(_tell_values(rng, who, thing, slot, slots, values), mean_q), work


# ---------------------------------------------------------------------------------------
# The numbers


def _count_and_mean(rng: random.Random, difficulty: int, missing: bool, cap: int) -> tuple[int, int]:
    """(how many values, their mean): the total, n times the mean, stays below the cap."""
    if difficulty == 1:
        n = rng.randint(2, 9)
    elif missing:
        n = rng.choice({3: (3, 4), 4: (5, 6, 7)}[difficulty])
    else:
        n = {2: rng.choice((2, 3)), 3: rng.choice((4, 5)), 4: rng.choice((6, 7))}[difficulty]
    return n, num(rng, 2, (cap - 1) // n)


def _values_with_mean(rng: random.Random, n: int, mean: int) -> list[int]:
    """n values within half the mean of it, drawn one by one so that the last one fits too."""
    low, high = max(1, mean - mean // 2), mean + mean // 2
    values, left = [], n * mean
    for i in range(n - 1):
        rest = n - 1 - i  # values still to come after this one
        values.append(rng.randint(max(low, left - rest * high), min(high, left - rest * low)))
        left -= values[-1]
    values.append(left)
    rng.shuffle(values)
    return values


# ---------------------------------------------------------------------------------------
# The wording


def _tell_total(rng: random.Random, who: str, thing: str, slot: str, slots: str, n: int, mean: int) -> str:
    told = rng.choice([f"{who} an average of {mean} {thing} per {slot} over {n} {slots}.",
                       f"over {n} {slots}, {who} {mean} {thing} per {slot} on average.",
                       f"for {n} {slots}, {who} {mean} {thing} a {slot} on average.",
                       f"{who} {mean} {thing} per {slot} on average, for {n} {slots}."])
    asked = rng.choice([f"How many {thing} is that in total?", f"How many {thing} altogether?",
                        f"What is the total number of {thing}?", f"How many {thing} in all?"])
    return paragraph(told, asked)


def _tell_missing(rng: random.Random, who: str, thing: str, slot: str, slots: str, values: list[int],
                  mean: int) -> str:
    """All values but the last, and the mean they must make."""
    n, known = len(values), and_list([str(v) for v in values[:-1]])
    told = rng.choice([f"{who} {known} {thing} in the first {n - 1} {slots}.",
                       f"in the first {n - 1} {slots}, {who} {known} {thing}."])
    target = rng.choice([f"the average over {n} {slots} is {mean} {thing}.",
                         f"after {n} {slots} the mean is {mean} {thing} per {slot}."])
    facts = [told, target] if rng.random() < 0.5 else [target, told]
    on = "on" if slot == "day" else "in"
    asked = rng.choice([f"How many {thing} {on} the last {slot}?", f"What was the number of {thing} {on} the last {slot}?"])
    return paragraph(*facts, asked)


def _tell_values(rng: random.Random, who: str, thing: str, slot: str, slots: str, values: list[int]) -> str:
    n = len(values)
    listed = and_list([str(v) for v in values])
    forms = [f"in {n} {slots}, {who} {listed} {thing}.",
             f"over {n} {slots}, {who} these numbers of {thing}: {listed}.",
             f"{who} {listed} {thing} in {n} {slots}."]
    if slot == "day":
        days = [f"{values[0]} {thing} on {DAYS[0]}"] + [f"{v} on {d}" for v, d in zip(values[1:], DAYS[1:])]
        forms.append(f"{who} " + and_list(days) + ".")
    return rng.choice(forms)
