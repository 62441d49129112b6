"""The synthetic curriculum (`tracetutor data synth`): textbook word problems with their steps.

A family turns `(rng, difficulty)` into `(question, steps, answer)`. Difficulty 1..4 grows the
number of dependent steps (1, 2, 3, then 4 or 5) and the size of the numbers: every number in a
step of a level is below its cap (20, 50, 100, 200), and the draws of each level reach up to its
cap. The wording of the questions varies a lot; the steps never do. A step is one claim,
`short label: a op b = c`, and the last result is the answer. Every claim keeps to what a tiny
model can learn digit by digit:

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
from functools import lru_cache
from math import gcd

from tracetutor.trace import Trace

VERSION = 2
"""Raise it whenever the same seed starts giving other traces: data made before is then redone."""

CAP = {1: 20, 2: 50, 3: 100, 4: 200}  # every number in a step of a level is below its cap
PERCENTS = (10, 20, 25, 50, 75)

NAMES = [
    "Amara", "Ben", "Chen", "Dara", "Emeka", "Fatima", "Giulia", "Hiro", "Ines", "Jamal",
    "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
    "Uma", "Victor", "Wei", "Ximena", "Yusuf", "Zara", "Aiko", "Bruno", "Carmen", "Dmitri",
    "Esther", "Farid", "Grace", "Hassan", "Ingrid", "Javier", "Keiko", "Liam", "Mei", "Nia",
    "Olga", "Pablo", "Ravi", "Sofia", "Tomas", "Leila", "Noah", "Sipho", "Anh", "Kwame",
    "Lucia", "Arjun", "Freya", "Malik", "Yara", "Mohammed", "Ada", "Kenji", "Ayesha", "Oscar",
]
CURRENCIES = [("dollars", "$"), ("euros", ""), ("pounds", ""), ("rupees", ""), ("pesos", "")]


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


FAMILIES: dict[str, Callable[[random.Random, int], tuple[str, list[str], str]]] = {}


def family(draw: Callable[[random.Random, int], tuple[str, Work]]):
    """Register a family under its function's name; retry its draw until every rule holds."""

    def generate(rng: random.Random, difficulty: int) -> tuple[str, list[str], str]:
        if difficulty not in CAP:
            raise ValueError(f"difficulty must be one of {sorted(CAP)}, got {difficulty!r}")
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
# Wording helpers


def sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def paragraph(*sentences: str) -> str:
    return " ".join(sentence(s) for s in sentences if s)


def and_list(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def money_style(rng: random.Random) -> Callable[[int], str]:
    """How one question writes amounts of money: `$12` or `12 euros`."""
    plural, symbol = rng.choice(CURRENCIES)
    if symbol and rng.random() < 0.6:
        return lambda n: f"{symbol}{n}"
    return lambda n: f"{n} {plural}"


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


# ---------------------------------------------------------------------------------------
# arithmetic: a count that goes up and down

COLLECTIONS = [
    "marbles", "stickers", "stamps", "shells", "cards", "beads", "coins", "balloons",
    "pebbles", "buttons", "toy cars", "comics", "crayons", "badges", "postcards", "keyrings",
]
GAINS = [  # (event, step label)
    ("{name} finds {n} more {things}", "after finding"),
    ("{name} buys {n} more {things}", "after buying"),
    ("{other} gives {name} {n} {things}", "after receiving"),
    ("{name} wins {n} {things} in a game", "after winning"),
    ("{name} gets {n} more {things} as a present", "after the present"),
    ("{name} collects another {n} {things}", "after collecting"),
]
LOSSES = [
    ("{name} gives {n} {things} to {other}", "after giving"),
    ("{name} loses {n} {things}", "after losing"),
    ("{name} sells {n} {things}", "after selling"),
    ("{name} trades {n} {things} away", "after trading"),
    ("{name} gives away {n} {things}", "after giving"),
]


@family
def arithmetic(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """A count that changes: things found, bought, given or lost, one event a step."""
    cap, work = CAP[difficulty], Work(difficulty)
    name, other = rng.sample(NAMES, 2)
    things = rng.choice(COLLECTIONS)
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
        events.append(event.format(name=name, other=other, n=n, things=things))
    linked = [events[0]] + [rng.choice(["then ", "later ", "after that, ", "next, "]) + e for e in events[1:]]
    told = [e + "." for e in linked]
    question = rng.choice([
        "How many {things} does {name} have now?",
        "How many {things} does {name} have at the end?",
        "How many {things} does {name} end up with?",
        "What is the number of {things} {name} has now?",
        "How many {things} are in {name}'s collection now?",
    ]).format(name=name, things=things)
    if rng.random() < 0.3:  # the starting amount told last
        opening = rng.choice(["{name} had {n} {things} at first.", "At the start {name} had {n} {things}."])
        return paragraph(*told, opening.format(name=name, n=start, things=things), question), work
    opening = rng.choice([
        "{name} has {n} {things}.", "{name} had {n} {things}.", "{name} starts with {n} {things}.",
        "There are {n} {things} in {name}'s collection.", "{name} owns {n} {things}.",
    ])
    return paragraph(opening.format(name=name, n=start, things=things), *told, question), work


# ---------------------------------------------------------------------------------------
# shopping: costs of several items, a total and change

SHOPS = {
    "the bakery": [("muffin", "muffins"), ("cupcake", "cupcakes"), ("loaf of bread", "loaves of bread"),
                   ("pie", "pies"), ("bagel", "bagels"), ("cookie", "cookies")],
    "the stationery shop": [("pen", "pens"), ("pencil", "pencils"), ("notebook", "notebooks"),
                            ("eraser", "erasers"), ("ruler", "rulers"), ("folder", "folders")],
    "the toy shop": [("kite", "kites"), ("ball", "balls"), ("puzzle", "puzzles"), ("toy car", "toy cars"),
                     ("doll", "dolls"), ("board game", "board games")],
    "the market": [("mango", "mangoes"), ("melon", "melons"), ("pineapple", "pineapples"),
                   ("coconut", "coconuts"), ("cabbage", "cabbages"), ("bunch of flowers", "bunches of flowers")],
    "the bookshop": [("book", "books"), ("comic", "comics"), ("map", "maps"), ("diary", "diaries"),
                     ("bookmark", "bookmarks"), ("calendar", "calendars")],
    "the cafe": [("sandwich", "sandwiches"), ("bottle of juice", "bottles of juice"), ("cup of tea", "cups of tea"),
                 ("bowl of soup", "bowls of soup"), ("salad", "salads")],
    "the garden centre": [("plant", "plants"), ("flower pot", "flower pots"), ("packet of seeds", "packets of seeds"),
                          ("bag of soil", "bags of soil"), ("watering can", "watering cans")],
    "the sports shop": [("cap", "caps"), ("towel", "towels"), ("water bottle", "water bottles"),
                        ("pair of socks", "pairs of socks"), ("tennis ball", "tennis balls")],
    "the school fair": [("ticket", "tickets"), ("cake", "cakes"), ("badge", "badges"), ("balloon", "balloons")],
}
GOODS_BY_KG = ["rice", "flour", "apples", "potatoes", "cheese", "tomatoes", "grapes", "carrots", "onions", "beans"]


def _line(rng, shop, most, taken):
    """One line of a shopping list: quantity, item and price, costing at most `most`, an item not
    yet in `taken`."""
    q, p = factors(rng, most)
    if shop == "the market" and rng.random() < 0.4:
        good = pick(rng, [g for g in GOODS_BY_KG if g not in taken])
        return dict(q=q, p=p, sg=good, pl=good, kg=True)
    sg, pl = pick(rng, [(sg, pl) for sg, pl in SHOPS[shop] if pl not in taken])
    return dict(q=q, p=p, sg=sg, pl=pl, kg=False)


def _bought(line) -> str:
    return f"{line['q']} kg of {line['pl']}" if line["kg"] else f"{line['q']} {line['pl']}"


def _bought_at(rng, line, money) -> str:
    if line["kg"]:
        return f"{line['q']} kg of {line['pl']} at {money(line['p'])} per kg"
    return rng.choice(["{q} {pl} at {p} each", "{q} {pl} for {p} each"]).format(
        q=line["q"], pl=line["pl"], p=money(line["p"]))


def _price(rng, line, money) -> str:
    if line["kg"]:
        return f"the price of {line['pl']} is {money(line['p'])} per kg"
    return rng.choice(["a {sg} costs {p}", "{pl} cost {p} each", "the price of a {sg} is {p}"]).format(
        sg=line["sg"], pl=line["pl"], p=money(line["p"]))


@family
def shopping(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Buying several items: cost of each line, the total, the change from a payment."""
    work, money = Work(difficulty), money_style(rng)
    name = rng.choice(NAMES)
    shop = rng.choice(list(SHOPS))
    # (lines bought in quantity, one single item or None, whether change is asked)
    shape = {1: rng.choice([(1, False, False), (0, True, True)]),
             2: (1, False, True),
             3: rng.choice([(2, False, False), (1, True, True)]),
             4: rng.choice([(2, False, True), (3, False, True)])}[difficulty]
    n_lines, single, change = shape
    # the lines share what can be spent: each takes part of what is left, then the order is mixed
    left = most_to_pay(work.cap) if change else work.cap - 1
    lines = []
    for i in range(n_lines):
        line = _line(rng, shop, left - 4 * (n_lines - 1 - i) - 2 * single, {other["pl"] for other in lines})
        left -= line["q"] * line["p"]
        lines.append(line)
    rng.shuffle(lines)
    # the label names the thing itself: "cost of seeds" for packets of seeds
    costs = [work.mul(f"cost of {line['pl'].split(' of ')[-1]}", line["q"], line["p"]) for line in lines]
    item = None
    if single:
        sg, _ = pick(rng, [(sg, pl) for sg, pl in SHOPS[shop] if sg not in {line["sg"] for line in lines}])
        item = dict(sg=sg, p=num(rng, 2 if lines else 3, left))
        costs.append(item["p"])
    total = work.add("total cost", *costs) if len(costs) > 1 else costs[0]

    facts = []
    if lines:
        if rng.random() < 0.4:  # prices first, in any order, then the quantities
            prices = [_price(rng, line, money) for line in lines]
            if item:
                prices.append(f"a {item['sg']} costs {money(item['p'])}")
            facts.append(f"at {shop}, " + and_list(rng.sample(prices, len(prices))) + ".")
            buys = [_bought(line) for line in lines]
            facts.append(f"{name} buys " + and_list(buys) + (f" and a {item['sg']}" if item else "") + ".")
        else:
            buys = [_bought_at(rng, line, money) for line in lines]
            if item:
                buys.append(f"a {item['sg']} for {money(item['p'])}")
            facts.append(rng.choice([
                f"at {shop}, {name} buys " + and_list(buys) + ".",
                f"{name} goes to {shop} and buys " + and_list(buys) + ".",
                f"{name} buys " + and_list(buys) + f" at {shop}.",
            ]))
    else:
        facts.append(rng.choice([
            f"at {shop}, a {item['sg']} costs {money(item['p'])}.",
            f"{name} buys a {item['sg']} for {money(item['p'])} at {shop}.",
            f"{name} picks a {item['sg']} priced at {money(item['p'])} at {shop}.",
        ]))
    if change:
        paid = payment(rng, total, work.cap)
        work.sub("change", paid, total)
        facts.append(rng.choice([
            f"{name} pays with {money(paid)}.", f"{name} hands the cashier {money(paid)}.",
            f"{name} gives {money(paid)} to pay.", f"{name} pays using {money(paid)}.",
        ]))
        asked = rng.choice([
            "How much change does {name} get?", "How much change should {name} receive?",
            "What change does {name} get back?", "How much money does {name} get back?",
        ])
    else:
        asked = rng.choice([
            "How much does {name} spend?", "How much does {name} pay in total?", "What is the total cost?",
            "How much money does {name} spend altogether?", "How much does {name} pay?",
        ])
    return paragraph(*facts, asked.format(name=name)), work


# ---------------------------------------------------------------------------------------
# groups: packs of equal size, sharing equally

PACKS = [  # (container, containers, things, kinds of the things)
    ("box", "boxes", "pencils", ("red", "blue", "green", "black")),
    ("carton", "cartons", "eggs", ("brown", "white", "large")),
    ("bag", "bags", "apples", ("red", "green", "yellow")),
    ("tray", "trays", "muffins", ("chocolate", "banana", "lemon", "blueberry")),
    ("pack", "packs", "stickers", ("star", "animal", "heart", "glitter")),
    ("crate", "crates", "bottles", ("water", "juice", "milk")),
    ("shelf", "shelves", "books", ("picture", "history", "science", "cook")),
    ("jar", "jars", "cookies", ("ginger", "oat", "chocolate")),
    ("row", "rows", "chairs", ("blue", "wooden", "plastic")),
    ("bundle", "bundles", "sticks", ("long", "short", "bamboo")),
    ("basket", "baskets", "oranges", ("small", "large", "sweet")),
    ("case", "cases", "cans", ("soup", "bean", "tomato")),
    ("packet", "packets", "seeds", ("sunflower", "pumpkin", "carrot", "bean")),
    ("tin", "tins", "biscuits", ("butter", "chocolate", "coconut")),
    ("vase", "vases", "roses", ("red", "white", "yellow", "pink")),
    ("tank", "tanks", "fish", ("gold", "striped", "silver")),
    ("album", "albums", "photos", ("holiday", "school", "family")),
    ("bucket", "buckets", "shells", ("white", "pink", "spiral")),
]
SHARERS = [("friend", "friends"), ("child", "children"), ("classmate", "classmates"), ("team", "teams"),
           ("neighbour", "neighbours"), ("class", "classes"), ("cousin", "cousins"), ("group", "groups")]


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
    cap = work.cap
    facts = []
    if shape in ("share", "fill"):
        k, each = factors(rng, cap - 1)
        total = k * each
        if shape == "share":
            work.div(f"{things} each", total, k)
            facts.append(rng.choice([
                f"{name} has {total} {things} and shares them equally among {k} {sharers}.",
                f"{total} {things} are shared equally between {k} {sharers}.",
                f"{k} {sharers} share {total} {things} equally.",
            ]))
            asked = rng.choice([f"How many {things} does each {sharer} get?",
                                f"How many {things} are there for each {sharer}?"])
        else:
            work.div(f"{boxes} filled", total, k)
            facts.append(rng.choice([
                f"{name} packs {total} {things} into {boxes} of {k}.",
                f"each {box} holds {k} {things}, and {name} has {total} {things} to pack.",
                f"{name} has {total} {things}. They go into {boxes} that hold {k} each.",
            ]))
            asked = rng.choice([f"How many {boxes} can {name} fill?", f"How many {boxes} are needed?",
                                f"How many full {boxes} does {name} get?"])
        return paragraph(*facts, asked), work

    # room left for what the later steps add: loose things
    most = cap - 1 - (2 if shape.endswith("loose") else 0)
    if shape.startswith("packs"):
        q, k = factors(rng, most)
        total = work.mul(f"{things} in the {boxes}", q, k)
        facts.append(rng.choice([
            f"{name} has {q} {boxes} of {things} with {k} {things} in each.",
            f"there are {k} {things} in each {box}, and {name} has {q} {boxes}.",
            f"{name} buys {q} {boxes} of {things}. Each {box} holds {k}.",
            f"each {box} has {k} {things} in it. {name} fills {q} {boxes}.",
        ]))
    else:
        c1, c2 = rng.sample(kinds, 2)
        q1, k1 = factors(rng, most - 4)
        q2, k2 = factors(rng, most - q1 * k1)
        first = work.mul(f"{c1} {things}", q1, k1)
        second = work.mul(f"{c2} {things}", q2, k2)
        total = work.add(f"total {things}", first, second)
        facts.append(rng.choice([
            f"{name} has {q1} {boxes} of {c1} {things} with {k1} in each, and {q2} {boxes} of {c2} {things} with {k2} in each.",
            f"there are {k1} {c1} {things} in each of {q1} {boxes}, and {k2} {c2} {things} in each of {q2} {boxes}.",
            f"{name} buys {q1} {boxes} of {c1} {things} and {q2} {boxes} of {c2} {things}. A {box} of {c1} {things} holds {k1} and a {box} of {c2} {things} holds {k2}.",
        ]))
    if shape.endswith("loose"):
        extra = num(rng, 2, cap - 1 - total)
        work.add(f"total {things}", total, extra)
        facts.append(rng.choice([f"there are also {extra} loose {things}.", f"{name} has {extra} more {things} that are not in a {box}."]))
        asked = rng.choice([f"How many {things} are there in all?", f"How many {things} does {name} have altogether?"])
    elif shape.endswith("share"):
        left = total
        if "used" in shape:  # what is left after some are used shares exactly
            k = num(rng, 2, min(12, (total - 1) // 2))
            left = k * num(rng, 2, (total - 1) // k)
            used = total - left
            work.sub(f"{things} left", total, used)
            facts.append(rng.choice([f"{name} uses {used} of them.", f"{used} of the {things} are given away first.",
                                     f"{name} keeps {used} {things} aside."]))
        else:  # the total shares exactly
            k = pick(rng, [k for k in range(2, 13) if total % k == 0 and total > k])
        work.div(f"{things} each", left, k)
        facts.append(rng.choice([
            f"the {'other ' if 'used' in shape else ''}{things} are shared equally among {k} {sharers}.",
            f"{name} shares the {'rest' if 'used' in shape else things} equally between {k} {sharers}.",
        ]))
        asked = rng.choice([f"How many {things} does each {sharer} get?", f"How many {things} are there for each {sharer}?"])
    elif shape.endswith("used"):
        used = num(rng, 2, total - 1)
        work.sub(f"{things} left", total, used)
        facts.append(rng.choice([f"{name} uses {used} of them.", f"{name} gives away {used} {things}.",
                                 f"{used} of the {things} get broken."]))
        asked = rng.choice([f"How many {things} are left?", f"How many {things} does {name} have left?"])
    else:
        asked = rng.choice([f"How many {things} are there in all?", f"How many {things} does {name} have altogether?",
                            f"How many {things} is that in total?"])
    return paragraph(*facts, asked), work


# ---------------------------------------------------------------------------------------
# rates: so much per hour, day or minute; unit conversion

RATE_SCENES = [  # (who does it, what is counted, per what, step label, (bigger unit, its size) or None)
    ("{name} drives", "km", "hour", "distance", None),
    ("{name} cycles", "km", "hour", "distance", None),
    ("{name} walks", "km", "hour", "distance", None),
    ("{name} reads", "pages", "day", "pages read", ("week", 7)),
    ("{name} earns", "dollars", "hour", "money earned", None),
    ("{name} saves", "euros", "week", "money saved", None),
    ("a machine fills", "bottles", "minute", "bottles filled", None),
    ("a tap pours", "litres", "minute", "water poured", None),
    ("a printer prints", "pages", "minute", "pages printed", None),
    ("a baker makes", "loaves", "hour", "loaves made", None),
    ("{name} runs", "laps", "day", "laps run", ("week", 7)),
    ("{name} practises for", "minutes", "day", "minutes practised", ("week", 7)),
    ("a pump moves", "litres", "minute", "water pumped", None),
    ("{name} knits", "rows", "hour", "rows knitted", None),
    ("the hens on a farm lay", "eggs", "day", "eggs laid", ("week", 7)),
    ("a cafe sells", "cakes", "day", "cakes sold", ("week", 7)),
    ("{name} writes", "pages", "day", "pages written", ("week", 7)),
    ("{name} swims", "lengths", "day", "lengths swum", ("week", 7)),
]


def _rate(rng, does, r, thing, per) -> str:
    return rng.choice(["{does} {r} {thing} per {per}", "{does} {r} {thing} every {per}",
                       "{does} {r} {thing} each {per}", "every {per}, {does} {r} {thing}"]).format(
        does=does, r=r, thing=thing, per=per)


@family
def rates(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Rate times time, the rate from a total, unit conversion, periods at two rates, a goal."""
    work = Work(difficulty)
    cap = work.cap
    name = rng.choice(NAMES)
    shape = {1: rng.choice(["times", "rate"]),
             2: rng.choice(["convert", "unitary", "unitary time"]),
             3: rng.choice(["two periods", "goal time"]),
             4: rng.choice(["two periods left", "three periods left"])}[difficulty]
    # a conversion to a bigger unit only where two of them at two a unit stay below the cap
    scenes = [s for s in RATE_SCENES if s[4] and 4 * s[4][1] < cap] if shape == "convert" else RATE_SCENES
    does, thing, per, label, bigger = rng.choice(scenes)
    does = does.format(name=name)
    pers = per + "s"
    how_many = rng.choice([
        "How many {thing} is that in {t} {pers}?", "How many {thing} in {t} {pers}?",
        "How many {thing} in total after {t} {pers}?", "What is the total number of {thing} after {t} {pers}?",
    ])
    if shape == "times":
        t, r = factors(rng, cap - 1)
        if rng.random() < 0.5:
            t, r = r, t
        work.mul(label, t, r)
        return paragraph(_rate(rng, does, r, thing, per) + ".", how_many.format(thing=thing, t=t, pers=pers)), work
    if shape == "rate":
        t, r = factors(rng, cap - 1)
        total = t * r  # drawn as a product so that the rate is whole
        work.div(f"{thing} per {per}", total, t)
        told = rng.choice([f"{does} {total} {thing} in {t} {pers}.", f"in {t} {pers}, {does} {total} {thing}."])
        asked = rng.choice([f"How many {thing} per {per} is that?", f"What is the rate in {thing} per {per}?",
                            f"How many {thing} is that each {per}, at a steady rate?"])
        return paragraph(told, asked), work
    if shape == "convert":
        unit, size = bigger
        t = num(rng, 2, (cap - 1) // (2 * size))
        r = num(rng, 2, (cap - 1) // (t * size))
        n = work.mul(f"{pers} in {unit}s", t, size)
        work.mul(label, n, r)
        return paragraph(_rate(rng, does, r, thing, per) + ".",
                         rng.choice(["How many {thing} in {t} {unit}s?", "How many {thing} is that in {t} {unit}s?",
                                     "At this rate, how many {thing} in {t} {unit}s?"]).format(
                             thing=thing, t=t, unit=unit)), work
    if shape == "unitary":
        r = num(rng, 2, (cap - 1) // 3)
        t1, t2 = rng.sample(range(2, min(12, (cap - 1) // r) + 1), 2)
        rate = work.div(f"{thing} per {per}", t1 * r, t1)
        work.mul(label, t2, rate)
        told = rng.choice([f"{does} {t1 * r} {thing} in {t1} {pers}.", f"in {t1} {pers}, {does} {t1 * r} {thing}."])
        asked = rng.choice([f"At the same rate, how many {thing} in {t2} {pers}?",
                            f"How many {thing} in {t2} {pers} at the same rate?"])
        return paragraph(told, asked), work
    if shape == "unitary time":  # the rate from one total, then the time another total takes
        r = num(rng, 2, min(12, (cap - 1) // 3))
        t1, t2 = rng.sample(range(2, min(12, (cap - 1) // r) + 1), 2)
        rate = work.div(f"{thing} per {per}", t1 * r, t1)
        work.div(f"{pers} needed", t2 * r, rate)
        told = rng.choice([f"{does} {t1 * r} {thing} in {t1} {pers}.", f"in {t1} {pers}, {does} {t1 * r} {thing}."])
        asked = rng.choice([f"At the same rate, how many {pers} does it take to reach {t2 * r} {thing}?",
                            f"How many {pers} are needed for {t2 * r} {thing} at the same rate?"])
        return paragraph(told, asked), work
    if shape == "goal time":
        r = num(rng, 2, min(12, (cap - 1) // 4))
        t = num(rng, 2, (cap - 1) // r - 2)
        more = num(rng, 2, min(12, (cap - 1) // r - t))
        done = work.mul(f"{thing} so far", t, r)
        left = r * more
        goal = done + left
        work.sub(f"{thing} left", goal, done)
        work.div(f"{pers} needed", left, r)
        told = rng.choice([f"{does} {r} {thing} per {per}. The goal is {goal} {thing}.",
                           f"the goal is {goal} {thing}, and {does} {r} {thing} each {per}."])
        asked = rng.choice([f"After {t} {pers}, how many more {pers} are needed to reach the goal?",
                            f"{t} {pers} have passed. How many more {pers} until the goal is reached?"])
        return paragraph(told, asked), work
    # periods at different rates, then maybe what is left of a goal
    k = 3 if shape.startswith("three") else 2
    # the periods share what stays below the cap, less room for the goal; then the order is mixed
    left = cap - 1 - (2 if shape.endswith("left") else 0)
    periods = []
    for i in range(k):
        t, rate = factors(rng, left - 4 * (k - 1 - i))
        if rng.random() < 0.5:
            t, rate = rate, t
        left -= t * rate
        periods.append((t, rate))
    rng.shuffle(periods)
    ordinals = ["first", "second", "third"]
    parts = [work.mul(f"{ordinals[i]} part", t, rate) for i, (t, rate) in enumerate(periods)]
    total = work.add(f"total {thing}", *parts)
    told = [_rate(rng, does, periods[0][1], thing, per) + f" for {periods[0][0]} {pers}"]
    for t, rate in periods[1:]:
        told.append(rng.choice([f"then {rate} {thing} per {per} for {t} {pers}", f"then {rate} {thing} each {per} for {t} {pers}",
                                f"then for {t} {pers} at {rate} {thing} per {per}"]))
    facts = [", ".join(told) + "."]
    if shape.endswith("left"):
        goal = total + num(rng, 2, cap - 1 - total)
        work.sub(f"{thing} left", goal, total)
        facts.insert(rng.randint(0, 1), rng.choice([f"the goal is {goal} {thing}.", f"the target is {goal} {thing} in all."]))
        asked = rng.choice([f"How many more {thing} are needed to reach the goal?", f"How many {thing} are still to go?"])
    else:
        asked = rng.choice([f"How many {thing} is that in total?", f"How many {thing} altogether?"])
    return paragraph(*facts, asked), work


# ---------------------------------------------------------------------------------------
# percent: parts of a group, discounts and price rises

PART_SCENES = [  # (things, where, three kinds that split them)
    ("students", "in a school", ("in the choir", "in the band", "in the chess club")),
    ("trees", "in an orchard", ("apple trees", "pear trees", "plum trees")),
    ("flowers", "in a garden", ("red", "yellow", "white")),
    ("books", "on a shelf", ("novels", "comics", "atlases")),
    ("cars", "in a car park", ("red", "blue", "silver")),
    ("marbles", "in a jar", ("blue", "green", "red")),
    ("tickets", "sold for a show", ("adult tickets", "child tickets", "family tickets")),
    ("fish", "in a pond", ("goldfish", "carp", "minnows")),
    ("animals", "on a farm", ("sheep", "cows", "goats")),
    ("members", "in a sports club", ("swimmers", "runners", "cyclists")),
    ("sweets", "in a bag", ("lemon", "cherry", "mint")),
    ("houses", "on a street", ("painted white", "painted blue", "painted green")),
]
PRICED = [("jacket", "jackets"), ("bike", "bikes"), ("lamp", "lamps"), ("backpack", "backpacks"),
          ("pair of shoes", "pairs of shoes"), ("watch", "watches"), ("board game", "board games"),
          ("chair", "chairs"), ("tent", "tents"), ("guitar", "guitars"), ("dress", "dresses"),
          ("helmet", "helmets"), ("kettle", "kettles"), ("rug", "rugs")]


def _multiple_for(p: int) -> int:
    """The smallest base that p percent divides exactly."""
    return 100 // gcd(p, 100)


_PERCENT_PAIRS = [(p1, p2) for p1 in PERCENTS for p2 in PERCENTS]


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


@family
def percent(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Percentages: a part of a group and what is left, a discount or a rise in price."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        things, where, (kind1, kind2, kind3) = rng.choice(PART_SCENES)
        p1, p2 = pick(rng, [pair for pair in _PERCENT_PAIRS if _group_sizes(difficulty, *pair)])
        base = rng.choice(_group_sizes(difficulty, p1, p2))
        part = work.pct(kind1, p1, base)
        whole = rng.choice([f"there are {base} {things} {where}.", f"{where}, there are {base} {things}."])
        share = rng.choice([f"{p1}% of them are {kind1}.", f"{p1}% of the {things} are {kind1}.",
                            f"of these, {p1}% are {kind1}."])
        facts = [whole, share] if rng.random() < 0.7 else [f"{p1}% of the {things} {where} are {kind1}.",
                                                           f"there are {base} {things} in all."]
        if difficulty == 1:
            asked = rng.choice([f"How many {things} are {kind1}?", f"How many of the {things} are {kind1}?"])
            return paragraph(*facts, asked), work
        rest = work.sub("the rest", base, part)
        if difficulty == 2:
            asked = rng.choice([f"How many {things} are not {kind1}?", f"How many of the {things} are not {kind1}?"])
            return paragraph(*facts, asked), work
        second = work.pct(kind2, p2, rest)
        facts.append(rng.choice([f"{p2}% of the rest are {kind2}.", f"of the others, {p2}% are {kind2}."]))
        if difficulty == 3:
            asked = rng.choice([f"How many {things} are {kind2}?", f"How many of the {things} are {kind2}?"])
            return paragraph(*facts, asked), work
        work.sub(kind3, rest, second)
        facts.append(rng.choice([f"the remaining {things} are {kind3}.", f"all the others are {kind3}."]))
        asked = rng.choice([f"How many {things} are {kind3}?", f"How many of the {things} are {kind3}?"])
        return paragraph(*facts, asked), work

    money = money_style(rng)
    sg, pl = rng.choice(PRICED)
    rise = difficulty in (2, 3) and rng.random() < 0.3
    p = pick(rng, [p for p in PERCENTS if _prices(difficulty, p, rise)])
    price = rng.choice(_prices(difficulty, p, rise))
    if rise:
        work.pct("increase", p, price)
        new = work.add("new price", price, work.result)
        facts = [rng.choice([f"a {sg} costs {money(price)}. Next month the price goes up by {p}%.",
                             f"the price of a {sg} is {money(price)}, and it will rise by {p}%.",
                             f"prices rise by {p}% next month. A {sg} costs {money(price)} now."])]
    else:
        work.pct("discount", p, price)
        if difficulty == 1:
            facts = [rng.choice([f"a {sg} costs {money(price)}, and the shop takes {p}% off.",
                                 f"in a sale, every {sg} is {p}% off. A {sg} usually costs {money(price)}.",
                                 f"{name} has a coupon for {p}% off a {sg} that costs {money(price)}."])]
            asked = rng.choice(["How much is the discount?", "How much money does the discount save?",
                                f"How much does {name} save?" if "coupon" in facts[0] else "How much is taken off the price?"])
            return paragraph(*facts, asked), work
        new = work.sub("sale price", price, work.result)
        facts = [rng.choice([f"a {sg} costs {money(price)}. It is on sale with {p}% off.",
                             f"in a sale, every {sg} is {p}% off. A {sg} usually costs {money(price)}.",
                             f"the price of a {sg} is {money(price)}, and the shop gives {p}% off.",
                             f"{name} sees a {sg} priced at {money(price)} with a {p}% discount."])]
    if difficulty == 2:
        asked = rng.choice(["What is the new price?", f"How much does the {sg} cost now?"] if rise else
                           ["What is the sale price?", f"How much does the {sg} cost after the discount?",
                            "What is the price after the discount?"])
        return paragraph(*facts, asked), work
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
# interest: simple and compound growth, and loss of value

INTEREST_KINDS = {
    # amount: what one year adds or takes away; total: what there is after; sign: +1 grows, -1 falls
    "bank": dict(amount="interest", total="balance", sign=+1, percents=(10, 20, 25), opening=[
        "{name} puts {m} in a savings account that pays {p}% interest a year.",
        "{name} saves {m} in a bank that pays {p}% interest each year.",
        "a bank pays {p}% interest per year. {name} deposits {m}.",
        "{name} invests {m} at {p}% interest per year.",
    ], one=["How much interest is earned in the first year?", "How much interest does the first year pay?",
            "What is the interest for the first year?"],
        after=["How much is in the account after {n}?", "What is the balance after {n}?",
               "How much money is in the account after {n}?"],
        simple="The interest is simple: it is paid on the first amount only.",
        compound="The interest is added at the end of each year and then earns interest too."),
    "growth": dict(amount="growth", total="size", sign=+1, percents=(10, 20, 25, 50), opening=[
        "a pond has {P} frogs, and the number grows by {p}% a year.",
        "a flock of {P} birds grows by {p}% each year.",
        "a herd of {P} deer grows by {p}% every year.",
        "an online club has {P} members. It grows by {p}% each year.",
        "{name} keeps {P} rabbits, and their number grows by {p}% a year.",
        "{name}'s stamp collection has {P} stamps. It grows by {p}% each year.",
        "{name}'s channel has {P} followers, and the number grows by {p}% every year.",
        "{name} plants {P} strawberry plants. Their number grows by {p}% a year.",
    ], one=["By how many does it grow in the first year?", "How much does it grow by in the first year?",
            "What is the growth in the first year?"],
        after=["How many are there after {n}?", "What is the number after {n}?", "How many will there be after {n}?"],
        simple="Each year it grows by the same number: {p}% of the starting size.",
        compound="Each year's growth is worked out on the size at the start of that year."),
    "value": dict(amount="loss", total="value", sign=-1, percents=(10, 20, 25, 50), opening=[
        "a car is worth {m}. Its value falls by {p}% every year.",
        "{name} buys a laptop for {m}. It loses {p}% of its value each year.",
        "a boat worth {m} loses {p}% of its value a year.",
        "the value of a machine is {m}, and it drops by {p}% per year.",
        "{name}'s bike is worth {m}, and it loses {p}% of its value every year.",
        "{name} pays {m} for a phone. Its value falls by {p}% a year.",
    ], one=["How much value is lost in the first year?", "By how much does the value fall in the first year?",
            "How much is lost in the first year?"],
        after=["What is it worth after {n}?", "What is the value after {n}?", "How much is it worth after {n}?"],
        simple="It loses the same amount each year: {p}% of its first value.",
        compound="Each year's loss is worked out on the value at the start of that year."),
}
YEARS = {2: "two years", 3: "three years", 4: "four years", 5: "five years"}


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


@family
def interest(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """A yearly percentage: one year's interest, a balance, simple interest, compound interest."""
    work, money = Work(difficulty), money_style(rng)
    name = rng.choice(NAMES)
    kind_name = rng.choice(list(INTEREST_KINDS))
    kind = INTEREST_KINDS[kind_name]
    amount, total, sign = kind["amount"], kind["total"], kind["sign"]
    n = rng.randint(2, 5) if difficulty == 3 else 0  # years of simple interest
    p, start = pick(rng, [(p, start) for p in kind["percents"] for start in _starts(difficulty, sign, p, n)])
    opening = rng.choice(kind["opening"]).format(name=name, m=money(start), P=start, p=p)

    def one_year(label_amount: str, label_total: str, value: int) -> int:
        change = work.pct(label_amount, p, value)
        return work.add(label_total, value, change) if sign > 0 else work.sub(label_total, value, change)

    if difficulty == 1:
        work.pct(amount, p, start)
        return paragraph(opening, rng.choice(kind["one"])), work
    if difficulty == 2:
        one_year(amount, total, start)
        return paragraph(opening, rng.choice(kind["after"]).format(n="one year")), work
    if difficulty == 3:
        yearly = work.pct(f"{amount} each year", p, start)
        change = work.mul(f"total {amount}", yearly, n)
        if sign > 0:
            work.add(total, start, change)
        else:
            work.sub(total, start, change)
        return paragraph(opening, kind["simple"].format(p=p), rng.choice(kind["after"]).format(n=YEARS[n])), work
    value = one_year(f"year one {amount}", f"{total} after year one", start)
    value = one_year(f"year two {amount}", f"{total} after year two", value)
    if kind_name == "bank" and rng.random() < 0.5:
        taken = rng.randint(2, value - 1)
        work.sub("balance left", value, taken)
        return paragraph(opening, kind["compound"],
                         f"After two years {name} takes out {money(taken)}. How much is left in the account?"), work
    return paragraph(opening, kind["compound"], rng.choice(kind["after"]).format(n="two years")), work


# ---------------------------------------------------------------------------------------
# average: the mean, a total from a mean, a missing value

AVERAGE_SCENES = [  # (who did it, what is counted, one slot, slots)
    ("{name} scored", "points", "game", "games"),
    ("{name} read", "pages", "day", "days"),
    ("{name} ran", "km", "day", "days"),
    ("a bakery sold", "cakes", "day", "days"),
    ("{name} got", "marks", "test", "tests"),
    ("a museum had", "visitors", "day", "days"),
    ("a team scored", "goals", "season", "seasons"),
    ("{name} sent", "messages", "day", "days"),
    ("a farm collected", "eggs", "day", "days"),
    ("{name} picked", "apples", "hour", "hours"),
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _values_with_mean(rng, n, mean) -> list[int]:
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


def _tell_values(rng, who, thing, slot, slots, values) -> str:
    n = len(values)
    listed = and_list([str(v) for v in values])
    forms = [f"in {n} {slots}, {who} {listed} {thing}.",
             f"over {n} {slots}, {who} these numbers of {thing}: {listed}.",
             f"{who} {listed} {thing} in {n} {slots}."]
    if slot == "day":
        days = [f"{values[0]} {thing} on {DAYS[0]}"] + [f"{v} on {d}" for v, d in zip(values[1:], DAYS[1:])]
        forms.append(f"{who} " + and_list(days) + ".")
    return rng.choice(forms)


@family
def average(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Means: a total from a mean, the mean of a list, a missing value for a target mean."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    who, thing, slot, slots = rng.choice(AVERAGE_SCENES)
    who = who.format(name=name)
    missing = difficulty >= 3 and rng.random() < 0.5
    if difficulty == 1:
        n = rng.randint(2, 9)
    elif missing:
        n = rng.choice({3: (3, 4), 4: (5, 6, 7)}[difficulty])
    else:
        n = {2: rng.choice((2, 3)), 3: rng.choice((4, 5)), 4: rng.choice((6, 7))}[difficulty]
    mean = num(rng, 2, (work.cap - 1) // n)  # the total, n times the mean, stays below the cap
    mean_q = rng.choice([f"What is the average number of {thing} per {slot}?", "What is the mean?",
                         f"On average, how many {thing} per {slot}?", f"What is the mean number of {thing} per {slot}?"])
    if difficulty == 1:
        work.mul(f"total {thing}", n, mean)
        told = rng.choice([f"{who} an average of {mean} {thing} per {slot} over {n} {slots}.",
                           f"over {n} {slots}, {who} {mean} {thing} per {slot} on average.",
                           f"for {n} {slots}, {who} {mean} {thing} a {slot} on average.",
                           f"{who} {mean} {thing} per {slot} on average, for {n} {slots}."])
        asked = rng.choice([f"How many {thing} is that in total?", f"How many {thing} altogether?",
                            f"What is the total number of {thing}?", f"How many {thing} in all?"])
        return paragraph(told, asked), work
    if missing:
        values = _values_with_mean(rng, n, mean)
        needed = work.mul(f"total {thing}", n, mean)
        known = work.add_up(values[:-1], "known total")
        work.sub(f"last {slot}", needed, known)
        told = rng.choice([
            f"{who} {and_list([str(v) for v in values[:-1]])} {thing} in the first {n - 1} {slots}.",
            f"in the first {n - 1} {slots}, {who} {and_list([str(v) for v in values[:-1]])} {thing}.",
        ])
        target = rng.choice([f"the average over {n} {slots} is {mean} {thing}.",
                             f"after {n} {slots} the mean is {mean} {thing} per {slot}."])
        facts = [told, target] if rng.random() < 0.5 else [target, told]
        on = "on" if slot == "day" else "in"
        asked = rng.choice([f"How many {thing} {on} the last {slot}?", f"What was the number of {thing} {on} the last {slot}?"])
        return paragraph(*facts, asked), work
    values = _values_with_mean(rng, n, mean)
    total = work.add_up(values, "total")
    work.div("average", total, n)
    return paragraph(_tell_values(rng, who, thing, slot, slots, values), mean_q), work


# ---------------------------------------------------------------------------------------
# ratio: scaling by a ratio, sharing a total in a ratio

RATIO_SCENES = [  # (first things, second things, where)
    ("boys", "girls", "in a class"), ("cats", "dogs", "at a shelter"), ("adults", "children", "at a show"),
    ("red beads", "blue beads", "on a necklace"), ("cups of flour", "cups of sugar", "in a recipe"),
    ("buckets of sand", "buckets of cement", "in a mix"), ("apples", "pears", "in a crate"),
    ("cars", "vans", "in a car park"), ("roses", "tulips", "in a garden"), ("teachers", "students", "on a trip"),
    ("sheep", "goats", "on a farm"), ("pens", "pencils", "in a drawer"), ("oak trees", "pine trees", "in a wood"),
    ("cups of juice", "cups of water", "in a punch"), ("chairs", "tables", "in a hall"), ("ducks", "geese", "on a pond"),
    ("green apples", "red apples", "in a basket"),
]


_COPRIME = [(a, b) for a in range(1, 10) for b in range(1, 10) if a != b and gcd(a, b) == 1]
_RATIOS = {  # the ratios a : b that keep every step's rules, for each kind of question
    "scale": [(a, b) for a, b in _COPRIME if a >= 2 and b >= 2],  # a part from a side, times b
    "share": [(a, b) for a, b in _COPRIME if b >= 2 and a + b <= 12],  # a part from the total, times b
    "difference": [(a, b) for a, b in _COPRIME if 2 <= a < b and a + b <= 12],  # both sides, their difference
    "total": [(a, b) for a, b in _COPRIME if b - a >= 2],  # a part from the difference, times a + b
}


def _ratio_fact(rng, A, B, a, b, where) -> str:
    return rng.choice([
        f"the ratio of {A} to {B} {where} is {a} : {b}.",
        f"{where}, there are {a} {A} for every {b} {B}.",
        f"for every {a} {A} {where} there are {b} {B}.",
        f"{where}, {A} and {B} are in the ratio {a} : {b}.",
        f"the ratio of {B} to {A} {where} is {b} : {a}.",
    ])


@family
def ratio(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Ratios: one side from the other, shares of a total, a difference in parts."""
    work = Work(difficulty)
    A, B, where = rng.choice(RATIO_SCENES)
    if rng.random() < 0.5:
        A, B = B, A
    cap = work.cap
    if difficulty == 1:
        k, part = factors(rng, cap - 1, factor=9)
        fact = rng.choice([f"{where}, there are {k} times as many {B} as {A}.",
                           f"the ratio of {A} to {B} {where} is 1 : {k}.",
                           f"{where}, there are {k} {B} for each one of the {A}."])
        if rng.random() < 0.5:
            work.mul(B, part, k)
            facts = [fact, f"there are {part} {A}."]
            asked = rng.choice([f"How many {B} are there?", f"How many {B} are there {where}?", f"What is the number of {B}?"])
        else:
            work.div(A, part * k, k)
            facts = [fact, f"there are {part * k} {B}."]
            asked = rng.choice([f"How many {A} are there?", f"How many {A} are there {where}?", f"What is the number of {A}?"])
        return paragraph(*(facts if rng.random() < 0.7 else facts[::-1]), asked), work
    shape = {2: "scale", 3: "share", 4: rng.choice(["difference", "total"])}[difficulty]
    a, b = rng.choice(_RATIOS[shape])
    # one part is at most what keeps the biggest number below the cap
    biggest = max(a, b) if shape == "scale" else a + b
    part = num(rng, 2, (cap - 1) // biggest if shape != "total" or a + b <= 12 else min(12, (cap - 1) // biggest))
    fact = _ratio_fact(rng, A, B, a, b, where)
    if difficulty == 2:
        one = work.div("one part", a * part, a)
        work.mul(B, one, b)
        facts = [fact, f"there are {a * part} {A}."]
        return paragraph(*(facts if rng.random() < 0.7 else facts[::-1]), f"How many {B} are there?"), work
    together = rng.choice([f"there are {(a + b) * part} {A} and {B} altogether.",
                           f"{A} and {B} together number {(a + b) * part}."])
    if shape in ("share", "difference"):
        parts = work.add("total parts", a, b)
        one = work.div("one part", (a + b) * part, parts)
        if difficulty == 3:
            work.mul(B, one, b)
            asked = f"How many {B} are there?"
        else:
            first = work.mul(A, one, a)
            second = work.mul(B, one, b)
            work.sub("difference", second, first)
            asked = rng.choice([f"How many more {B} than {A} are there?", f"How many fewer {A} than {B} are there?"])
        facts = [fact, together]
        return paragraph(*(facts if rng.random() < 0.7 else facts[::-1]), asked), work
    diff = work.sub("difference in parts", b, a)
    one = work.div("one part", (b - a) * part, diff)
    parts = work.add("total parts", a, b)
    work.mul("total", one, parts)
    facts = [fact, f"there are {(b - a) * part} more {B} than {A}."]
    asked = rng.choice([f"How many {A} and {B} are there altogether?", f"How many {A} and {B} are there in total?"])
    return paragraph(*(facts if rng.random() < 0.7 else facts[::-1]), asked), work


# ---------------------------------------------------------------------------------------
# equation: linear equations, written with symbols or in words


def _ask_symbolic(rng, eq, v, name) -> str:
    return rng.choice([f"Solve {eq}. What is {v}?", f"If {eq}, what is {v}?", f"What value of {v} makes {eq} true?",
                       f"Given {eq}, what is {v}?", f"Find {v} when {eq}. What is {v}?",
                       f"{name} writes {eq} on the board. What is {v}?",
                       f"{name} solves {eq}. What value of {v} does {name} find?"])


@family
def equation(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Linear equations in one unknown, undone one operation a step; at 4, then evaluated."""
    work = Work(difficulty)
    name = rng.choice(NAMES)
    v = rng.choice("xyn")
    cap = work.cap
    form = {1: rng.choice(["x+b", "x-b", "ax", "x/a"]),
            2: rng.choice(["ax+b", "ax-b", "x/a+b", "a(x+b)"]),
            3: rng.choice(["ax+b=cx+d", "a(x+b)+d"]),
            4: rng.choice(["ax+b", "ax-b", "ax+b=cx+d"])}[difficulty]
    if form == "x+b":
        x = num(rng, 2, cap - 3)
        b = num(rng, 2, cap - 1 - x)
        c = x + b
        work.sub("subtract from both sides", c, b)
        words = [f"I think of a number and add {b}. The result is {c}. What is my number?",
                 f"{name} thinks of a number, adds {b} and gets {c}. What number did {name} think of?",
                 f"When {b} is added to a number, the answer is {c}. What is the number?",
                 f"{name} adds {b} to a secret number and gets {c}. What is the secret number?"]
        eq = f"{v} + {b} = {c}"
    elif form == "x-b":
        c = num(rng, 2, cap - 3)
        b = num(rng, 2, cap - 1 - c)
        x = c + b
        work.add("add to both sides", c, b)
        words = [f"I think of a number and take away {b}. The result is {c}. What is my number?",
                 f"{name} thinks of a number, subtracts {b} and gets {c}. What number did {name} think of?",
                 f"A number minus {b} is {c}. What is the number?",
                 f"{name} takes {b} away from a secret number and is left with {c}. What is the secret number?"]
        eq = f"{v} - {b} = {c}"
    elif form == "ax":
        a, x = factors(rng, cap - 1)
        c = a * x
        work.div("divide both sides", c, a)
        words = [f"I think of a number and multiply it by {a}. The result is {c}. What is my number?",
                 f"{a} times a number is {c}. What is the number?",
                 f"{name} multiplies a number by {a} and gets {c}. What was the number?",
                 f"{name} says: {a} times my number is {c}. What is {name}'s number?"]
        eq = f"{a}{v} = {c}"
    elif form == "x/a":
        a, c = factors(rng, cap - 1)
        x = a * c
        work.mul("multiply both sides", c, a)
        words = [f"I think of a number and divide it by {a}. The result is {c}. What is my number?",
                 f"A number divided by {a} is {c}. What is the number?",
                 f"{name} shares a number into {a} equal parts and each part is {c}. What was the number?",
                 f"{name} says: my number divided by {a} is {c}. What is {name}'s number?"]
        eq = f"{v} / {a} = {c}"
    elif form == "ax+b":
        a, x = factors(rng, cap - 3)
        b = num(rng, 2, cap - 1 - a * x)
        c = a * x + b
        work.div("divide both sides", work.sub("subtract from both sides", c, b), a)
        words = [f"I think of a number, multiply it by {a} and add {b}. The result is {c}. What is my number?",
                 f"{name} thinks of a number, multiplies it by {a}, then adds {b}, and gets {c}. What was the number?",
                 f"{b} more than {a} times a number is {c}. What is the number?",
                 f"If you multiply a number by {a} and then add {b}, you get {c}. What is the number?"]
        eq = f"{a}{v} + {b} = {c}"
    elif form == "ax-b":
        a, x = factors(rng, cap - 1)
        b = num(rng, 2, a * x - 2)
        c = a * x - b
        work.div("divide both sides", work.add("add to both sides", c, b), a)
        words = [f"I think of a number, multiply it by {a} and subtract {b}. The result is {c}. What is my number?",
                 f"{name} thinks of a number, multiplies it by {a}, then takes away {b}, and gets {c}. What was the number?",
                 f"{b} less than {a} times a number is {c}. What is the number?"]
        eq = f"{a}{v} - {b} = {c}"
    elif form == "x/a+b":
        a, q = factors(rng, cap - 1)
        b = num(rng, 2, cap - 1 - q)
        x, c = q * a, q + b
        work.mul("multiply both sides", work.sub("subtract from both sides", c, b), a)
        words = [f"I think of a number, divide it by {a} and add {b}. The result is {c}. What is my number?",
                 f"{name} divides a number by {a}, adds {b} and gets {c}. What was the number?"]
        eq = f"{v} / {a} + {b} = {c}"
    elif form == "a(x+b)":
        a, inner = factors(rng, cap - 1, least=4)
        x = num(rng, 2, inner - 2)
        b = inner - x
        c = a * (x + b)
        work.sub("subtract from both sides", work.div("divide both sides", c, a), b)
        words = [f"I think of a number, add {b} and multiply the result by {a}. I get {c}. What is my number?",
                 f"{name} adds {b} to a number and multiplies the sum by {a}, getting {c}. What was the number?"]
        eq = f"{a}({v} + {b}) = {c}"
    elif form == "a(x+b)+d":
        a, inner = factors(rng, cap - 3, least=4)
        x = num(rng, 2, inner - 2)
        b = inner - x
        d = num(rng, 2, cap - 1 - a * inner)
        c = a * (x + b) + d
        inner = work.div("divide both sides", work.sub("subtract from both sides", c, d), a)
        work.sub("subtract from both sides", inner, b)
        words = [f"I think of a number, add {b}, multiply by {a} and then add {d}. I get {c}. What is my number?"]
        eq = f"{a}({v} + {b}) + {d} = {c}"
    else:  # ax + b = cx + d, with a > c
        coef, x = factors(rng, cap - 3, factor=10)  # a - c: the unknowns collected
        c = num(rng, 2, 12 - coef)
        a = c + coef
        b = num(rng, 2, cap - 1 - coef * x)
        d = (a - c) * x + b
        coef = work.sub("collect the unknowns", a, c)
        work.div("divide both sides", work.sub("collect the numbers", d, b), coef)
        words = [f"{a} times a number plus {b} is the same as {c} times the number plus {d}. What is the number?"]
        eq = f"{a}{v} + {b} = {c}{v} + {d}"
    if difficulty < 4:
        question = rng.choice(words) if rng.random() < 0.5 else _ask_symbolic(rng, eq, v, name)
        return question, work
    k = num(rng, 2, min(12, (cap - 1) // x))
    product = work.mul("evaluate the product", k, x)
    if product <= cap - 3 and (product < 3 or rng.random() < 0.5):
        m = num(rng, 2, cap - 1 - product)
        work.add("evaluate the expression", product, m)
        expr = f"{k}{v} + {m}"
    else:
        m = num(rng, 2, product - 1)
        work.sub("evaluate the expression", product, m)
        expr = f"{k}{v} - {m}"
    return rng.choice([f"If {eq}, what is {expr}?", f"Given {eq}, find the value of {expr}. What is it?",
                       f"Solve {eq} for {v}. What is {expr}?"]), work


# ---------------------------------------------------------------------------------------
# geometry: perimeter and area of rectangles, squares and triangles

RECTANGLES = [("garden", "m"), ("room", "m"), ("field", "m"), ("playground", "m"), ("car park", "m"),
              ("patio", "m"), ("yard", "m"), ("vegetable plot", "m"), ("poster", "cm"), ("photo", "cm"),
              ("window", "cm"), ("notice board", "cm"), ("table top", "cm"), ("rug", "cm")]
OUTDOORS = ["garden", "field", "playground", "patio", "yard", "vegetable plot", "lawn", "park"]  # fenced, turfed, paved
TRIANGLES = [("flag", "cm"), ("sail", "m"), ("flower bed", "m"), ("road sign", "cm"), ("park", "m")]
UNIT_WORDS = {"m": ("metre", "metres"), "cm": ("centimetre", "centimetres")}


def _sides(rng, most: int, least: int = 2) -> tuple[int, int]:
    """(length, width) of a rectangle, the width from `least` to 12 and shorter than the length,
    its area at most `most`."""
    widest = least - 1
    while widest < 12 and (widest + 1) * (widest + 2) <= most:
        widest += 1
    w = num(rng, least, widest)
    return num(rng, w + 1, most // w), w


def _rectangle(rng, obj, l, w, u) -> str:
    return rng.choice([f"a rectangular {obj} is {l} {u} long and {w} {u} wide.",
                       f"a {obj} is a rectangle {w} {u} wide and {l} {u} long.",
                       f"the {obj} is a rectangle with length {l} {u} and width {w} {u}.",
                       f"a rectangular {obj} measures {l} {u} by {w} {u}."])


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
    unit, units = UNIT_WORDS[u]
    cap = work.cap
    # the price per metre or square metre, then the sizes that keep the cost below the cap
    most = {"square fence": (cap - 1) // 8, "area cost": (cap - 1) // 6, "perimeter cost": (cap - 1) // 10,
            "two areas cost": (cap - 1) // 12, "perimeter cost change": most_to_pay(cap) // 10,
            "area minus cost": (cap - 1) // 2}.get(shape, 12)
    price = num(rng, 2, min(12, most))
    if shape in ("perimeter", "perimeter cost", "perimeter cost change"):
        # half the perimeter, l + w, such that the perimeter (and its cost) stays below the cap
        most_cost = most_to_pay(cap) if shape == "perimeter cost change" else cap - 1
        half = num(rng, 5, most_cost // (2 * (price if "cost" in shape else 1)))
        w = num(rng, 2, min(12, (half - 1) // 2))
        l = half - w
    elif shape == "width then area":  # the area and the perimeter both stay below the cap
        l, w = _sides(rng, cap - 1)
        if 2 * (l + w) >= cap:
            raise Redraw
    else:
        most_area = {"area": cap - 1, "area cost": (cap - 1) // price, "two areas": cap - 7,
                     "two areas cost": (cap - 1) // price - 6}.get(shape, 0)
        l, w = _sides(rng, most_area) if most_area else (0, 0)
        if shape == "area minus cost":  # a pond inside leaves at least l + w - 1 of grass
            w = num(rng, 3, min(12, ((cap - 1) // price - 3) // 2))
            l = num(rng, w + 1, min((cap - 1) // w, (cap - 1) // price + 1 - w))
    perimeter_q = rng.choice([f"What is the perimeter of the {obj}?", f"How far is it all the way around the {obj}?",
                              f"What is the distance around the {obj} in {units}?"])
    area_q = rng.choice([f"What is the area of the {obj} in square {units}?", f"What is the area of the {obj}?",
                         f"How many square {units} does the {obj} cover?"])
    if shape == "square perimeter":
        s = num(rng, 2, (cap - 1) // 4)
        work.mul("perimeter", 4, s)
        told = rng.choice([f"a square {obj} has sides of {s} {u}.", f"each side of a square {obj} is {s} {u} long.",
                           f"{name} has a square {obj} with sides of {s} {u}.",
                           f"{name} measures a square {obj}: each side is {s} {u}."])
        return paragraph(told, perimeter_q), work
    if shape == "square side":
        s = num(rng, 2, (cap - 1) // 4)
        work.div("side", 4 * s, 4)
        told = rng.choice([f"a square {obj} has a perimeter of {4 * s} {u}.",
                           f"{name} measures all the way around a square {obj}: it is {4 * s} {u}.",
                           f"the perimeter of {name}'s square {obj} is {4 * s} {u}."])
        return paragraph(told, rng.choice([f"How long is each side of the {obj}?", "What is the length of one side?",
                                           f"How many {units} long is one side?"])), work
    if shape == "area":
        work.mul("area", l, w)
        return paragraph(_rectangle(rng, obj, l, w, u), area_q), work
    if shape == "triangle":
        tri, tu = rng.choice(TRIANGLES)
        a, b = num(rng, 3, (cap - 4) // 2), num(rng, 3, (cap - 4) // 2)
        sides = [a, b, num(rng, max(3, abs(a - b) + 1), min(a + b - 1, cap - 1 - a - b))]
        rng.shuffle(sides)
        work.add("perimeter", *sides)
        return paragraph(f"a triangular {tri} has sides of {sides[0]} {tu}, {sides[1]} {tu} and {sides[2]} {tu}.",
                         rng.choice([f"What is the perimeter of the {tri}?", f"How far is it around the {tri}?"])), work
    if shape == "width then area":
        half = work.div("length plus width", 2 * (l + w), 2)
        work.sub("width", half, l)
        work.mul("area", l, w)
        return paragraph(f"a rectangular {obj} has a perimeter of {2 * (l + w)} {u}. It is {l} {u} long.", area_q), work
    if shape == "square fence":
        s = num(rng, 2, (cap - 1) // (4 * price))
        perimeter = work.mul("perimeter", 4, s)
        work.mul("cost of the fence", perimeter, price)
        return paragraph(f"{name} puts a fence around a square {obj} with sides of {s} {u}.",
                         f"fencing costs {money(price)} per {unit}.",
                         "How much does the fence cost?"), work
    if shape in ("perimeter", "perimeter cost", "perimeter cost change"):
        half = work.add("length plus width", l, w)
        perimeter = work.mul("perimeter", half, 2)
        facts = [_rectangle(rng, obj, l, w, u)]
        if shape == "perimeter":
            fencing = f"How many {units} of fencing go around the {obj}?"
            return paragraph(*facts, rng.choice([perimeter_q, fencing] if u == "m" else [perimeter_q])), work
        cost = work.mul("cost of the fence", perimeter, price)
        facts.append(rng.choice([f"fencing costs {money(price)} per {unit}.", f"each {unit} of fence costs {money(price)}."]))
        if shape == "perimeter cost":
            return paragraph(*(facts if rng.random() < 0.6 else facts[::-1]),
                             rng.choice([f"How much does it cost to fence the {obj}?", "What is the cost of the fence?"])), work
        paid = payment(rng, cost, work.cap)
        work.sub("change", paid, cost)
        return paragraph(*facts, f"{name} pays for the fence with {money(paid)}.",
                         f"How much change does {name} get?"), work
    if shape == "area cost":
        area = work.mul("area", l, w)
        work.mul("cost", area, price)
        return paragraph(_rectangle(rng, obj, l, w, u), f"turf costs {money(price)} per square {unit}.",
                         f"How much does it cost to cover the {obj} with turf?"), work
    if shape in ("two areas", "two areas cost"):
        l2, w2 = _sides(rng, most_area + 6 - l * w)
        first = work.mul("first area", l, w)
        second = work.mul("second area", l2, w2)
        area = work.add("total area", first, second)
        facts = [f"an L-shaped {obj} is made of two rectangles: one is {l} {u} by {w} {u}, the other {l2} {u} by {w2} {u}."]
        if shape == "two areas":
            return paragraph(*facts, area_q), work
        work.mul("cost", area, price)
        return paragraph(*facts, f"paving costs {money(price)} per square {unit}.",
                         f"How much does it cost to pave the whole {obj}?"), work
    # area minus: a pond inside a garden, the grass around it costs so much per square metre;
    # the pond is smaller each way and leaves at most what the price allows for the grass
    most_grass = (cap - 1) // price
    w2 = num(rng, max(2, -(-(l * w - most_grass) // (l - 1))), w - 1)
    l2 = num(rng, max(2, -(-(l * w - most_grass) // w2)), l - 1)
    whole = work.mul("whole area", l, w)
    pond = work.mul("pond area", l2, w2)
    grass = work.sub("grass area", whole, pond)
    work.mul("cost", grass, price)
    return paragraph(_rectangle(rng, obj, l, w, u), f"a pond in it is {l2} {u} by {w2} {u}.",
                     f"grass seed for the rest costs {money(price)} per square {unit}.",
                     "How much does the seed cost?"), work


# ---------------------------------------------------------------------------------------
# ages: ages related by differences and multiples, now, later and earlier


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
    ages_now, relations = [known], []
    for before, person in zip(people, people[1:]):
        age = ages_now[-1]
        kind = pick(rng, [kind for kind, fits in [("older", age + 2 <= oldest), ("younger", age >= 3),
                                                   ("times", 2 <= age <= oldest // 2), ("half", age % 2 == 0)] if fits])
        if kind == "older":
            d = num(rng, 2, min(30, oldest - age))
            new = work.add(f"{person} is {d} years older than {before}", age, d)
            relations.append(rng.choice([f"{person} is {d} years older than {before}.",
                                         f"{before} is {d} years younger than {person}.",
                                         f"{person} was born {d} years before {before}."]))
        elif kind == "younger":
            d = num(rng, 2, min(30, age - 1))
            new = work.sub(f"{person} is {d} years younger than {before}", age, d)
            relations.append(rng.choice([f"{person} is {d} years younger than {before}.",
                                         f"{before} is {d} years older than {person}.",
                                         f"{person} was born {d} years after {before}."]))
        elif kind == "times":
            k = num(rng, 2, min(4, oldest // age))
            times = "twice" if k == 2 else f"{k} times"
            new = work.mul(f"{person} is {times} as old as {before}", age, k)
            relations.append(rng.choice([f"{person} is {times} as old as {before}.",
                                         f"{person}'s age is {times} {before}'s age."]))
        else:
            new = work.div(f"{person} is half as old as {before}", age, 2)
            relations.append(rng.choice([f"{person} is half as old as {before}.",
                                         f"{person}'s age is half of {before}'s age."]))
        ages_now.append(new)
    # the facts in any order: the chain is the same whichever sentence comes first
    facts = [first] + rng.sample(relations, len(relations))
    if rng.random() < 0.3:
        facts = facts[1:] + facts[:1]
    last = people[-1]
    # later (n years added) or earlier (n taken away), whichever keeps the age from 1 to the cap
    later = ages_now[-1] < 3 or (ages_now[-1] + 2 < work.cap and rng.random() < 0.5)
    if asked_for == "sum then":  # three times n years added to the sum stays below the cap
        n = num(rng, 2, min(12, (work.cap - 1 - sum(ages_now)) // 3))
    elif asked_for == "then":
        n = num(rng, 2, min(12, work.cap - 1 - ages_now[-1] if later else ages_now[-1] - 1))
    if asked_for == "now":
        asked = rng.choice([f"How old is {last}?", f"What is {last}'s age?", f"How old is {last} now?",
                            f"How many years old is {last}?", f"Can you work out how old {last} is?"])
    elif asked_for == "sum then":
        total = work.add("sum of ages", *ages_now)
        added = work.mul("years added", 3, n)
        work.add("sum then", total, added)
        asked = rng.choice([f"What will the sum of their three ages be in {n} years?",
                            f"In {n} years, what will the ages of {and_list(people)} add up to?"])
    elif later:
        work.add(f"{last} in {n} years", ages_now[-1], n)
        asked = rng.choice([f"How old will {last} be in {n} years?", f"What will {last}'s age be {n} years from now?",
                            f"In {n} years, how old will {last} be?", f"How old will {last} be {n} years from today?"])
    else:
        work.sub(f"{last} {n} years ago", ages_now[-1], n)
        asked = rng.choice([f"How old was {last} {n} years ago?", f"What was {last}'s age {n} years ago?",
                            f"{n} years ago, how old was {last}?", f"How old was {last} {n} years before today?"])
    return paragraph(*facts, asked), work


# ---------------------------------------------------------------------------------------
# API entrypoints


def normalise(question: str) -> str:
    """A question as compared for duplicates: lowercase, whitespace collapsed."""
    return " ".join(question.lower().split())


def synth_traces(n: int, seed: int, *, levels=(1, 2, 3, 4), families=None) -> list[Trace]:
    """`n` verified traces, balanced over families x levels, the same for the same seed.

    Every cell (family, level) draws from its own generator seeded by (seed, family, level), so
    adding a family leaves the others' draws alone. No two traces share a question.
    """
    from tracetutor.verify import trace_failures, verify_trace

    names = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    bad_levels = [d for d in levels if d not in CAP]
    if bad_levels or not names or not levels:
        raise ValueError(f"levels must be a non-empty subset of {sorted(CAP)}, got {list(levels)}")
    cells = [(f, d) for f in names for d in levels]
    rng = random.Random(f"synth/{seed}")
    counts = dict.fromkeys(cells, n // len(cells))
    for cell in rng.sample(cells, n % len(cells)):
        counts[cell] += 1

    seen, drawn = set(), []
    for name, level in cells:
        cell_rng = random.Random(f"synth/{seed}/{name}/{level}")
        want, tries = counts[(name, level)], 0
        got = 0
        while got < want:
            tries += 1
            if tries > 20 * want + 1000:
                raise RuntimeError(f"{name} at level {level}: only {got} distinct questions in {tries} draws")
            question, steps, answer = FAMILIES[name](cell_rng, level)
            if normalise(question) in seen:
                continue
            seen.add(normalise(question))
            drawn.append((name, level, question, steps, answer))
            got += 1
    rng.shuffle(drawn)

    traces = []
    for i, (name, level, question, steps, answer) in enumerate(drawn):
        trace = Trace(id=f"synth/{name}/{i:06d}", question=question, steps=steps, answer=answer,
                      source="synth", family=name, difficulty=level)
        trace.checks = verify_trace(trace)
        if not trace.checks["answer"] or not all(trace.checks["steps"]):
            raise RuntimeError(f"generated trace {trace.id} fails verification: {'; '.join(trace_failures(trace))}")
        traces.append(trace)
    return traces


def split_heldout(traces: list[Trace], n_heldout: int, seed: int) -> tuple[list[Trace], list[Trace]]:
    """(train, held-out): held-out balanced over family x difficulty, disjoint by question.

    A question held out keeps every copy of itself out of train; held-out keeps one copy.
    """
    rng = random.Random(f"heldout/{seed}")
    by_cell: dict[tuple, list[Trace]] = {}
    firsts = set()
    for t in traces:
        key = normalise(t.question)
        if key not in firsts:
            firsts.add(key)
            by_cell.setdefault((str(t.family), t.difficulty or 0), []).append(t)
    cells = sorted(by_cell)
    for cell in cells:
        rng.shuffle(by_cell[cell])
    rng.shuffle(cells)  # which cells give one more when the count does not divide evenly
    heldout: list[Trace] = []
    while len(heldout) < n_heldout and any(by_cell[c] for c in cells):
        for cell in cells:
            if by_cell[cell] and len(heldout) < n_heldout:
                heldout.append(by_cell[cell].pop())
    held = {normalise(t.question) for t in heldout}
    train = [t for t in traces if normalise(t.question) not in held]
    return train, heldout


def make_splits(n_train: int, n_heldout: int, seed: int, levels=(1, 2, 3, 4),
                families=None) -> tuple[list[Trace], list[Trace]]:
    """Generate once and split: `n_train` training and `n_heldout` held-out traces, no held-out
    question text appearing in train."""
    traces = synth_traces(n_train + n_heldout, seed, levels=levels, families=families)
    train, heldout = split_heldout(traces, n_heldout, seed)
    assert not {normalise(t.question) for t in train} & {normalise(t.question) for t in heldout}
    return train, heldout
