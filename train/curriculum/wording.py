"""The words shared by the families and the helpers that put a question together.

Word lists and sentence templates that stand alone live as JSON under `words/` (one file per
family, `common.json` for the names and currencies every family draws from), so that a name or
a thing is added without touching code; sentences built around a family's numbers stay beside
the code that draws them. A list's words and order are part of the draws: editing a list
changes the traces of a seed, so raise VERSION with it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from importlib.resources import files


def words(name: str) -> dict:
    """The word lists of `words/<name>.json`."""
    return json.loads(files(__package__).joinpath("words", f"{name}.json").read_text(encoding="utf-8"))


_COMMON = words("common")
NAMES: list[str] = _COMMON["names"]
CURRENCIES: list[list[str]] = _COMMON["currencies"]  # [plural, symbol or ""]


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
