"""ages: ages related by differences and multiples, now, later and earlier."""

from __future__ import annotations

import random

from .core import Work, family, num, pick, top
from .wording import NAMES, and_list, paragraph


@family
def ages(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Ages linked by years older or younger and times as old, then later, earlier or summed."""
    work = Work(difficulty)
    # (how many people follow the first, what is asked)
    links, asked_for = {1: (1, "now"), 2: (1, "then"),
                        3: rng.choice([(2, "then"), (3, "now")]),
                        4: rng.choice([(3, "then"), (2, "sum then")])}[difficulty]
    people = rng.sample(NAMES, links + 1)
    # the oldest anyone may be: below the cap, at most 99, and with room for the sum of three
    oldest = min(work.cap - 1, 60 if asked_for == "sum then" else 99)
    known = num(rng, 2, top(difficulty, 15, 40, 60, 60))
    first = rng.choice([f"{people[0]} is {known} years old.", f"{people[0]} is {known}.", f"{people[0]}'s age is {known}.",
                        f"{people[0]} has just turned {known}.", f"{people[0]} is {known} years old today."])
    # the chain, one link at a time: its numbers and step, then its sentence
    ages_now, relations = [known], []
    for before, person in zip(people, people[1:]):
        kind, by, age = _link(rng, work, ages_now[-1], oldest, person, before)
        relations.append(_tell_link(rng, kind, by, person, before))
        ages_now.append(age)
    # the facts in any order: the chain is the same whichever sentence comes first
    facts = [first] + rng.sample(relations, len(relations))
    if rng.random() < 0.3:
        facts = facts[1:] + facts[:1]
    later, n = _years_on(rng, work, asked_for, ages_now, people[-1])
    return paragraph(*facts, _ask(rng, asked_for, later, n, people)), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _link(rng: random.Random, work: Work, age: int, oldest: int, person: str, before: str) -> tuple[str, int, int]:
    """How `person` relates to `before`, who is `age`: (kind, by how many years or times, the
    age of `person`), and the step that restates the relation."""
    kind = pick(rng, [kind for kind, fits in [("older", age + 2 <= oldest), ("younger", age >= 3),
                                               ("times", 2 <= age <= oldest // 2), ("half", age % 2 == 0)] if fits])
    if kind == "older":
        d = num(rng, 2, min(30, oldest - age))
        return kind, d, work.add(f"{person} is {d} years older than {before}", age, d)
    if kind == "younger":
        d = num(rng, 2, min(30, age - 1))
        return kind, d, work.sub(f"{person} is {d} years younger than {before}", age, d)
    if kind == "times":
        k = num(rng, 2, min(4, oldest // age))
        return kind, k, work.mul(f"{person} is {_times(k)} as old as {before}", age, k)
    return kind, 2, work.div(f"{person} is half as old as {before}", age, 2)


def _years_on(rng: random.Random, work: Work, asked_for: str, ages_now: list[int], last: str) -> tuple[bool, int]:
    """(whether years are added rather than taken away, how many), and the steps to the answer:
    later (n years added) or earlier (n taken away), whichever keeps the age from 1 to the cap."""
    later = ages_now[-1] < 3 or (ages_now[-1] + 2 < work.cap and rng.random() < 0.5)
    n = 0
    if asked_for == "sum then":  # three times n years added to the sum stays below the cap
        n = num(rng, 2, min(12, (work.cap - 1 - sum(ages_now)) // 3))
        total = work.add("sum of ages", *ages_now)
        added = work.mul("years added", 3, n)
        work.add("sum then", total, added)
    elif asked_for == "then":
        n = num(rng, 2, min(12, work.cap - 1 - ages_now[-1] if later else ages_now[-1] - 1))
        if later:
            work.add(f"{last} in {n} years", ages_now[-1], n)
        else:
            work.sub(f"{last} {n} years ago", ages_now[-1], n)
    return later, n


# ---------------------------------------------------------------------------------------
# The wording


def _times(k: int) -> str:
    return "twice" if k == 2 else f"{k} times"


def _tell_link(rng: random.Random, kind: str, by: int, person: str, before: str) -> str:
    if kind == "older":
        return rng.choice([f"{person} is {by} years older than {before}.",
                           f"{before} is {by} years younger than {person}.",
                           f"{person} was born {by} years before {before}."])
    if kind == "younger":
        return rng.choice([f"{person} is {by} years younger than {before}.",
                           f"{before} is {by} years older than {person}.",
                           f"{person} was born {by} years after {before}."])
    if kind == "times":
        return rng.choice([f"{person} is {_times(by)} as old as {before}.",
                           f"{person}'s age is {_times(by)} {before}'s age."])
    return rng.choice([f"{person} is half as old as {before}.",
                       f"{person}'s age is half of {before}'s age."])


def _ask(rng: random.Random, asked_for: str, later: bool, n: int, people: list[str]) -> str:
    last = people[-1]
    if asked_for == "now":
        return rng.choice([f"How old is {last}?", f"What is {last}'s age?", f"How old is {last} now?",
                           f"How many years old is {last}?", f"Can you work out how old {last} is?"])
    if asked_for == "sum then":
        return rng.choice([f"What will the sum of their three ages be in {n} years?",
                           f"In {n} years, what will the ages of {and_list(people)} add up to?"])
    if later:
        return rng.choice([f"How old will {last} be in {n} years?", f"What will {last}'s age be {n} years from now?",
                           f"In {n} years, how old will {last} be?", f"How old will {last} be {n} years from today?"])
    return rng.choice([f"How old was {last} {n} years ago?", f"What was {last}'s age {n} years ago?",
                       f"{n} years ago, how old was {last}?", f"How old was {last} {n} years before today?"])
