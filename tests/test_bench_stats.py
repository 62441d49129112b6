"""The benchmark's statistics (apps/stats.py) on hand-made cases with known values."""

import math

import numpy as np
import pytest

from tracetutor.apps import stats


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
# (the Wilson score interval without continuity correction), to four places
@pytest.mark.parametrize("k, n, low, high", [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_of_published_counts(k, n, low, high):
    lo, hi = stats.wilson(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_interval_of_all_right_ends_at_one_and_of_nothing_is_none():
    lo, hi = stats.wilson(20, 20)
    assert hi == 1.0 and round(lo, 4) == 0.8389  # the mirror of 0/20
    assert stats.wilson(0, 0) is None


def test_mcnemar_of_a_variant_that_changes_one_answer_is_one():
    torch = [True, True, True, False, True]
    variant = [True, False, True, False, True]  # one answer lost: one discordant pair
    assert stats.mcnemar_p(torch, variant) == 1.0
    assert stats.mcnemar_p(torch, torch) == 1.0


def test_mcnemar_exact_binomial_on_the_discordant_pairs():
    # 10 problems right only under torch: p = 2 * (1/2)^10
    assert stats.mcnemar_p([True] * 10 + [False] * 5, [False] * 15) == pytest.approx(2 / 1024)
    # 6 against 1: p = 2 * (C(7,0) + C(7,1)) / 2^7 = 0.125; concordant pairs change nothing
    a = [True] * 6 + [False] + [True] * 30
    b = [False] * 6 + [True] + [True] * 30
    assert stats.mcnemar_p(a, b) == pytest.approx(0.125)
    assert stats.mcnemar_p(b, a) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="as many"):
        stats.mcnemar_p([True], [True, False])


class FixedLogits:
    """A backend whose logits for any sequence are the first rows of `table`."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float64)

    def logits(self, ids):
        return self.table[:len(ids)]


def test_kl_of_a_model_with_itself_is_zero_and_top1_agrees():
    table = np.random.default_rng(0).normal(size=(10, 30)) * 4
    model = FixedLogits(table)
    seqs = [(list(range(10)), 3), (list(range(6)), 2)]
    ref = stats.next_token_logits(model, seqs)
    assert [len(x) for x in ref] == [7, 4]  # from the last prompt token to the one before the end
    out = stats.kl_top1(ref, stats.next_token_logits(FixedLogits(table.copy()), seqs))
    assert out == {"positions": 11, "kl_divergence": pytest.approx(0.0, abs=1e-12), "top1_agreement": 1.0}


def test_kl_of_a_shifted_copy_is_the_hand_computed_value():
    # reference (1/2, 1/2); the copy's second logit raised by ln 3 gives (1/4, 3/4):
    # KL = 1/2 ln((1/2)/(1/4)) + 1/2 ln((1/2)/(3/4)) = 1/2 ln(4/3), and the top token moves from 0 to 1
    ref_row = np.zeros(2)
    shifted = ref_row + [0.0, math.log(3)] + 5.0  # a constant added to every logit changes nothing
    seqs = [([1, 2, 3, 4], 1)]
    ref = stats.next_token_logits(FixedLogits([ref_row] * 4), seqs)
    var = stats.next_token_logits(FixedLogits([shifted] * 4), seqs)
    out = stats.kl_top1(ref, var)
    assert out["positions"] == 3
    assert out["kl_divergence"] == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)  # logits kept in float32
    assert out["top1_agreement"] == 0.0


def test_a_vocabulary_padded_past_the_references_is_cut_off():
    rows = np.log([[0.2, 0.8]] * 3)
    padded = np.concatenate([rows, np.full((3, 2), 40.0)], -1)  # rows llama.cpp may add
    seqs = [([1, 2, 3], 1)]
    out = stats.kl_top1(stats.next_token_logits(FixedLogits(rows), seqs),
                        stats.next_token_logits(FixedLogits(padded), seqs, vocab=2))
    assert out["kl_divergence"] == pytest.approx(0.0, abs=1e-12) and out["top1_agreement"] == 1.0


def test_greedy_agreement_counts_identical_completions_and_where_the_others_depart():
    ref = ["Step 1: a: 2 + 3 = 5\nAnswer: 5", "Step 1: b: 4 x 2 = 8\nStep 2: c: 8 - 1 = 7\nAnswer: 7",
           "Step 1: d: 9 - 3 = 6\nAnswer: 6", "Answer: 1"]
    out = ["Step 1: a: 2 + 3 = 5\nAnswer: 5", "Step 1: b: 4 x 2 = 8\nStep 2: c: 8 + 1 = 9\nAnswer: 9",
           "Step 1: d: 9 - 3 = 7\nAnswer: 7", "Answer: 1\nStep 2: more"]
    assert [stats.first_departing_step(r, c) for r, c in zip(ref, out)] == [None, 2, 1, 2]
    assert stats.greedy_agreement(ref, out) == {"greedy_identical": 0.25,
                                                "first_departing_step": {"1": 1, "2": 2}}
