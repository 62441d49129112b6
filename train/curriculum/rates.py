"""rates: so much per hour, day or minute; unit conversion; periods at several rates."""

from __future__ import annotations

import random

from .core import Work, factors, family, num
from .wording import NAMES, paragraph, words

WORDS = words("rates")
# [who does it, what is counted, per what, step label, [bigger unit, its size] or null]
SCENES = WORDS["scenes"]
ORDINALS = ["first", "second", "third"]


@family
def rates(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Rate times time, the rate from a total, unit conversion, periods at two rates, a goal."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    shape = {1: rng.choice(["times", "rate"]),
             2: rng.choice(["convert", "unitary", "unitary time"]),
             3: rng.choice(["two periods", "goal time"]),
             4: rng.choice(["two periods left", "three periods left"])}[difficulty]
    # a conversion to a bigger unit only where two of them at two a unit stay below the cap
    scenes = [s for s in SCENES if s[4] and 4 * s[4][1] < work.cap] if shape == "convert" else SCENES
    does, thing, per, label, bigger = rng.choice(scenes)
    does = does.format(name=name)
    how_many = rng.choice(WORDS["how_many"])  # drawn for every shape, before its numbers
    if "periods" not in shape:
        numbers = _solve(rng, work, shape, thing, per, label, bigger)
        return _tell(rng, shape, numbers, how_many, does, thing, per, bigger), work
    periods, total = _periods(rng, work, shape, thing)
    facts = [_tell_periods(rng, periods, does, thing, per)]
    if not shape.endswith("left"):
        return paragraph(*facts, rng.choice([f"How many {thing} is that in total?", f"How many {thing} altogether?"])), work
    # what is left of a goal: drawn once the periods are told
    goal = total + num(rng, 2, work.cap - 1 - total)
    work.sub(f"{thing} left", goal, total)
    facts.insert(rng.randint(0, 1), rng.choice([f"the goal is {goal} {thing}.", f"the target is {goal} {thing} in all."]))
    asked = rng.choice([f"How many more {thing} are needed to reach the goal?", f"How many {thing} are still to go?"])
    return paragraph(*facts, asked), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _solve(rng: random.Random, work: Work, shape: str, thing: str, per: str, label: str,
           bigger: list | None) -> tuple[int, ...]:
    """The numbers of a one-rate shape, its steps in `work`."""
    cap, pers = work.cap, per + "s"
    if shape == "times":
        t, r = factors(rng, cap - 1)
        if rng.random() < 0.5:
            t, r = r, t
        work.mul(label, t, r)
        return t, r
    if shape == "rate":
        t, r = factors(rng, cap - 1)
        total = t * r  # drawn as a product so that the rate is whole
        work.div(f"{thing} per {per}", total, t)
        return t, total
    if shape == "convert":
        unit, size = bigger
        t = num(rng, 2, (cap - 1) // (2 * size))
        r = num(rng, 2, (cap - 1) // (t * size))
        n = work.mul(f"{pers} in {unit}s", t, size)
        work.mul(label, n, r)
        return t, r
    if shape == "unitary":
        r = num(rng, 2, (cap - 1) // 3)
        t1, t2 = rng.sample(range(2, min(12, (cap - 1) // r) + 1), 2)
        rate = work.div(f"{thing} per {per}", t1 * r, t1)
        work.mul(label, t2, rate)
        return t1, t2, r
    if shape == "unitary time":  # the rate from one total, then the time another total takes
        r = num(rng, 2, min(12, (cap - 1) // 3))
        t1, t2 = rng.sample(range(2, min(12, (cap - 1) // r) + 1), 2)
        rate = work.div(f"{thing} per {per}", t1 * r, t1)
        work.div(f"{pers} needed", t2 * r, rate)
        return t1, t2, r
    # goal time
    r = num(rng, 2, min(12, (cap - 1) // 4))
    t = num(rng, 2, (cap - 1) // r - 2)
    more = num(rng, 2, min(12, (cap - 1) // r - t))
    done = work.mul(f"{thing} so far", t, r)
    left = r * more
    goal = done + left
    work.sub(f"{thing} left", goal, done)
    work.div(f"{pers} needed", left, r)
    return t, r, goal


def _periods(rng: random.Random, work: Work, shape: str, thing: str) -> tuple[list[tuple[int, int]], int]:
    """Two or three periods at their own rates, (time, rate) each, and the total they make."""
    k = 3 if shape.startswith("three") else 2
    # the periods share what stays below the cap, less room for the goal; then the order is mixed
    left = work.cap - 1 - (2 if shape.endswith("left") else 0)
    periods = []
    for i in range(k):
        t, rate = factors(rng, left - 4 * (k - 1 - i))
        if rng.random() < 0.5:
            t, rate = rate, t
        left -= t * rate
        periods.append((t, rate))
    rng.shuffle(periods)
    parts = [work.mul(f"{ORDINALS[i]} part", t, rate) for i, (t, rate) in enumerate(periods)]
    return periods, work.add(f"total {thing}", *parts)


# ---------------------------------------------------------------------------------------
# The wording


def _rate(rng: random.Random, does: str, r: int, thing: str, per: str) -> str:
    return rng.choice(WORDS["rate"]).format(does=does, r=r, thing=thing, per=per)


def _tell(rng: random.Random, shape: str, numbers: tuple[int, ...], how_many: str, does: str, thing: str,
          per: str, bigger: list | None) -> str:
    pers = per + "s"
    if shape == "times":
        t, r = numbers
        return paragraph(_rate(rng, does, r, thing, per) + ".", how_many.format(thing=thing, t=t, pers=pers))
    if shape == "rate":
        t, total = numbers
        told = rng.choice([f"{does} {total} {thing} in {t} {pers}.", f"in {t} {pers}, {does} {total} {thing}."])
        asked = rng.choice([f"How many {thing} per {per} is that?", f"What is the rate in {thing} per {per}?",
                            f"How many {thing} is that each {per}, at a steady rate?"])
        return paragraph(told, asked)
    if shape == "convert":
        t, r = numbers
        return paragraph(_rate(rng, does, r, thing, per) + ".",
                         rng.choice(WORDS["in_bigger_units"]).format(thing=thing, t=t, unit=bigger[0]))
    if shape == "unitary":
        t1, t2, r = numbers
        told = rng.choice([f"{does} {t1 * r} {thing} in {t1} {pers}.", f"in {t1} {pers}, {does} {t1 * r} {thing}."])
        asked = rng.choice([f"At the same rate, how many {thing} in {t2} {pers}?",
                            f"How many {thing} in {t2} {pers} at the same rate?"])
        return paragraph(told, asked)
    if shape == "unitary time":
        t1, t2, r = numbers
        told = rng.choice([f"{does} {t1 * r} {thing} in {t1} {pers}.", f"in {t1} {pers}, {does} {t1 * r} {thing}."])
        asked = rng.choice([f"At the same rate, how many {pers} does it take to reach {t2 * r} {thing}?",
                            f"How many {pers} are needed for {t2 * r} {thing} at the same rate?"])
        return paragraph(told, asked)
    t, r, goal = numbers  # goal time
    told = rng.choice([f"{does} {r} {thing} per {per}. The goal is {goal} {thing}.",
                       f"the goal is {goal} {thing}, and {does} {r} {thing} each {per}."])
    asked = rng.choice([f"After {t} {pers}, how many more {pers} are needed to reach the goal?",
                        f"{t} {pers} have passed. How many more {pers} until the goal is reached?"])
    return paragraph(told, asked)


def _tell_periods(rng: random.Random, periods: list[tuple[int, int]], does: str, thing: str, per: str) -> str:
    pers = per + "s"
    told = [_rate(rng, does, periods[0][1], thing, per) + f" for {periods[0][0]} {pers}"]
    for t, rate in periods[1:]:
        told.append(rng.choice([f"then {rate} {thing} per {per} for {t} {pers}", f"then {rate} {thing} each {per} for {t} {pers}",
                                f"then for {t} {pers} at {rate} {thing} per {per}"]))
    return ", ".join(told) + "."
