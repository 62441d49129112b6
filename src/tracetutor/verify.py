"""Exact checking of the arithmetic in a trace's steps, with rationals and no `eval`.

A claim is a chain of expressions joined by `=`, found in free text: `16 - 3 - 4 = 9`,
`(3 + 4) x 2 = 14`, `$12.50 / 5 = $2.50`, `25% of 40 = 10`, `1/2 of 30 = 15`, or GSM8K's
`<<48/2=24>>`. Every expression in a chain must have the same value, so `2 * 3 = 6 * 4 = 24`
is false. When a step holds GSM8K annotations, they are its only claims: the text around
them repeats them (`48/2 = <<48/2=24>>24`).

What counts as a claim:
- at least one side of the `=` is arithmetic; `x = 5` or `2 hours = 120 minutes` is not;
- `x`, `times`, `plus`, `minus`, `divided by` are operators only between numbers
  (`3 x 4`, `6 boxes x 4`), never inside words;
- words after a number are read as its units when an operator follows them
  (`5 apples + 3 apples = 8 apples`); any other word ends the expression, as do
  punctuation and times of day (`2:30`);
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


@dataclass
class Claim:
    """One chain of expressions joined by `=`, as found in a step."""

    text: str  # as written, e.g. "16 - 3 - 4 = 9"
    sides: list[str]  # each expression between the `=` signs, as written
    values: list[Fraction | None]  # the exact value of each side; None where it divides by zero
    ok: bool
    reason: str = ""
    result: Fraction | None = None  # the last side as written (`25%` reads 25), for the answer


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


_SCAN = re.compile(
    r"""
    (?P<time>\d{1,2}:\d{2}(?::\d{2})?)
  | (?P<num>[$£€]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|[$£€]?\.\d+)(?P<pct>\s*%)?
  | (?P<op>[-+*/×÷·−])
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<eq>=)
  | (?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*|[$£€])
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_OPS = {"+": "+", "-": "-", "−": "-", "*": "*", "×": "*", "·": "*", "/": "/", "÷": "/"}
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
            tokens.append(_Token("num", piece, start, end, value=value, percent=percent, decimals=decimals))
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


def _piece_has_operator(out: list[_Token]) -> bool:
    for tok in reversed(out):
        if tok.kind in ("=", "break"):
            return False
        if tok.kind == "op":
            return True
    return False


def _resolve_words(out: list[_Token], words: list[_Token], nxt: _Token | None) -> list[_Token]:
    """What a run of words between tokens means: an operator, units to skip, or a break."""
    brk = _Token("break", words[0].text, words[0].start, words[-1].end)
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
    if operand_next and last in _WORD_OPS and all(map(_is_unit, words[:-1])):
        return [_Token("op", words[-1].text, words[-1].start, words[-1].end, op=_WORD_OPS[last])]
    if (
        operand_next
        and len(words) >= 2
        and [w.text.lower() for w in words[-2:]] == ["divided", "by"]
        and all(map(_is_unit, words[:-2]))
    ):
        return [_Token("op", "divided by", words[-2].start, words[-1].end, op="/")]
    if operand_next and len(words) == 1 and last == "of" and _percent_or_fraction_before(out):
        return [_Token("op", words[0].text, words[0].start, words[0].end, op="*")]
    if nxt is not None and all(map(_is_unit, words)):
        if nxt.kind == "op" or (nxt.kind == "=" and _piece_has_operator(out)):
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
    i = 0
    while i < len(raw):
        if raw[i].kind != "word":
            out.append(raw[i])
            i += 1
            continue
        j = i
        while j < len(raw) and raw[j].kind == "word":
            j += 1
        out.extend(_resolve_words(out, raw[i:j], raw[j] if j < len(raw) else None))
        i = j
    return out


# ---------------------------------------------------------------------------------------
# Expressions: a recursive-descent parser to a small tree, then exact evaluation
#
#   expr  := term (("+" | "-") term)*
#   term  := unary (("*" | "/") unary)*        `x`, `×`, `÷`, `of` arrive here as * and /
#   unary := "-" unary | atom
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
        if tok is not None and tok.kind == "op" and tok.op == "-":
            self.pos += 1
            return ("neg", self.unary())
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


def _evaluate(node) -> Fraction:
    """Exact value; raises ZeroDivisionError."""
    kind = node[0]
    if kind == "num":
        return node[1].value
    if kind == "neg":
        return -_evaluate(node[1])
    left, right = _evaluate(node[1]), _evaluate(node[2])
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
    """Chains of (tree, start, end) sides joined by `=`, found in resolved tokens."""
    segments, current_segment = [], []
    for tok in tokens:
        if tok.kind == "break":
            segments.append(current_segment)
            current_segment = []
        else:
            current_segment.append(tok)
    segments.append(current_segment)

    chains = []
    for segment in segments:
        pieces = [[]]
        for tok in segment:
            if tok.kind == "=":
                pieces.append([])
            else:
                pieces[-1].append(tok)
        chain: list[tuple] = []
        for i, piece in enumerate(pieces):
            rest = piece
            if chain:
                # The chain goes on with the longest start of this piece that is an expression.
                k, node = _longest_prefix(piece)
                if node is not None:
                    chain.append((node, piece[0].start, piece[k - 1].end))
                    rest = piece[k:]
                    if not rest:
                        continue
                chains.append(chain)
                chain = []
            if i < len(pieces) - 1:
                # A new chain starts with the longest end of this piece that is an expression.
                k, node = _longest_suffix(rest)
                if node is not None:
                    chain = [(node, rest[k].start, rest[-1].end)]
        if chain:
            chains.append(chain)
    # A claim needs an `=` and some arithmetic: `x = 5` or `1 hour = 60 minutes` is not one.
    return [c for c in chains if len(c) >= 2 and any(_number_token(node) is None for node, _, _ in c)]


def _make_claim(text: str, chain: list[tuple]) -> Claim:
    claim_text = text[chain[0][1] : chain[-1][2]]
    sides = [text[start:end] for _, start, end in chain]
    values: list[Fraction | None] = []
    for node, _, _ in chain:
        try:
            values.append(_evaluate(node))
        except ZeroDivisionError:
            values.append(None)
    if None in values:
        return Claim(claim_text, sides, values, ok=False, reason=f"{claim_text} divides by zero")

    arithmetic = [i for i, (node, _, _) in enumerate(chain) if _number_token(node) is None]
    exact = values[arithmetic[0]]
    result = _written_value(chain[-1][0])
    if all(_agrees(exact, node, value) for (node, _, _), value in zip(chain, values)):
        return Claim(claim_text, sides, values, ok=True, result=result)
    shown = ", ".join(f"{sides[i]} = {_show(values[i])}" for i in arithmetic)
    return Claim(claim_text, sides, values, ok=False, reason=f"{claim_text} is false ({shown})", result=result)


_ANNOTATION = re.compile(r"<<([^<>]*)>>")


def find_claims(step: str) -> list[Claim]:
    """Every arithmetic claim in a step, each already checked (`ok`, `reason`)."""
    annotations = [m.group(1) for m in _ANNOTATION.finditer(step)]
    if annotations:
        claims = []
        for inner in annotations:
            claims.extend(_make_claim(inner, chain) for chain in _chains(_expression_tokens(inner)))
        return claims
    return [_make_claim(step, chain) for chain in _chains(_expression_tokens(step))]


def verify_step(step: str) -> Check:
    """All claims in the step are true (a step with no claims passes)."""
    reasons = [claim.reason for claim in find_claims(step) if not claim.ok]
    return Check(ok=not reasons, reason="; ".join(reasons))


def correct_step(step: str) -> str | None:
    """The step with the written result of each false claim replaced by its exact value
    (`8 + 11 = 29` becomes `8 + 11 = 19`; `$`, `%` and the words around it are kept).

    None when every claim holds, or when a false claim has no result to replace: its last
    side is arithmetic, its sides disagree among themselves, it divides by zero, or the
    exact value has no finite decimal. GSM8K annotations are left alone (their text repeats
    the result outside the annotation).
    """
    if _ANNOTATION.search(step):
        return None
    edits = []
    for chain in _chains(_expression_tokens(step)):
        claim = _make_claim(step, chain)
        last = chain[-1][0]
        if claim.ok or last[0] != "num" or None in claim.values:
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


def _numbers_in(text: str) -> set[Fraction]:
    """Numbers written in a text: `12`, `-3`, `$2.50`, `3/4`; `25%` counts as 25."""
    tokens = _scan(text)
    found = set()
    for i, tok in enumerate(tokens):
        if tok.kind != "num":
            continue
        value = tok.value * 100 if tok.percent else tok.value
        found.add(value)
        before = tokens[i - 1] if i > 0 else None
        if before is not None and before.kind == "op" and before.op == "-":
            found.add(-value)
        if (
            i + 2 < len(tokens)
            and tokens[i + 1].kind == "op"
            and tokens[i + 1].op == "/"
            and tokens[i + 2].kind == "num"
            and tokens[i + 2].value != 0
        ):
            found.add(tok.value / tokens[i + 2].value)
    return found


def _answer_reason(trace: Trace, step_claims: list[list[Claim]]) -> str:
    """Why the answer does not follow from the steps, or "" when it does."""
    if not trace.steps:
        return ""  # answer-only trace: there is nothing to check the answer against
    canon = canonical_answer(trace.answer)
    if canon is None:
        return "answer is empty"
    value = parse_number(canon)
    with_claims = [claims for claims in step_claims if claims]
    if with_claims:
        last = with_claims[-1][-1]
        if value is None:
            return f"answer {trace.answer!r} is not a number the steps reach"
        if value in (last.result, last.values[-1]):
            return ""
        return f"answer {trace.answer!r} does not match the last claim ({last.text})"
    last_step = trace.steps[-1]
    if value is None:
        words = " ".join(last_step.lower().split())
        if re.search(rf"(?<!\w){re.escape(canon)}(?!\w)", words):
            return ""
    elif value in _numbers_in(last_step):
        return ""
    return f"answer {trace.answer!r} does not appear in the last step"


def _review(trace: Trace) -> tuple[dict, list[str]]:
    step_claims = [find_claims(step) for step in trace.steps]
    step_ok, reasons = [], []
    for k, claims in enumerate(step_claims, 1):
        bad = [claim.reason for claim in claims if not claim.ok]
        step_ok.append(not bad)
        reasons.extend(f"step {k}: {reason}" for reason in bad)
    answer_reason = _answer_reason(trace, step_claims)
    if answer_reason:
        reasons.append(answer_reason)
    return {"answer": not answer_reason, "steps": step_ok}, reasons


def verify_trace(trace: Trace) -> dict:
    """The record's checks: `{"answer": bool, "steps": [bool, ...]}`."""
    return _review(trace)[0]


def trace_failures(trace: Trace) -> list[str]:
    """Readable reasons the trace fails, e.g. `step 2: 3 x 4 = 13 is false (3 x 4 = 12)`."""
    return _review(trace)[1]


def verify_file(path) -> dict:
    """Check every trace in a JSONL file; unreadable lines are failures with id None.

    Returns `{"total": N, "passed": N, "failures": [{"id", "line", "reason"}]}`, one failure
    per failing line, its reasons joined by "; ". A file with no lines but blank ones is a
    TraceFileError: there is nothing to vouch for.
    """
    total, passed, failures = 0, 0, []
    for line, item in iter_trace_lines(path):
        total += 1
        if isinstance(item, TraceFileError):
            reason = item.detail if item.field is None else f"field {item.field!r}: {item.detail}"
            failures.append({"id": None, "line": line, "reason": reason})
            continue
        reasons = trace_failures(item)
        if reasons:
            failures.append({"id": item.id, "line": line, "reason": "; ".join(reasons)})
        else:
            passed += 1
    if total == 0:
        raise TraceFileError("holds no traces (it is empty or holds only blank lines)", path=path)
    return {"total": total, "passed": passed, "failures": failures}


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
        print(f"{report['passed']}/{report['total']} traces passed")
    return 1 if report["failures"] else 0
