"""Robustness probes: each held-out problem again in forms a model that learned the method
answers as well as the original, and a model that learned the templates does not.

- `symbolic` (GSM-Symbolic style): the same problem with new numbers and names, drawn again by
  the curriculum's own family at the same level from another seed until the question has the
  original's words with other numbers and names (or, failing that within the draws allowed,
  the same steps with other numbers); its answer and steps are the generator's, and it is never
  a question of the model's training data;
- `noop` (GSM-NoOp style): one irrelevant sentence with a number inserted before the question;
- `reorder`: the facts told in reverse order, only where no sentence refers back to another
  (`them`, `then`, `the rest`, ...) and the family's events do not happen in sequence;
- `paraphrase`: phrases replaced from apps/probe_words.json, a list kept apart from the
  curriculum's templates.

A probe keeps the reference trace of what it asks (noop, reorder and paraphrase ask the same
question as the original, so the original's steps and answer), so every probe verifies. A form
that cannot be made for a problem is left out for it; each probe records `form` and `probe_of`.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

FORMS = ("original", "symbolic", "noop", "reorder", "paraphrase")
WORDS = json.loads((Path(__file__).parent / "probe_words.json").read_text(encoding="utf-8"))
SYMBOLIC_DRAWS = 2000  # draws of a family tried for the same words with other numbers
_NUMBER = re.compile(r"[$£€]?\d[\d,]*(?:\.\d+)?")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z0-9$£€])")
# words that tie a sentence to one told before it: such facts keep their order
_BACK_REFERENCE = re.compile(r"\b(them|they|it|its|their|these|those|this|that|then|later|next|after|also|"
                             r"rest|other|others|remaining|same|each year's|more)\b", re.IGNORECASE)
_IN_SEQUENCE = {"arithmetic", "interest", "equation"}  # events, years or operations one after another


def sentences(question: str) -> list[str]:
    return _SENTENCE_END.split(question.strip())


def _names():
    from tracetutor.train.curriculum import NAMES

    return NAMES


def _masked(text: str, names) -> str:
    return re.sub(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b", "@", _NUMBER.sub("#", text))


def symbolic(problem: dict, seed: int, avoid: set[str]) -> dict | None:
    """The problem drawn again with other numbers and names; None where the family is not the
    curriculum's or no draw within SYMBOLIC_DRAWS fits. `avoid` holds normalised questions
    (training data, the original) a probe must not be."""
    from tracetutor.train.curriculum import FAMILIES, normalise

    family, level = problem.get("family"), problem.get("difficulty")
    if family not in FAMILIES or not level:
        return None
    names = _names()
    words, steps = _masked(problem["question"], names), [_masked(s, names) for s in problem["steps"]]
    rng = random.Random(f"symbolic/{seed}/{problem['id']}")
    same_steps = None
    for _ in range(SYMBOLIC_DRAWS):
        question, drawn, answer = FAMILIES[family](rng, level)
        if normalise(question) in avoid:
            continue
        if _masked(question, names) == words:
            return _probe(problem, "symbolic", question, drawn, answer, match="words")
        if same_steps is None and [_masked(s, names) for s in drawn] == steps:
            same_steps = _probe(problem, "symbolic", question, drawn, answer, match="steps")
    return same_steps


def noop(problem: dict, seed: int) -> dict | None:
    """One irrelevant sentence with a number, before the question."""
    told = sentences(problem["question"])
    rng = random.Random(f"noop/{seed}/{problem['id']}")
    name = rng.choice([n for n in _names() if n not in problem["question"]])
    extra = rng.choice(WORDS["noop"]).format(name=name, n=rng.randint(2, 99))
    at = rng.randint(1, len(told) - 1) if len(told) > 1 else 0
    return _probe(problem, "noop", " ".join(told[:at] + [extra] + told[at:]))


def reorder(problem: dict) -> dict | None:
    """The facts in reverse order, the question last; None where the order carries meaning."""
    told = sentences(problem["question"])
    facts, asked = told[:-1], told[-1]
    if len(facts) < 2 or problem.get("family") in _IN_SEQUENCE or not asked.endswith("?"):
        return None
    if any(_BACK_REFERENCE.search(f) for f in facts[1:]) or _BACK_REFERENCE.search(facts[0]):
        return None
    return _probe(problem, "reorder", " ".join(facts[::-1] + [asked]))


def paraphrase(problem: dict) -> dict | None:
    """Every phrase of the list that the question holds, replaced; None if it holds none."""
    text = problem["question"]
    for pattern, replacement in WORDS["paraphrase"]:
        text = re.sub(pattern, replacement, text)
    return _probe(problem, "paraphrase", text) if text != problem["question"] else None


def _probe(problem: dict, form: str, question: str, steps=None, answer=None, **extra) -> dict:
    return {"id": f"{problem['id']}#{form}", "question": question,
            "steps": list(problem["steps"] if steps is None else steps),
            "answer": problem["answer"] if answer is None else answer, "source": "probe",
            "family": problem.get("family"), "difficulty": problem.get("difficulty"),
            "form": form, "probe_of": problem["id"], **extra}


def build_probes(problems: list[dict], seed: int = 0, train_questions: set[str] | None = None) -> list[dict]:
    """Every problem as `original`, then each form that can be made of it, problem by problem."""
    from tracetutor.train.curriculum import normalise

    out = []
    for p in problems:
        avoid = (train_questions or set()) | {normalise(p["question"])}
        made = [_probe(p, "original", p["question"]), symbolic(p, seed, avoid), noop(p, seed), reorder(p),
                paraphrase(p)]
        out.extend(m for m in made if m is not None)
    return out


def training_questions(model_dir: Path) -> set[str]:
    """The normalised questions of a model's training data: data/train.jsonl where it is on
    disk, else generated again from the recipe the folder keeps (a release keeps its recipe,
    not its training data); an empty set for a folder with neither."""
    from tracetutor.recipe import load_recipe
    from tracetutor.train.curriculum import make_splits, normalise

    model_dir = Path(model_dir)
    path = model_dir / "data" / "train.jsonl"
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            return {normalise(json.loads(line)["question"]) for line in f if line.strip()}
    recipes = [model_dir / f"{model_dir.name}.toml", *sorted(model_dir.glob("*.toml")), model_dir.with_suffix(".toml")]
    recipe = next((r for r in recipes if r.is_file()), None)
    if recipe is None:
        return set()
    d = load_recipe(recipe).data
    train, _ = make_splits(d.n_train, d.n_heldout, d.seed, levels=tuple(d.levels), families=d.families)
    return {normalise(t.question) for t in train}
