"""The curriculum's draws, pinned: the same seed gives byte-identical traces.

The golden file holds a header, with the generator's VERSION and a digest of the first
DIGESTED draws of every family at every level (each cell from its own seeded generator), then
the first DRAWS of those draws as traces and a small train/held-out split. A change that alters
a draw shows here as the first trace that differs, or else as the cell whose digest differs.
If the change is meant, raise VERSION (data made before is then redone) and rewrite the file
with `python tests/test_curriculum_golden.py`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from tracetutor.trace import LEVELS, Trace
from tracetutor.train.curriculum import FAMILIES, VERSION, make_splits

GOLDEN = Path(__file__).parent / "data" / "curriculum_golden.jsonl"
DRAWS = 4  # written out, per family and level
DIGESTED = 200  # reach the shapes and branches a level draws rarely
SPLIT = dict(n_train=88, n_heldout=44, seed=11)


def golden_lines() -> list[str]:
    digests, lines = {}, []
    for name, generate in FAMILIES.items():
        for level in LEVELS:
            rng, digest = random.Random(f"golden/{name}/{level}"), hashlib.sha256()
            for i in range(DIGESTED):
                question, steps, answer = generate(rng, level)
                digest.update(json.dumps([question, steps, answer]).encode())
                if i < DRAWS:
                    trace = Trace(id=f"draw/{name}/{level}/{i}", question=question, steps=steps, answer=answer,
                                  source="synth", family=name, difficulty=level)
                    lines.append(json.dumps(trace.to_dict(), ensure_ascii=False))
            digests[f"{name}/{level}"] = digest.hexdigest()[:16]
    train, heldout = make_splits(SPLIT["n_train"], SPLIT["n_heldout"], SPLIT["seed"])
    for split, traces in (("train", train), ("heldout", heldout)):
        lines += [json.dumps({"split": split, **t.to_dict()}, ensure_ascii=False) for t in traces]
    return [json.dumps({"version": VERSION, "digests": digests})] + lines


def test_the_same_seed_gives_the_pinned_traces():
    pinned = GOLDEN.read_text(encoding="utf-8").splitlines()
    header = json.loads(pinned[0])
    assert header["version"] == VERSION, "VERSION changed: rewrite the golden file with it"
    now = golden_lines()
    for i, (old, new) in enumerate(zip(pinned[1:], now[1:]), 2):
        assert new == old, f"{GOLDEN.name} line {i} differs: raise VERSION if the draws are meant to change"
    assert len(now) == len(pinned)
    for cell, digest in json.loads(now[0])["digests"].items():
        assert digest == header["digests"][cell], f"a later draw of {cell} differs: raise VERSION if meant"


def test_the_golden_file_covers_every_family_level_and_both_splits():
    records = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()[1:]]
    drawn = {(r["family"], r["difficulty"]) for r in records if r["id"].startswith("draw/")}
    assert drawn == {(f, d) for f in FAMILIES for d in LEVELS}
    assert {r.get("split") for r in records} == {None, "train", "heldout"}


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text("\n".join(golden_lines()) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
