"""Exact checking of the arithmetic in a trace's steps, with rationals and no `eval`.

A claim is a chain of expressions joined by `=`, found in free text: `16 - 3 - 4 = 9`,
`(3 + 4) x 2 = 14`, `$12.50 / 5 = $2.50`, `25% of 40 = 10`, `1/2 of 30 = 15`, or GSM8K's
`<<48/2=24>>`. Every expression in a chain must have the same value, so `2 * 3 = 6 * 4 = 24`
is false. When a step holds GSM8K annotations, they are its only claims: the text around
them repeats them (`48/2 = <<48/2=24>>24`).

Each claim has one of three outcomes:
- *true* or *false*: a claim read completely, whose sides do or do not agree;
- *unverifiable*: a form the verifier does not read, so it says nothing about it: implicit
  multiplication (`2(3) = 6`), a mixed number (`8 x 1 1/2 = 12`), a word inside an expression
  (`60g * 4/5 = 240g/5 = 48`, `3N + 3 = 18`), a change of units or form between bare numbers
  (`120% = 1.2`), a number with a leading zero (`0900 - 0130 = 0730`), and a step with no
  claim at all (a sentence with no arithmetic). A claim that reads false is unverifiable, not
  false, when a person who wrote it would have meant a true one: a running computation
  (`600 / 50 = 12 hours * 60 = 720`), a percentage meant as a plain number
  (`9 / 21 * 100% = 42.857`), a division whose spacing groups it otherwise (`50/ 1/2 = 100`),
  a quotient with its remainder (`100 / 3 = 33, 1 remaining`), a change of units by a power of
  ten (`$1 / 2 = 50 cents`), or numbers of different units added (`4 pounds - 6 ounces`).
When a chain's first or last side is cut by such a form, the sides between are still read
(`S + 143 = 200 - 16 = 184` checks `200 - 16 = 184`). Only a false claim fails a trace.

What counts as a claim:
- at least one side of the `=` is arithmetic; `x = 5` is not;
- `x`, `times`, `plus`, `minus`, `divided by` are operators only between numbers
  (`3 x 4`, `6 boxes x 4`), never inside words;
- words after a number are read as its units when an operator follows them
  (`5 apples + 3 apples = 8 apples`), and so is a rate (`6 desks/row * 2`); any other word
  ends the expression, as do punctuation and times of day (`2:30`);
- `25%` is 25/100; `of` after a percentage or a fraction multiplies.

Values are exact. A written decimal may round a value that has no finite decimal expansion
(`10 / 3 = 3.33`), but `2.46 = 2.5` is false.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from fractions import Fraction

from .trace import Trace, TraceFileError, canonical_answer, iter_trace_lines, parse_number


@dataclass
class Check:
    """The result of a check; `reason` says what is wrong when `ok` is False."""

    ok: bool
    reason: str = ""


OUTCOMES = ("true", "false", "unverifiable")


@dataclass
class Claim:
    """One chain of expressions joined by `=`, as found in a step, with its outcome."""

    text: str  # as written, e.g. "16 - 3 - 4 = 9"
    sides: list[str]  # each expression between the `=` signs, as written
    values: list[Fraction | None]  # the exact value of each side; None where it divides by zero
    ok: bool  # False only for a false claim: an unverifiable one fails nothing
    reason: str = ""  # why it is false, or which form made it unverifiable
    result: Fraction | None = None  # the last side as written (`25%` reads 25), for the answer
    outcome: str = "true"  # one of OUTCOMES


# ---------------------------------------------------------------------------------------
# Tokens


@dataclass
class _Token:
    kind: str  # "num", "op", "(", ")", "=", "word", "break"
    text: str
    start: int
    end: int
    op: str = ""  # for "op": one of + - * /
    value: Fraction | None = None  # for "num": its value, 25% being 1/4
    percent: bool = False
    decimals: int = 0  # digits written after the decimal point
    unit: str | None = None  # for "num": `$` or the word after it (`apple` in `5 apples + 3`)


_SCAN = re.compile(
    r"""
    (?P<time>\d{1,2}:\d{2}(?::\d{2})?(?!\d))
  | (?P<num>[$£€]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|[$£€]?\.\d+)(?:\.\.\.|…)?(?P<pct>\s*%)?
  | (?P<op>[-+*/×÷·−–])
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<eq>=)
  | (?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*|[$£€])
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_OPS = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "·": "*", "/": "/", "÷": "/"}
_WORD_OPS = {"x": "*", "times": "*", "plus": "+", "minus": "-"}


def _scan(text: str) -> list[_Token]:
    """Split text into tokens, spaces dropped; times of day and punctuation become breaks."""
    tokens = []
    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "pct":  # the percent group belongs to a number
            kind = "num"
        start, end, piece = m.start(), m.end(), m.group()
        if kind == "space":
            continue
        if kind == "num":
            digits = m["num"].lstrip("$£€").replace(",", "")
            value = Fraction(digits)
            percent = m["pct"] is not None
            decimals = len(digits.partition(".")[2])
            if percent:
                value /= 100
            unit = piece[0] if piece[0] in "$£€" else None
            tokens.append(_Token("num", piece, start, end, value=value, percent=percent, decimals=decimals, unit=unit))
        elif kind == "op":
            tokens.append(_Token("op", piece, start, end, op=_OPS[piece]))
        elif kind in ("lp", "rp", "eq"):
            tokens.append(_Token({"lp": "(", "rp": ")", "eq": "="}[kind], piece, start, end))
        elif kind == "word":
            tokens.append(_Token("word", piece, start, end))
        else:  # time, other
            tokens.append(_Token("break", piece, start, end))
    return tokens


def _is_unit(word: _Token) -> bool:
    # A lone letter is a variable (`3x + 4`), not a unit; `$` after a number is a unit.
    return not (len(word.text) == 1 and word.text.isalpha())


# Words that make a sentence, never a unit: `29 + 24 decorations already up = 83` and
# `1/3 of Solomon = 22` are not `29 + 24 = 83` and `1/3 = 22`.
_NOT_UNITS = {"of", "is", "are", "was", "were", "be", "and", "or", "the", "an", "to", "for", "in", "on", "at",
              "by", "so", "then", "that", "which", "it", "has", "have", "had", "will", "from", "with", "than",
              "because", "since", "as", "if", "but", "when", "while", "after", "before", "thus", "therefore"}
# A number after these words names a thing (`day 1 * 2`, `Weeks 1-2 = 96 - 70`), it is no operand.
_NAMING = {"day", "week", "month", "year", "step", "round", "game", "level", "grade", "chapter", "quarter", "part",
           "stage", "room", "number", "no"}


def _are_units(words: list[_Token]) -> bool:
    """Whether words after a number can be its units: one or two words such as `apples` or
    `cubic inches`, or a rate such as `miles per hour`, with no lone letter and no word of a
    sentence."""
    if len(words) == 3 and words[1].text.lower() in ("per", "a", "an"):  # `dollars an hour`
        words = [words[0], words[2]]
    return len(words) <= 2 and all(_is_unit(w) and w.text.lower() not in _NOT_UNITS for w in words)


def _unit_name(word: str) -> str:
    """A unit as compared: `Dollars` is `$`, `cents` is `cent`."""
    word = word.lower()
    if word in ("dollar", "dollars"):
        return "$"
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _piece_has_operator(out: list[_Token]) -> bool:
    for tok in reversed(out):
        if tok.kind in ("=", "break"):
            return False
        if tok.kind == "op":
            return True
    return False


def _resolve_words(out: list[_Token], words: list[_Token], nxt: _Token | None) -> list[_Token]:
    """What a run of words between tokens means: an operator, units to skip, or a break."""
    brk = _Token("break", " ".join(w.text for w in words), words[0].start, words[-1].end)
    prev = out[-1] if out else None
    if prev is None or prev.kind not in ("num", ")"):
        return [brk]
    if prev.kind == "num" and not prev.percent and words[0].text.lower() == "percent":
        prev.percent, prev.value = True, prev.value / 100
        words = words[1:]
        if not words:
            return []
    operand_next = nxt is not None and nxt.kind in ("num", "(")
    last = words[-1].text.lower()
    if operand_next and last in _WORD_OPS and _are_units(words[:-1]):
        return [_Token("op", words[-1].text, words[-1].start, words[-1].end, op=_WORD_OPS[last])]
    if (
        operand_next
        and len(words) >= 2
        and [w.text.lower() for w in words[-2:]] == ["divided", "by"]
        and _are_units(words[:-2])
    ):
        return [_Token("op", "divided by", words[-2].start, words[-1].end, op="/")]
    if operand_next and len(words) == 1 and last == "of" and _percent_or_fraction_before(out):
        return [_Token("op", words[0].text, words[0].start, words[0].end, op="*")]
    if nxt is not None and _are_units(words):
        if nxt.kind == "op" or (nxt.kind == "=" and _piece_has_operator(out)):
            if prev.kind == "num" and prev.unit is None:
                prev.unit = _unit_name(words[0].text)
            return []  # units, as in `5 apples + 3 apples = 8 apples`
    return [brk]


def _percent_or_fraction_before(out: list[_Token]) -> bool:
    if out and out[-1].kind == "num" and out[-1].percent:
        return True
    return (
        len(out) >= 3
        and out[-1].kind == "num"
        and out[-2].kind == "op"
        and out[-2].op == "/"
        and out[-3].kind == "num"
    )


def _expression_tokens(text: str) -> list[_Token]:
    """Tokens with every run of words resolved to an operator, nothing (units) or a break."""
    raw = _scan(text)
    out: list[_Token] = []
    i, after_units = 0, False
    while i < len(raw):
        tok = raw[i]
        rate = (
            tok.kind == "op" and tok.op == "/" and i + 1 < len(raw) and raw[i + 1].kind == "word"
            and (after_units or (bool(out) and out[-1].kind == "num" and _is_unit(raw[i + 1])))
        )
        if rate:  # the `/row` of `6 desks/row`, the `/hour` of `$5/hour`: units, not a division
            i += 2
            continue
        if tok.kind != "word":
            out.append(tok)
            i, after_units = i + 1, False
            continue
        j = i
        while j < len(raw) and raw[j].kind == "word":
            j += 1
        resolved = _resolve_words(out, raw[i:j], raw[j] if j < len(raw) else None)
        out.extend(resolved)
        i, after_units = j, not resolved
    return out


# ---------------------------------------------------------------------------------------
# Expressions: a recursive-descent parser to a small tree, then exact evaluation
#
#   expr  := term (("+" | "-") term)*
#   term  := unary (("*" | "/") unary)*        `x`, `×`, `÷`, `of` arrive here as * and /
#   unary := ("-" | "+") unary | atom
#   atom  := number | "(" expr ")"
#
# A tree is ("num", token), ("neg", tree) or (op, left, right).

_MAX_DEPTH = 50  # nested parentheses
_MAX_TOKENS = 200  # longer runs of numbers and operators are not claims a person wrote


class _NoParse(Exception):
    pass


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise _NoParse
        self.pos += 1
        return tok

    def expr(self):
        node = self.term()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.op in "+-":
            self.pos += 1
            node = (tok.op, node, self.term())
        return node

    def term(self):
        node = self.unary()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.op in "*/":
            self.pos += 1
            node = (tok.op, node, self.unary())
        return node

    def unary(self):
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.op in "+-":
            self.pos += 1
            return ("neg", self.unary()) if tok.op == "-" else self.unary()
        return self.atom()

    def atom(self):
        tok = self.take()
        if tok.kind == "num":
            return ("num", tok)
        if tok.kind == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _NoParse
            node = self.expr()
            if self.take().kind != ")":
                raise _NoParse
            self.depth -= 1
            return node
        raise _NoParse


def _parse(tokens: list[_Token]):
    """The tree of an expression that uses every token, or None."""
    if not tokens or len(tokens) > _MAX_TOKENS:
        return None
    parser = _Parser(tokens)
    try:
        node = parser.expr()
    except _NoParse:
        return None
    return node if parser.pos == len(tokens) else None


def _evaluate(node, percent_as_written: bool = False) -> Fraction:
    """Exact value (`25%` is 1/4, or 25 when `percent_as_written`); raises ZeroDivisionError."""
    kind = node[0]
    if kind == "num":
        tok = node[1]
        return tok.value * 100 if percent_as_written and tok.percent else tok.value
    if kind == "neg":
        return -_evaluate(node[1], percent_as_written)
    left, right = _evaluate(node[1], percent_as_written), _evaluate(node[2], percent_as_written)
    if kind == "+":
        return left + right
    if kind == "-":
        return left - right
    if kind == "*":
        return left * right
    return left / right


def _number_token(node) -> _Token | None:
    """The number of a bare side (`12`, `-3`, `25%`), or None for arithmetic."""
    while node[0] == "neg":
        node = node[1]
    return node[1] if node[0] == "num" else None


def _written_value(node) -> Fraction:
    """The value as the reader sees it written: `25%` is 25 here."""
    if node[0] == "neg":
        return -_written_value(node[1])
    if node[0] == "num" and node[1].percent:
        return node[1].value * 100
    return _evaluate(node)


def _terminates(value: Fraction) -> bool:
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _agrees(exact: Fraction, node, value: Fraction) -> bool:
    """Whether a side's value is the exact value, or a written decimal that rounds it."""
    if value == exact:
        return True
    tok = _number_token(node)
    if tok is None or tok.decimals == 0 or _terminates(exact):
        return False
    digits = tok.decimals + (2 if tok.percent else 0)
    return abs(exact - value) < Fraction(1, 10**digits)


def _show(value: Fraction) -> str:
    """A value for a person: `12`, `2.5`, or `1/3` when no finite decimal exists."""
    if value.denominator == 1:
        return str(value.numerator)
    if not _terminates(value):
        return str(value)
    k = 1
    while (value * 10**k).denominator != 1:
        k += 1
    n = abs(value.numerator * 10**k // value.denominator)
    digits = str(n).rjust(k + 1, "0")
    return ("-" if value < 0 else "") + digits[:-k] + "." + digits[-k:]


# ---------------------------------------------------------------------------------------
# Claims


def _longest_prefix(tokens: list[_Token]):
    for k in range(min(len(tokens), _MAX_TOKENS), 0, -1):
        node = _parse(tokens[:k])
        if node is not None:
            return k, node
    return 0, None


def _longest_suffix(tokens: list[_Token]):
    for k in range(max(0, len(tokens) - _MAX_TOKENS), len(tokens)):
        node = _parse(tokens[k:])
        if node is not None:
            return k, node
    return len(tokens), None


def _chains(tokens: list[_Token]) -> list[list[tuple]]:
    """Chains of (tree, first token, end token) sides joined by `=`, at least two sides each."""
    chains = []
    lo = 0
    for hi in [i for i, tok in enumerate(tokens) if tok.kind == "break"] + [len(tokens)]:
        chains.extend(_segment_chains(tokens, lo, hi))
        lo = hi + 1
    return [c for c in chains if len(c) >= 2]


def _segment_chains(tokens: list[_Token], lo: int, hi: int) -> list[list[tuple]]:
    """The chains between two breaks: `tokens[lo:hi]` split at each `=` into pieces."""
    bounds = [lo] + [i for i in range(lo, hi) if tokens[i].kind == "="] + [hi]
    pieces = [(a if n == 0 else a + 1, b) for n, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    chains, chain = [], []
    for n, (a, b) in enumerate(pieces):
        rest = a
        if chain:
            # The chain goes on with the longest start of this piece that is an expression.
            k, node = _longest_prefix(tokens[a:b])
            if node is not None:
                chain.append((node, a, a + k))
                rest = a + k
                if rest == b:
                    continue
            chains.append(chain)
            chain = []
        if n < len(pieces) - 1:
            # A new chain starts with the longest end of this piece that is an expression.
            k, node = _longest_suffix(tokens[rest:b])
            if node is not None:
                chain = [(node, rest + k, b)]
    if chain:
        chains.append(chain)
    return chains


def _is_letter(tok: _Token, word: int) -> bool:
    """Whether a break's first (0) or last (-1) word is a lone letter: a variable (`3N`, `S + 4`)
    or a unit glued to a number (`60g`)."""
    if tok.kind != "break":
        return False
    w = tok.text.split()[word] if tok.text.split() else ""
    return len(w) == 1 and w.isalpha()


def _cut_before(text: str, tokens: list[_Token], a: int) -> str:
    """Why the side starting at token `a` is not a whole expression (its start was cut), or ""."""
    if a == 0:
        return ""
    before, first = tokens[a - 1], tokens[a]
    fraction = first.kind == "num" and a + 2 < len(tokens) and tokens[a + 1].op == "/" and tokens[a + 2].kind == "num"
    if before.kind == ")" or (before.kind == "num" and first.kind == "("):
        return "implicit multiplication"
    if before.kind == "num":
        return "a mixed number" if fraction else "two numbers with no operator between them"
    if before.kind == "op" or (before.kind == "(" and a >= 2 and tokens[a - 2].kind in ("op", "num")):
        return "a word inside the expression"  # `60g * 4/5 = 48`, `$100+($100*(10/100) = $110`
    words = before.text.split() if before.kind == "break" and before.text[:1].isalpha() else []
    last_word = words[-1].lower() if words else ""
    if last_word == "and" and a >= 2 and tokens[a - 2].kind == "num" and fraction:
        return "a mixed number"  # `1 and 1/4`
    after_number = a >= 2 and tokens[a - 2].kind in ("num", ")")
    punctuation = before.kind == "break" and not last_word
    operator_word = last_word in _WORD_OPS or [w.lower() for w in words[-2:]] == ["divided", "by"]
    if (after_number and operator_word) or (punctuation and tokens[a - 2].kind == "op"):
        return "a word inside the expression"  # `15 dollars an hour x 40 hours`, `.8 + . 84`
    if after_number and last_word in _NAMING and first.kind == "num" and first.unit is None:
        return "a number that names something (`10 pages on day 1 * 2`)"
    at = first.start
    if text[at - 1].isdigit() or (text[at - 1] == "," and at >= 2 and text[at - 2].isdigit()):
        return "a number glued to the expression"  # `Over 50:40-4-24=12`, `16,0000/10`
    if _is_letter(before, -1) and (before.end == at or first.kind == "op"):
        return "a variable in the expression"
    if before.kind == "break" and first.kind == "op" and first.end != tokens[a + 1].start:
        return "a word inside the expression"  # `24 hours in a day - 4 hours = 20`: a spaced sign subtracts
    return ""


def _cut_after(text: str, tokens: list[_Token], b: int) -> str:
    """Why the side ending before token `b` is not a whole expression (its end was cut), or ""."""
    if b == len(tokens):
        return ""
    last, after = tokens[b - 1], tokens[b]
    if after.kind == "(" or (after.kind == "num" and last.kind == ")"):
        return "implicit multiplication"
    if after.kind == "num":
        fraction = b + 1 < len(tokens) and tokens[b + 1].op == "/"
        return "a mixed number" if fraction else "two numbers with no operator between them"
    if after.kind == "op":
        return "a word inside the expression"
    if _is_letter(after, 0) and after.start == last.end:
        return "a variable in the expression"
    if after.kind == "break" and after.text.lower() == "and":  # `17/3 = 5 and 2/3`, `100 / 6 = 16 and (2/3)`
        rest = [t.kind if t.kind != "op" else t.op for t in tokens[b + 1 : b + 6]]
        if rest[:3] == ["num", "/", "num"] or rest[:5] == ["(", "num", "/", "num", ")"]:
            return "a mixed number"
    return ""


def _unverifiable(text: str, sides: list[str], reason: str) -> Claim:
    return Claim(text, sides, [], ok=True, reason=reason, outcome="unverifiable")


def _span(text: str, tokens: list[_Token], chain: list[tuple]) -> tuple[str, list[str]]:
    """A chain's text and the text of each side."""
    sides = [text[tokens[a].start : tokens[b - 1].end] for _, a, b in chain]
    return text[tokens[chain[0][1]].start : tokens[chain[-1][2] - 1].end], sides


def _judge(text: str, tokens: list[_Token], chain: list[tuple]) -> tuple[Claim, list[tuple]] | None:
    """The claim a chain makes, true, false or unverifiable, with the sides it read; None
    when it makes none (`x = 5`, or a number restated: `<<7=7>>`)."""
    whole, sides = _span(text, tokens, chain)
    before, after = _cut_before(text, tokens, chain[0][1]), _cut_after(text, tokens, chain[-1][2])
    read = chain[1 if before else 0 : len(chain) - (1 if after else 0)]
    if any(re.match(r"[$£€]?0\d", tokens[i].text) for _, a, b in chain for i in range(a, b)):
        return _unverifiable(whole, sides, "a number with a leading zero, such as a time (0900)"), chain
    if len(read) >= 2 and any(_number_token(node) is None for node, _, _ in read):
        claim = _make_claim(text, tokens, read)
        if claim.outcome == "false" and _labels(text, tokens, read[0]) and len(read) >= 3:
            # `Remaining 10 = 62,300/10 = $6230`, `Weeks 1-2 = 96 - 70 = 26`: a label, not a side
            rest = _make_claim(text, tokens, read[1:])
            if rest.outcome != "false":
                return rest, read[1:]
        return claim, read
    if before or after:
        return _unverifiable(whole, sides, "; ".join(dict.fromkeys(why for why in (before, after) if why))), chain
    if len({_written_value(node) for node, _, _ in chain}) > 1:
        return _unverifiable(whole, sides, "a change of units or form"), chain
    return None


def _labels(text: str, tokens: list[_Token], side: tuple) -> bool:
    """Whether a side is a bare number or a range written `1-2`, as labels are."""
    node, a, b = side
    return _number_token(node) is not None or re.fullmatch(r"\d+-\d+", text[tokens[a].start : tokens[b - 1].end]) is not None


def _make_claim(text: str, tokens: list[_Token], chain: list[tuple]) -> Claim:
    claim_text, sides = _span(text, tokens, chain)
    values: list[Fraction | None] = []
    for node, _, _ in chain:
        try:
            values.append(_evaluate(node))
        except ZeroDivisionError:
            values.append(None)
    if None in values:
        return Claim(claim_text, sides, values, ok=False, reason=f"{claim_text} divides by zero", outcome="false")

    arithmetic = [i for i, (node, _, _) in enumerate(chain) if _number_token(node) is None]
    exact = values[arithmetic[0]]
    result = _written_value(chain[-1][0])
    if all(_agrees(exact, node, value) for (node, _, _), value in zip(chain, values)):
        return Claim(claim_text, sides, values, ok=True, result=result)
    form = _other_reading(text, tokens, chain, values)
    if form:
        return Claim(claim_text, sides, values, ok=True, reason=form, result=result, outcome="unverifiable")
    shown = ", ".join(f"{sides[i]} = {_show(values[i])}" for i in arithmetic)
    return Claim(claim_text, sides, values, ok=False, reason=f"{claim_text} is false ({shown})", result=result,
                 outcome="false")


def _other_reading(text: str, tokens: list[_Token], chain: list[tuple], values: list[Fraction]) -> str:
    """For a claim that reads false: the form a person who wrote it true may have meant, or ""
    when it is false however it is read."""
    if _running(tokens, chain, values):
        return "a running computation (`2 x 3 = 6 x 4 = 24`)"
    if any(_spacing_regroups(tokens, a, b) for _, a, b in chain):
        return "a division whose spacing groups it otherwise (`50/ 1/2 = 100`)"
    if any(tok.percent for _, a, b in chain for tok in tokens[a:b]):
        written = [_evaluate(node, percent_as_written=True) for node, _, _ in chain]
        if len(set(written)) == 1 or all(_agrees(written[0], node, v) for (node, _, _), v in zip(chain, written)):
            return "a percentage read as a plain number"
    last = _number_token(chain[-1][0])
    exact = next(v for (node, _, _), v in zip(chain, values) if _number_token(node) is None)
    if last is not None and exact > 0 and exact.denominator != 1 and last.value == int(exact):
        if re.search(r"remain|left ?over", text, re.IGNORECASE):
            return "a quotient with a remainder (`100 / 3 = 33, 1 remaining`)"
    if last is not None and _units_change(tokens, chain, exact, last):
        return "a change of units (`$1 / 2 = 50 cents`)"
    for _, a, b in chain:
        units = {tok.unit for tok in tokens[a:b] if tok.kind == "num" and tok.unit is not None}
        if len(units) > 1 and any(tok.kind == "op" and tok.op in "+-" for tok in tokens[a:b]):
            return "numbers of different units added (`4 pounds - 6 ounces`)"
    return ""


def _running(tokens: list[_Token], chain: list[tuple], values: list[Fraction]) -> bool:
    """Whether each side of a chain starts with the value of the one before (`12 hours * 60 =
    720` after `600 / 50 =`): `=` written for "which gives", each step of it true."""
    for (prev_node, _, _), (node, a, b), prev in zip(chain, chain[1:], values):
        if _agrees(prev, node, _evaluate(node)):
            continue
        starts = False
        for k in range(b - 1, a, -1):
            head = _parse(tokens[a:k])
            if head is not None and _agrees(prev, head, _evaluate(head)):
                starts = True
                break
        if not starts:
            return False
    return True


def _units_change(tokens: list[_Token], chain: list[tuple], exact: Fraction, last: _Token) -> bool:
    """Whether the result is in other units than the numbers before it, by a power of ten
    (`$1 / 2 = 50 cents`, `$2.50 - $2.24 = 26 cents`)."""
    b = chain[-1][2]
    unit = last.unit
    if unit is None and b < len(tokens) and tokens[b].kind == "break" and tokens[b].text[:1].isalpha():
        unit = _unit_name(tokens[b].text.split()[0])
    before = {tok.unit for _, a, b in chain[:-1] for tok in tokens[a:b] if tok.kind == "num"} - {None}
    if unit is None or not before or unit in before or exact == 0:
        return False
    ratio = last.value / exact
    return any(ratio == Fraction(10) ** k for k in range(-6, 7) if k)


def _spacing_regroups(tokens: list[_Token], a: int, b: int) -> bool:
    """Whether `x / y/z` is written with a spaced `/` before an unspaced one: its writer means
    x / (y/z), which is not how the expression reads (`50/ 1/2 = 100`)."""

    def spaced(i: int) -> bool:
        return tokens[i - 1].end != tokens[i].start or tokens[i].end != tokens[i + 1].start

    divisions = [i for i in range(a + 1, b - 1) if tokens[i].kind == "op" and tokens[i].op == "/"]
    return any(j == i + 2 and spaced(i) and not spaced(j) for i, j in zip(divisions, divisions[1:]))


_ANNOTATION = re.compile(r"<<([^<>]*)>>")


def _read(text: str) -> list[tuple[Claim, list[tuple]]]:
    """Each claim a text makes with the chain of sides it was read from."""
    tokens = _expression_tokens(text)
    return [judged for chain in _chains(tokens) if (judged := _judge(text, tokens, chain)) is not None]


def step_claims(step: str) -> list[Claim]:
    """Every claim in a step with its outcome; a step that makes none is one unverifiable
    claim, its sentence (`Let N be the smallest number`)."""
    annotations = [m.group(1) for m in _ANNOTATION.finditer(step)]
    texts = annotations or [step]
    claims = [claim for text in texts for claim, _ in _read(text)]
    if not claims:
        claims = [_unverifiable(step.strip(), [], "no arithmetic")]
    return claims


def find_claims(step: str) -> list[Claim]:
    """The claims in a step that were read completely, each checked (`ok`, `reason`)."""
    return [claim for claim in step_claims(step) if claim.outcome != "unverifiable"]


def verify_step(step: str) -> Check:
    """No claim in the step is false (a step with no claims passes)."""
    reasons = [claim.reason for claim in find_claims(step) if not claim.ok]
    return Check(ok=not reasons, reason="; ".join(reasons))


def correct_step(step: str) -> str | None:
    """The step with the written result of each false claim replaced by its exact value
    (`8 + 11 = 29` becomes `8 + 11 = 19`; `$`, `%` and the words around it are kept).

    None when no claim is false, or when a false claim has no result to replace: its last
    side is arithmetic, its sides disagree among themselves, it divides by zero, or the
    exact value has no finite decimal. Unverifiable claims are left alone, and so are GSM8K
    annotations (their text repeats the result outside the annotation).
    """
    if _ANNOTATION.search(step):
        return None
    edits = []
    for claim, chain in _read(step):
        last = chain[-1][0]
        if claim.outcome != "false" or last[0] != "num" or None in claim.values:
            continue
        exact = [v for (node, _, _), v in zip(chain, claim.values) if _number_token(node) is None]
        if len(set(exact)) != 1 or not _terminates(exact[0]):
            return None
        tok = last[1]
        currency = tok.text[0] if tok.text[0] in "$£€" else ""
        value = exact[0] * 100 if tok.percent else exact[0]
        shown = _show(value)
        if tok.decimals and (value * 10**tok.decimals).denominator == 1:  # keep `$2.50`'s cents
            whole, _, part = shown.partition(".")
            shown = whole + "." + part.ljust(tok.decimals, "0")
        written = shown + "%" if tok.percent else currency + shown
        edits.append((tok.start, tok.end, written))
    if not edits:
        return None
    for start, end, written in reversed(edits):
        step = step[:start] + written + step[end:]
    return step if verify_step(step).ok else None


# ---------------------------------------------------------------------------------------
# Traces


_SPACED_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?: \d{3})+(?![\d,]|\.\d)")  # `100 000`
_HOUR = re.compile(r"(?<![\d:])(\d{1,2}):00(?![\d:])")  # `7:00 pm` names the number 7


def _numbers_in(text: str) -> list[Fraction]:
    """Numbers written in a text: `12`, `-3`, `$2.50`, `3/4`, `100 000`, the 7 of `7:00`;
    `25%` counts as 25."""
    tokens = _scan(text)
    found = [Fraction(m.group().replace(" ", "")) for m in _SPACED_THOUSANDS.finditer(text)]
    found += [Fraction(m.group(1)) for m in _HOUR.finditer(text)]
    for i, tok in enumerate(tokens):
        if tok.kind != "num":
            continue
        value = tok.value * 100 if tok.percent else tok.value
        found.append(value)
        before = tokens[i - 1] if i > 0 else None
        if before is not None and before.kind == "op" and before.op == "-":
            found.append(-value)
        if (
            i + 2 < len(tokens)
            and tokens[i + 1].kind == "op"
            and tokens[i + 1].op == "/"
            and tokens[i + 2].kind == "num"
            and tokens[i + 2].value != 0
        ):
            found.append(tok.value / tokens[i + 2].value)
    return found


def _conclusion(steps: list[str]) -> int:
    """The index of the step that concludes a trace: the last one that writes a number."""
    for k in range(len(steps) - 1, -1, -1):
        if _numbers_in(steps[k]):
            return k
    return len(steps) - 1


def _answer_reason(trace: Trace, claims: list[list[Claim]]) -> str:
    """Why the answer does not follow from what the trace concludes, or "" when it does.

    The concluding step (the last that writes a number: `so x = 18`, `Thus he has 8 left`)
    must reach the answer: as the result of its last claim read completely, or as a number
    it writes after that claim (or anywhere in it, when it has no such claim).
    """
    canon = canonical_answer(trace.answer)
    if canon is None:
        return "answer is empty"
    value = parse_number(canon)
    read = [[c for c in step if c.outcome != "unverifiable"] for step in claims]
    if value is None:
        words = " ".join(trace.steps[-1].lower().split())
        if re.search(rf"(?<!\w){re.escape(canon)}(?!\w)", words):
            return ""
        if any(read):
            return f"answer {trace.answer!r} is not a number the steps reach"
        return f"answer {trace.answer!r} does not appear in the last step"
    k = _conclusion(trace.steps)
    step = trace.steps[k]
    if read[k]:
        last = read[k][-1]
        after = step[step.rfind(last.text) + len(last.text) :]
        if value in (last.result, last.values[-1]) or value in _numbers_in(after):
            return ""
        return f"answer {trace.answer!r} does not match the last claim ({last.text})"
    if value in _numbers_in(step):
        return ""
    if k == len(trace.steps) - 1:
        return f"answer {trace.answer!r} does not appear in the last step"
    return f"answer {trace.answer!r} does not appear in step {k + 1}, the last that writes a number"


@dataclass
class Review:
    """What the verifier found in one trace."""

    checks: dict  # the record's checks: {"answer": bool, "steps": [bool, ...]}
    failures: list[str]  # readable reasons it fails; empty when it passes
    claims: list[list[Claim]]  # every claim of every step, with its outcome

    def counts(self) -> dict[str, int]:
        """How many claims are true, false and unverifiable."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for step in self.claims:
            for claim in step:
                counts[claim.outcome] += 1
        return counts


def review_trace(trace: Trace) -> Review:
    """Check every claim of every step and the answer; a trace with no steps is rejected."""
    if not trace.steps:
        return Review({"answer": False, "steps": []}, ["no steps: a trace shows at least one step"], [])
    claims = [step_claims(step) for step in trace.steps]
    step_ok, reasons = [], []
    for k, step in enumerate(claims, 1):
        bad = [claim.reason for claim in step if claim.outcome == "false"]
        step_ok.append(not bad)
        reasons.extend(f"step {k}: {reason}" for reason in bad)
    answer_reason = _answer_reason(trace, claims)
    if answer_reason:
        reasons.append(answer_reason)
    return Review({"answer": not answer_reason, "steps": step_ok}, reasons, claims)


def verify_trace(trace: Trace) -> dict:
    """The record's checks: `{"answer": bool, "steps": [bool, ...]}`."""
    return review_trace(trace).checks


def trace_failures(trace: Trace) -> list[str]:
    """Readable reasons the trace fails, e.g. `step 2: 3 x 4 = 13 is false (3 x 4 = 12)`."""
    return review_trace(trace).failures


def verify_file(path) -> dict:
    """Check every trace in a JSONL file; unreadable lines are failures with id None.

    Returns `{"total": N, "passed": N, "failures": [{"id", "line", "reason"}], "claims":
    {"true": N, "false": N, "unverifiable": N}, "unverifiable": N}`, one failure per failing
    line, its reasons joined by "; ". A file with no lines but blank ones is a
    TraceFileError: there is nothing to vouch for.
    """
    total, passed, failures = 0, 0, []
    claims = dict.fromkeys(OUTCOMES, 0)
    for line, item in iter_trace_lines(path):
        total += 1
        if isinstance(item, TraceFileError):
            reason = item.detail if item.field is None else f"field {item.field!r}: {item.detail}"
            failures.append({"id": None, "line": line, "reason": reason})
            continue
        review = review_trace(item)
        for outcome, n in review.counts().items():
            claims[outcome] += n
        if review.failures:
            failures.append({"id": item.id, "line": line, "reason": "; ".join(review.failures)})
        else:
            passed += 1
    if total == 0:
        raise TraceFileError("holds no traces (it is empty or holds only blank lines)", path=path)
    return {"total": total, "passed": passed, "failures": failures, "claims": claims,
            "unverifiable": claims["unverifiable"]}


def main_verify(path, as_json: bool = False) -> int:
    """`tracetutor data verify FILE [--json]`: 0 when every trace passes, 1 if any fails,
    2 when the file cannot be read or holds no traces."""
    try:
        report = verify_file(path)
    except OSError as e:
        print(f"cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    except TraceFileError as e:
        print(e, file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for failure in report["failures"]:
            where = f"{path}:{failure['line']}"
            if failure["id"] is not None:
                where += f" {failure['id']}"
            print(f"{where}: {failure['reason']}")
        c = report["claims"]
        print(f"{report['passed']}/{report['total']} traces passed "
              f"(claims: {c['true']} true, {c['false']} false, {c['unverifiable']} unverifiable)")
    return 1 if report["failures"] else 0
