"""groups: packs of equal size, things left over, sharing equally."""

from __future__ import annotations

import random

from .core import Work, factors, family, num, pick
from .wording import NAMES, paragraph, words

WORDS = words("groups")
PACKS = WORDS["packs"]  # [container, containers, things, kinds of the things]
SHARERS = WORDS["sharers"]  # [one, many]


@family
def groups(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Equal groups: packs times their size, things left over, shared equally."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    box, boxes, things, kinds = rng.choice(PACKS)
    sharer, sharers = rng.choice(SHARERS)
    shape = {1: rng.choice(["packs", "share", "fill"]),
             2: rng.choice(["packs used", "packs loose", "packs share"]),
             3: rng.choice(["kinds", "packs used share"]),
             4: rng.choice(["kinds share", "kinds used share"])}[difficulty]
    if shape in ("share", "fill"):
        k, each = factors(rng, work.cap - 1)
        total = k * each
        if shape == "share":
            work.div(f"{things} each", total, k)
        else:
            work.div(f"{boxes} filled", total, k)
        return _tell_division(rng, shape, total, k, name, box, boxes, things, sharer, sharers), work
    # the packs, then what happens to what they hold: each part is told once its numbers are drawn
    if shape.startswith("packs"):
        total, packed = _packs(rng, work, shape, things, boxes)
    else:
        total, packed = _two_kinds(rng, work, shape, things, boxes, kinds)
    facts = [_tell_packs(rng, packed, name, box, boxes, things)]
    then = _then(rng, work, shape, total, things)
    return paragraph(*facts, *_tell_then(rng, shape, then, name, box, things, sharer, sharers)), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _most(work: Work, shape: str) -> int:
    """The most the packs may hold: room is left for what the later steps add (loose things)."""
    return work.cap - 1 - (2 if shape.endswith("loose") else 0)


def _packs(rng: random.Random, work: Work, shape: str, things: str, boxes: str) -> tuple[int, dict]:
    """q packs of k: (the total, the numbers to tell)."""
    q, k = factors(rng, _most(work, shape))
    return work.mul(f"{things} in the {boxes}", q, k), dict(q=q, k=k)


def _two_kinds(rng: random.Random, work: Work, shape: str, things: str, boxes: str,
               kinds: list[str]) -> tuple[int, dict]:
    """q1 packs of k1 of one kind and q2 of k2 of another: (the total, the numbers to tell)."""
    most = _most(work, shape)
    c1, c2 = rng.sample(kinds, 2)
    q1, k1 = factors(rng, most - 4)
    q2, k2 = factors(rng, most - q1 * k1)
    first = work.mul(f"{c1} {things}", q1, k1)
    second = work.mul(f"{c2} {things}", q2, k2)
    return work.add(f"total {things}", first, second), dict(c1=c1, c2=c2, q1=q1, k1=k1, q2=q2, k2=k2)


def _then(rng: random.Random, work: Work, shape: str, total: int, things: str) -> dict[str, int]:
    """What happens to the things packed, with its steps: loose ones added, some used, the rest
    (or all) shared equally; the numbers to tell."""
    if shape.endswith("loose"):
        extra = num(rng, 2, work.cap - 1 - total)
        work.add(f"total {things}", total, extra)
        return dict(extra=extra)
    if shape.endswith("share"):
        left = total
        if "used" in shape:  # what is left after some are used shares exactly
            k = num(rng, 2, min(12, (total - 1) // 2))
            left = k * num(rng, 2, (total - 1) // k)
            work.sub(f"{things} left", total, total - left)
        else:  # the total shares exactly
            k = pick(rng, [k for k in range(2, 13) if total % k == 0 and total > k])
        work.div(f"{things} each", left, k)
        return dict(used=total - left, k=k)
    if shape.endswith("used"):
        used = num(rng, 2, total - 1)
        work.sub(f"{things} left", total, used)
        return dict(used=used)
    return {}


# ---------------------------------------------------------------------------------------
# The wording


def _tell_division(rng: random.Random, shape: str, total: int, k: int, name: str, box: str, boxes: str,
                   things: str, sharer: str, sharers: str) -> str:
    if shape == "share":
        told = rng.choice([
            f"{name} has {total} {things} and shares them equally among {k} {sharers}.",
            f"{total} {things} are shared equally between {k} {sharers}.",
            f"{k} {sharers} share {total} {things} equally.",
        ])
        asked = rng.choice([f"How many {things} does each {sharer} get?",
                            f"How many {things} are there for each {sharer}?"])
    else:
        told = rng.choice([
            f"{name} packs {total} {things} into {boxes} of {k}.",
            f"each {box} holds {k} {things}, and {name} has {total} {things} to pack.",
            f"{name} has {total} {things}. They go into {boxes} that hold {k} each.",
        ])
        asked = rng.choice([f"How many {boxes} can {name} fill?", f"How many {boxes} are needed?",
                            f"How many full {boxes} does {name} get?"])
    return paragraph(told, asked)


def _tell_packs(rng: random.Random, packed: dict, name: str, box: str, boxes: str, things: str) -> str:
    if "k" in packed:
        q, k = packed["q"], packed["k"]
        return rng.choice([
            f"{name} has {q} {boxes} of {things} with {k} {things} in each.",
            f"there are {k} {things} in each {box}, and {name} has {q} {boxes}.",
            f"{name} buys {q} {boxes} of {things}. Each {box} holds {k}.",
            f"each {box} has {k} {things} in it. {name} fills {q} {boxes}.",
        ])
    c1, c2, q1, k1, q2, k2 = (packed[key] for key in ("c1", "c2", "q1", "k1", "q2", "k2"))
    return rng.choice([
        f"{name} has {q1} {boxes} of {c1} {things} with {k1} in each, and {q2} {boxes} of {c2} {things} with {k2} in each.",
        f"there are {k1} {c1} {things} in each of {q1} {boxes}, and {k2} {c2} {things} in each of {q2} {boxes}.",
        f"{name} buys {q1} {boxes} of {c1} {things} and {q2} {boxes} of {c2} {things}. A {box} of {c1} {things} holds {k1} and a {box} of {c2} {things} holds {k2}.",
    ])


def _tell_then(rng: random.Random, shape: str, then: dict[str, int], name: str, box: str, things: str,
               sharer: str, sharers: str) -> list[str]:
    """What happens to the things packed, and the question."""
    if shape.endswith("loose"):
        extra = then["extra"]
        told = rng.choice([f"there are also {extra} loose {things}.",
                           f"{name} has {extra} more {things} that are not in a {box}."])
        return [told, rng.choice([f"How many {things} are there in all?", f"How many {things} does {name} have altogether?"])]
    if shape.endswith("share"):
        used, k, told = then["used"], then["k"], []
        if used:
            told.append(rng.choice([f"{name} uses {used} of them.", f"{used} of the {things} are given away first.",
                                    f"{name} keeps {used} {things} aside."]))
        told.append(rng.choice([
            f"the {'other ' if used else ''}{things} are shared equally among {k} {sharers}.",
            f"{name} shares the {'rest' if used else things} equally between {k} {sharers}.",
        ]))
        return told + [rng.choice([f"How many {things} does each {sharer} get?",
                                   f"How many {things} are there for each {sharer}?"])]
    if shape.endswith("used"):
        used = then["used"]
        told = rng.choice([f"{name} uses {used} of them.", f"{name} gives away {used} {things}.",
                           f"{used} of the {things} get broken."])
        return [told, rng.choice([f"How many {things} are left?", f"How many {things} does {name} have left?"])]
    return [rng.choice([f"How many {things} are there in all?", f"How many {things} does {name} have altogether?",
                        f"How many {things} is that in total?"])]
