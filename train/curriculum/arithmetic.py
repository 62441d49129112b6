"""arithmetic: a count that goes up and down, one event a step."""

from __future__ import annotations

import random

from .core import CAP, Work, family, n_steps
from .wording import NAMES, paragraph, words

WORDS = words("arithmetic")
GAINS = WORDS["gains"]  # [event, step label]
LOSSES = WORDS["losses"]


@family
def arithmetic(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """A count that changes: things found, bought, given or lost, one event a step."""
    name, other = rng.sample(NAMES, 2)
    things = rng.choice(WORDS["collections"])
    work, start, events = _count(rng, difficulty)
    return _tell(rng, start, events, name=name, other=other, things=things), work


def _count(rng: random.Random, difficulty: int) -> tuple[Work, int, list[tuple[str, int]]]:
    """The count at the start and one event a step, (event, how many); an event is drawn with
    its step, whose label it gives."""
    cap, work = CAP[difficulty], Work(difficulty)
    start = rng.randint(cap // 10 + 3, cap * 3 // 4)
    now, events = start, []
    for _ in range(n_steps(rng, difficulty)):
        if now + 3 < cap and (now < 5 or rng.random() < 0.5):
            n = rng.randint(2, min(cap - 1 - now, max(2, cap // 3)))
            event, label = rng.choice(GAINS)
            now = work.add(label, now, n)
        else:
            n = rng.randint(2, min(now - 1, max(2, cap // 3)))
            event, label = rng.choice(LOSSES)
            now = work.sub(label, now, n)
        events.append((event, n))
    return work, start, events


def _tell(rng: random.Random, start: int, events: list[tuple[str, int]], **cast: str) -> str:
    """The events in order and the question; the starting count first or, at times, last."""
    told = [event.format(n=n, **cast) + "." for event, n in events]
    told = told[:1] + [rng.choice(WORDS["linkers"]) + event for event in told[1:]]
    question = rng.choice(WORDS["questions"]).format(**cast)
    if rng.random() < 0.3:
        opening = rng.choice(WORDS["openings_told_last"]).format(n=start, **cast)
        return paragraph(*told, opening, question)
    opening = rng.choice(WORDS["openings"]).format(n=start, **cast)
    return paragraph(opening, *told, question)
