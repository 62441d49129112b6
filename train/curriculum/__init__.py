"""The synthetic curriculum (`tracetutor data synth`): textbook word problems with their steps.

A family turns `(rng, difficulty)` into `(question, steps, answer)`. Difficulty 1..4
(`tracetutor.trace.LEVELS`) grows the number of dependent steps (1, 2, 3, then 4 or 5) and the
size of the numbers: every number in a step of a level is below its cap (20, 50, 100, 200), and
the draws of each level reach up to its cap. The wording of the questions varies a lot; the
steps never do.

- `core`: the rules every step keeps, `Work` (the step builder that checks them), `Redraw`,
  the family registry, VERSION and CAP;
- one module per family (`arithmetic`, `shopping`, ...): functions that draw the numbers and
  build the steps, functions that word the question, and the family function that calls them
  in the order of its draws. A seed's traces depend on that order (tests/test_curriculum_golden.py
  pins them), so where numbers and words take turns, they still do;
- `wording` and `words/*.json`: the shared sentence helpers and the word lists;
- `splits`: balanced, deduplicated, verified traces and the train/held-out split.
"""

from .core import CAP, FAMILIES, VERSION, Redraw, Work
from .splits import make_splits, normalise, split_heldout, synth_traces
from .wording import NAMES

# the families register themselves on import, in this order, which is the order of a draw's
# cells and so part of every seed's traces
from . import arithmetic, shopping, groups, rates, percent  # noqa: F401  isort: skip
from . import interest, average, ratio, equation, geometry, ages  # noqa: F401  isort: skip

__all__ = ["CAP", "FAMILIES", "NAMES", "VERSION", "Redraw", "Work", "make_splits", "normalise", "split_heldout",
           "synth_traces"]
