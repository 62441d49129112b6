"""shopping: the costs of several items, a total and change."""

from __future__ import annotations

import random
from collections.abc import Callable

from .core import Work, factors, family, most_to_pay, num, payment, pick
from .wording import NAMES, and_list, money_style, paragraph, words

WORDS = words("shopping")
SHOPS = WORDS["shops"]  # shop: [[item, items], ...]
GOODS_BY_KG = WORDS["goods_by_kg"]


@family
def shopping(rng: random.Random, difficulty: int) -> tuple[str, Work]:
    """Buying several items: cost of each line, the total, the change from a payment."""
    money = money_style(rng)
    name = rng.choice(NAMES)
    shop = rng.choice(list(SHOPS))
    work, lines, item, total, change = _basket(rng, difficulty, shop)
    facts = _tell_basket(rng, name, shop, money, lines, item)
    if change:  # the payment is drawn after the basket is told
        paid = payment(rng, total, work.cap)
        work.sub("change", paid, total)
        facts.append(rng.choice([
            f"{name} pays with {money(paid)}.", f"{name} hands the cashier {money(paid)}.",
            f"{name} gives {money(paid)} to pay.", f"{name} pays using {money(paid)}.",
        ]))
        asked = rng.choice(WORDS["asked_change"])
    else:
        asked = rng.choice(WORDS["asked_total"])
    return paragraph(*facts, asked.format(name=name)), work


# ---------------------------------------------------------------------------------------
# The numbers and steps


def _basket(rng: random.Random, difficulty: int, shop: str):
    """What is bought and the steps that cost it: (work, lines bought in quantity, one single
    item or None, the total, whether change is asked). Items are drawn with their numbers: a
    line's step is labelled with its item."""
    work = Work(difficulty)
    # (lines bought in quantity, one single item or None, whether change is asked)
    n_lines, single, change = {1: rng.choice([(1, False, False), (0, True, True)]),
                               2: (1, False, True),
                               3: rng.choice([(2, False, False), (1, True, True)]),
                               4: rng.choice([(2, False, True), (3, False, True)])}[difficulty]
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
    return work, lines, item, total, change


def _line(rng: random.Random, shop: str, most: int, taken: set[str]) -> dict:
    """One line of a shopping list: quantity, item and price, costing at most `most`, an item not
    yet in `taken`."""
    q, p = factors(rng, most)
    if shop == "the market" and rng.random() < 0.4:
        good = pick(rng, [g for g in GOODS_BY_KG if g not in taken])
        return dict(q=q, p=p, sg=good, pl=good, kg=True)
    sg, pl = pick(rng, [(sg, pl) for sg, pl in SHOPS[shop] if pl not in taken])
    return dict(q=q, p=p, sg=sg, pl=pl, kg=False)


# ---------------------------------------------------------------------------------------
# The wording


def _tell_basket(rng: random.Random, name: str, shop: str, money: Callable[[int], str],
                 lines: list[dict], item: dict | None) -> list[str]:
    """What is bought and at what price: the prices first then the quantities, or both at once."""
    if not lines:
        return [rng.choice([
            f"at {shop}, a {item['sg']} costs {money(item['p'])}.",
            f"{name} buys a {item['sg']} for {money(item['p'])} at {shop}.",
            f"{name} picks a {item['sg']} priced at {money(item['p'])} at {shop}.",
        ])]
    if rng.random() < 0.4:  # prices first, in any order, then the quantities
        prices = [_price(rng, line, money) for line in lines]
        if item:
            prices.append(f"a {item['sg']} costs {money(item['p'])}")
        buys = [_bought(line) for line in lines]
        return [f"at {shop}, " + and_list(rng.sample(prices, len(prices))) + ".",
                f"{name} buys " + and_list(buys) + (f" and a {item['sg']}" if item else "") + "."]
    buys = [_bought_at(rng, line, money) for line in lines]
    if item:
        buys.append(f"a {item['sg']} for {money(item['p'])}")
    return [rng.choice([
        f"at {shop}, {name} buys " + and_list(buys) + ".",
        f"{name} goes to {shop} and buys " + and_list(buys) + ".",
        f"{name} buys " + and_list(buys) + f" at {shop}.",
    ])]


def _bought(line: dict) -> str:
    return f"{line['q']} kg of {line['pl']}" if line["kg"] else f"{line['q']} {line['pl']}"


def _bought_at(rng: random.Random, line: dict, money: Callable[[int], str]) -> str:
    if line["kg"]:
        return f"{line['q']} kg of {line['pl']} at {money(line['p'])} per kg"
    return rng.choice(["{q} {pl} at {p} each", "{q} {pl} for {p} each"]).format(
        q=line["q"], pl=line["pl"], p=money(line["p"]))


def _price(rng: random.Random, line: dict, money: Callable[[int], str]) -> str:
    if line["kg"]:
        return f"the price of {line['pl']} is {money(line['p'])} per kg"
    return rng.choice(["a {sg} costs {p}", "{pl} cost {p} each", "the price of a {sg} is {p}"]).format(
        sg=line["sg"], pl=line["pl"], p=money(line["p"]))
