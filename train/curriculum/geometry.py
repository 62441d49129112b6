"""geometry: perimeter and area of squares, rectangles and triangles, and what they cost."""

from __future__ import annotations

import random
from collections.abc import Callable

from .core import Redraw, Work, family, most_to_pay, num, payment
from .wording import NAMES, money_style, paragraph, words

WORDS = words("geometry")
RECTANGLES = WORDS["rectangles"]  # [thing, unit]
OUTDOORS = WORDS["outdoors"]  # fenced, turfed, paved: measured in metres
TRIANGLES = WORDS["triangles"]  # [thing, unit]
UNIT_WORDS = WORDS["unit_words"]  # unit: [one, many]


@family
def geometry(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Perimeter and area: squares, rectangles, triangles, composite shapes and their costs."""
    work, money = Work(difficulty), money_style(rng)
    name = rng.choice(NAMES)
    shape = {1: rng.choice(["square perimeter", "area", "triangle", "square side"]),
             2: rng.choice(["perimeter", "square fence", "area cost"]),
             3: rng.choice(["perimeter cost", "two areas", "width then area"]),
             4: rng.choice(["two areas cost", "perimeter cost change", "area minus cost"])}[difficulty]
    # priced and composite shapes are outdoors, measured in metres
    outdoors = shape not in ("square perimeter", "area", "square side", "perimeter", "width then area")
    obj, u = (rng.choice(OUTDOORS), "m") if outdoors else rng.choice(RECTANGLES)
    price, l, w = _price_and_sides(rng, shape, work.cap)
    units = UNIT_WORDS[u][1]
    # both questions are drawn for every shape, before the shape's own numbers
    perimeter_q = rng.choice([f"What is the perimeter of the {obj}?", f"How far is it all the way around the {obj}?",
                              f"What is the distance around the {obj} in {units}?"])
    area_q = rng.choice([f"What is the area of the {obj} in square {units}?", f"What is the area of the {obj}?",
                         f"How many square {units} does the {obj} cover?"])
    if shape == "triangle":  # a triangle of its own, drawn before its sides
        tri, tu = rng.choice(TRIANGLES)
        sides = _triangle(rng, work)
        return paragraph(f"a triangular {tri} has sides of {sides[0]} {tu}, {sides[1]} {tu} and {sides[2]} {tu}.",
                         rng.choice([f"What is the perimeter of the {tri}?", f"How far is it around the {tri}?"])), work
    if shape.startswith("perimeter"):
        return _fence(rng, work, shape, price, l, w, name, money, obj, u, perimeter_q), work
    sizes = dict(price=price, l=l, w=w, **_solve(rng, work, shape, price, l, w))
    return _tell(rng, shape, sizes, name, money, obj, u, perimeter_q, area_q), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _most_area(shape: str, cap: int, price: int) -> int:
    """The largest area a rectangle of this shape may have (0: the shape draws its own sides)."""
    return {"area": cap - 1, "area cost": (cap - 1) // price, "two areas": cap - 7,
            "two areas cost": (cap - 1) // price - 6}.get(shape, 0)


def _price_and_sides(rng: random.Random, shape: str, cap: int) -> tuple[int, int, int]:
    """(price per metre or square metre, length, width): the price first, then the sizes that keep
    the cost below the cap. Drawn for every shape; (0, 0) for the sides a shape draws itself."""
    most = {"square fence": (cap - 1) // 8, "area cost": (cap - 1) // 6, "perimeter cost": (cap - 1) // 10,
            "two areas cost": (cap - 1) // 12, "perimeter cost change": most_to_pay(cap) // 10,
            "area minus cost": (cap - 1) // 2}.get(shape, 12)
    price = num(rng, 2, min(12, most))
    if shape in ("perimeter", "perimeter cost", "perimeter cost change"):
        # half the perimeter, l + w, such that the perimeter (and its cost) stays below the cap
        most_cost = most_to_pay(cap) if shape == "perimeter cost change" else cap - 1
        half = num(rng, 5, most_cost // (2 * (price if "cost" in shape else 1)))
        w = num(rng, 2, min(12, (half - 1) // 2))
        return price, half - w, w
    if shape == "width then area":  # the area and the perimeter both stay below the cap
        l, w = _sides(rng, cap - 1)
        if 2 * (l + w) >= cap:
            raise Redraw
        return price, l, w
    most_area = _most_area(shape, cap, price)
    l, w = _sides(rng, most_area) if most_area else (0, 0)
    if shape == "area minus cost":  # a pond inside leaves at least l + w - 1 of grass
        w = num(rng, 3, min(12, ((cap - 1) // price - 3) // 2))
        l = num(rng, w + 1, min((cap - 1) // w, (cap - 1) // price + 1 - w))
    return price, l, w


def _sides(rng: random.Random, most: int, least: int = 2) -> tuple[int, int]:
    """(length, width) of a rectangle, the width from `least` to 12 and shorter than the length,
    its area at most `most`."""
    widest = least - 1
    while widest < 12 and (widest + 1) * (widest + 2) <= most:
        widest += 1
    w = num(rng, least, widest)
    return num(rng, w + 1, most // w), w


def _triangle(rng: random.Random, work: Work) -> list[int]:
    """Three sides that make a triangle, in any order, and the perimeter."""
    a, b = num(rng, 3, (work.cap - 4) // 2), num(rng, 3, (work.cap - 4) // 2)
    sides = [a, b, num(rng, max(3, abs(a - b) + 1), min(a + b - 1, work.cap - 1 - a - b))]
    rng.shuffle(sides)
    work.add("perimeter", *sides)
    return sides


def _solve(rng: random.Random, work: Work, shape: str, price: int, l: int, w: int) -> dict[str, int]:
    """The steps of a shape without a fence; the sizes drawn for them (a square's side, a second
    rectangle, a pond)."""
    cap = work.cap
    if shape in ("square perimeter", "square side"):
        s = num(rng, 2, (cap - 1) // 4)
        if shape == "square perimeter":
            work.mul("perimeter", 4, s)
        else:
            work.div("side", 4 * s, 4)
        return dict(s=s)
    if shape == "area":
        work.mul("area", l, w)
        return {}
    if shape == "width then area":
        half = work.div("length plus width", 2 * (l + w), 2)
        work.sub("width", half, l)
        work.mul("area", l, w)
        return {}
    if shape == "square fence":
        s = num(rng, 2, (cap - 1) // (4 * price))
        perimeter = work.mul("perimeter", 4, s)
        work.mul("cost of the fence", perimeter, price)
        return dict(s=s)
    if shape == "area cost":
        area = work.mul("area", l, w)
        work.mul("cost", area, price)
        return {}
    if shape in ("two areas", "two areas cost"):
        l2, w2 = _sides(rng, _most_area(shape, cap, price) + 6 - l * w)
        first = work.mul("first area", l, w)
        second = work.mul("second area", l2, w2)
        area = work.add("total area", first, second)
        if shape == "two areas cost":
            work.mul("cost", area, price)
        return dict(l2=l2, w2=w2)
    # area minus: a pond inside a garden, the grass around it costs so much per square metre;
    # the pond is smaller each way and leaves at most what the price allows for the grass
    most_grass = (cap - 1) // price
    w2 = num(rng, max(2, -(-(l * w - most_grass) // (l - 1))), w - 1)
    l2 = num(rng, max(2, -(-(l * w - most_grass) // w2)), l - 1)
    whole = work.mul("whole area", l, w)
    pond = work.mul("pond area", l2, w2)
    grass = work.sub("grass area", whole, pond)
    work.mul("cost", grass, price)
    return dict(l2=l2, w2=w2)


# ---------------------------------------------------------------------------------------
# The wording


def _rectangle(rng: random.Random, obj: str, l: int, w: int, u: str) -> str:
    return rng.choice([f"a rectangular {obj} is {l} {u} long and {w} {u} wide.",
                       f"a {obj} is a rectangle {w} {u} wide and {l} {u} long.",
                       f"the {obj} is a rectangle with length {l} {u} and width {w} {u}.",
                       f"a rectangular {obj} measures {l} {u} by {w} {u}."])


def _tell(rng: random.Random, shape: str, sizes: dict[str, int], name: str, money: Callable[[int], str],
          obj: str, u: str, perimeter_q: str, area_q: str) -> str:
    unit, units = UNIT_WORDS[u]
    price, l, w, s, l2, w2 = (sizes.get(key) for key in ("price", "l", "w", "s", "l2", "w2"))
    if shape == "square perimeter":
        told = rng.choice([f"a square {obj} has sides of {s} {u}.", f"each side of a square {obj} is {s} {u} long.",
                           f"{name} has a square {obj} with sides of {s} {u}.",
                           f"{name} measures a square {obj}: each side is {s} {u}."])
        return paragraph(told, perimeter_q)
    if shape == "square side":
        told = rng.choice([f"a square {obj} has a perimeter of {4 * s} {u}.",
                           f"{name} measures all the way around a square {obj}: it is {4 * s} {u}.",
                           f"the perimeter of {name}'s square {obj} is {4 * s} {u}."])
        return paragraph(told, rng.choice([f"How long is each side of the {obj}?", "What is the length of one side?",
                                           f"How many {units} long is one side?"]))
    if shape == "area":
        return paragraph(_rectangle(rng, obj, l, w, u), area_q)
    if shape == "width then area":
        return paragraph(f"a rectangular {obj} has a perimeter of {2 * (l + w)} {u}. It is {l} {u} long.", area_q)
    if shape == "square fence":
        return paragraph(f"{name} puts a fence around a square {obj} with sides of {s} {u}.",
                         f"fencing costs {money(price)} per {unit}.",
                         "How much does the fence cost?")
    if shape == "area cost":
        return paragraph(_rectangle(rng, obj, l, w, u), f"turf costs {money(price)} per square {unit}.",
                         f"How much does it cost to cover the {obj} with turf?")
    if shape in ("two areas", "two areas cost"):
        facts = [f"an L-shaped {obj} is made of two rectangles: one is {l} {u} by {w} {u}, the other {l2} {u} by {w2} {u}."]
        if shape == "two areas":
            return paragraph(*facts, area_q)
        return paragraph(*facts, f"paving costs {money(price)} per square {unit}.",
                         f"How much does it cost to pave the whole {obj}?")
    return paragraph(_rectangle(rng, obj, l, w, u), f"a pond in it is {l2} {u} by {w2} {u}.",
                     f"grass seed for the rest costs {money(price)} per square {unit}.",
                     "How much does the seed cost?")


# ---------------------------------------------------------------------------------------
# A fence around a rectangle: its numbers and its words take turns


def _fence(rng: random.Random, work: Work, shape: str, price: int, l: int, w: int, name: str,
           money: Callable[[int], str], obj: str, u: str, perimeter_q: str) -> str:
    """The perimeter of a rectangle; its cost; the change from a payment, drawn once the
    rectangle and the price are told."""
    unit, units = UNIT_WORDS[u]
    half = work.add("length plus width", l, w)
    perimeter = work.mul("perimeter", half, 2)
    facts = [_rectangle(rng, obj, l, w, u)]
    if shape == "perimeter":
        fencing = f"How many {units} of fencing go around the {obj}?"
        return paragraph(*facts, rng.choice([perimeter_q, fencing] if u == "m" else [perimeter_q]))
    cost = work.mul("cost of the fence", perimeter, price)
    facts.append(rng.choice([f"fencing costs {money(price)} per {unit}.", f"each {unit} of fence costs {money(price)}."]))
    if shape == "perimeter cost":
        return paragraph(*(facts if rng.random() < 0.6 else facts[::-1]),
                         rng.choice([f"How much does it cost to fence the {obj}?", "What is the cost of the fence?"]))
    paid = payment(rng, cost, work.cap)
    work.sub("change", paid, cost)
    return paragraph(*facts, f"{name} pays for the fence with {money(paid)}.", f"How much change does {name} get?")
