"""Traces from the families: balanced over families and levels, deduplicated, verified, and
split into train and held-out with no question in both."""

from __future__ import annotations

import random

from tracetutor.trace import LEVELS, Trace

from .core import FAMILIES


def normalise(question: str) -> str:
    """A question as compared for duplicates: lowercase, whitespace collapsed."""
    return " ".join(question.lower().split())


def _chosen(chosen, known, one: str, many: str) -> list:
    """The chosen levels or families, each once, in the order given; a ValueError names an
    unknown one and lists the known ones."""
    known, chosen = list(known), list(dict.fromkeys(chosen))
    listed = ", ".join(map(str, known))
    for value in chosen:
        if value not in known:
            raise ValueError(f"unknown {one} {value!r}; the {many} are {listed}")
    if not chosen:
        raise ValueError(f"no {one} chosen; the {many} are {listed}")
    return chosen


def synth_traces(n: int, seed: int, *, levels=LEVELS, families=None) -> list[Trace]:
    """`n` verified traces, balanced over families x levels, the same for the same seed.

    Every cell (family, level) draws from its own generator seeded by (seed, family, level), so
    adding a family leaves the others' draws alone. No two traces share a question.
    """
    from tracetutor.verify import trace_failures, verify_trace

    names = _chosen(FAMILIES if families is None else families, FAMILIES, "family", "families")
    levels = _chosen(levels, LEVELS, "level", "levels")
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
                raise ValueError(f"{name} at level {level}: only {got} distinct questions in {tries} draws; ask for fewer traces")
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


def make_splits(n_train: int, n_heldout: int, seed: int, levels=LEVELS,
                families=None) -> tuple[list[Trace], list[Trace]]:
    """Generate once and split: `n_train` training and `n_heldout` held-out traces, no held-out
    question text appearing in train. An unknown level or family is a ValueError that names it."""
    traces = synth_traces(n_train + n_heldout, seed, levels=levels, families=families)
    train, heldout = split_heldout(traces, n_heldout, seed)
    assert not {normalise(t.question) for t in train} & {normalise(t.question) for t in heldout}
    return train, heldout
